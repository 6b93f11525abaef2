package main

// Images on the command line: fit --kind image-glow reads rows of pixels
// (CSV, or an IDX file of unsigned bytes as MNIST ships), and sample writes
// a PNG grid of an image model's samples.

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/model"
)

// imageFlags are fit's flags of the image kind.
type imageFlags struct {
	shape           string
	steps, channels int
}

func (f *imageFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.shape, "shape", "", "the images' channels, height and width, `C,H,W` ("+string(model.KindImageGlow)+";\ndefault 1,H,W for an IDX file)")
	fs.IntVar(&f.steps, "steps", 4, "the steps of flow per scale ("+string(model.KindImageGlow)+")")
	fs.IntVar(&f.channels, "channels", 32, "the hidden channels of each coupling's conv net ("+string(model.KindImageGlow)+")")
}

// vectorOnly are fit's flags that the image kind does not take.
var vectorOnly = []string{"layers", "hidden", "activation", "bins", "bound", "drop-constant", "dequantize", "bounds",
	"scaling", "init", "linear", "log-scale-bound", "context", "columns", "missing", "rejects"}

// check reports whether kind is the image kind, and returns a usage error
// for flags set that the kind does not take.
func (f *imageFlags) check(fs *flag.FlagSet, kind string) (bool, error) {
	isImage := kind == string(model.KindImageGlow)
	var bad []string
	fs.Visit(func(fl *flag.Flag) {
		switch {
		case isImage && slices.Contains(vectorOnly, fl.Name):
			bad = append(bad, "--"+fl.Name)
		case !isImage && (fl.Name == "shape" || fl.Name == "steps" || fl.Name == "channels"):
			bad = append(bad, "--"+fl.Name)
		}
	})
	switch {
	case len(bad) > 0 && isImage:
		return true, usagef("fit", "%s: not for --kind %s, which takes --shape, --steps and --channels", strings.Join(bad, ", "), kind)
	case len(bad) > 0:
		return false, usagef("fit", "%s: for --kind %s only", strings.Join(bad, ", "), model.KindImageGlow)
	case isImage && (f.steps < 1 || f.channels < 1):
		return true, usagef("fit", "--steps %d, --channels %d: want at least 1", f.steps, f.channels)
	}
	return isImage, nil
}

// parseShape parses "C,H,W".
func parseShape(s string) (flows.Shape, error) {
	parts := strings.Split(s, ",")
	var v [3]int
	if len(parts) != 3 {
		return flows.Shape{}, usagef("fit", "--shape %q: want C,H,W, as 1,28,28", s)
	}
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return flows.Shape{}, usagef("fit", "--shape %q: want three positive integers C,H,W", s)
		}
		v[i] = n
	}
	return flows.Shape{C: v[0], H: v[1], W: v[2]}, nil
}

// imageBatch is --batch's default for --kind image-glow: examples/glow's
// default, whose short run met the bits/dim target (QUALITY.md). The small
// flow's early training is limited by its number of steps, not by the
// gradient's noise: batches of 32 reached 2.015 bits/dim after one MNIST
// epoch where 64 reached 2.185, for the same work, and the general
// default (a tenth of the rows, up to 256) would take 8 times fewer steps.
// A step's memory grows with the batch (about 110 MiB allocated at 64 for
// the default flow, BENCHMARKS.md), so 32 also halves it.
const imageBatch = 32

// runImage fits an image-glow model to the pixels at path and saves it.
func (f *fitFlags) runImage(e *env, path string) error {
	fc, err := f.fitConfig()
	if err != nil {
		return err
	}
	if fc.BatchSize == 0 {
		fc.BatchSize = imageBatch
	}
	if f.out == "" || f.out == "-" {
		return usagef("fit", "no model file: give one with -o model.flow")
	}
	if err := checkNotInput(f.out, path); err != nil {
		return err
	}
	if err := atomicfile.CheckWritable(f.out); err != nil {
		return err
	}
	var shape flows.Shape
	if f.image.shape != "" {
		if shape, err = parseShape(f.image.shape); err != nil {
			return err
		}
	}
	x, lines, shape, err := f.readPixels(e, path, shape)
	if err != nil {
		return err
	}
	cfg := model.Config{Kind: model.KindImageGlow, Shape: shape, Seed: f.seed,
		Glow: flows.GlowConfig{Steps: f.image.steps, Hidden: f.image.channels}}
	m, err := model.New(cfg, x, nil)
	if de := (*model.DataError)(nil); errors.As(err, &de) {
		return fmt.Errorf("%s:%s: pixel %d: %v %s", path, lines(de.Row), de.Column, de.Value, de.Reason)
	}
	if err != nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "flows: "))
	}
	report, done, err := f.reporter(e, nil)
	if err != nil {
		return err
	}
	fc.Progress = report
	res, err := m.Fit(x, nil, fc)
	if err := done(err); err != nil {
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: the fit failed: %s", path, trimFit(err))
	}
	if err := m.Save(f.out); err != nil {
		return err
	}
	if f.quiet {
		return nil
	}
	rows, which := res.ValRows, "validation"
	if len(rows) == 0 {
		which = "training"
		for i := range x.RawMatrix().Rows {
			rows = append(rows, i)
		}
	}
	n := x.RawMatrix().Rows
	fmt.Fprintf(e.stderr, "wrote %s: %s, images %v, %d parameters; %d %s, %d %s\n", f.out, m.Config.Kind, shape,
		len(m.Params), n, plural(n, "image"), res.Epochs, plural(res.Epochs, "epoch"))
	fmt.Fprintf(e.stderr, "%s images: %.4f bits/dim (−log₂ of the probability of their integer pixels, by the density at each cell's middle, divided by C·H·W = %d)\n",
		which, bitsPerDim(m, x, rows), shape.Size())
	return nil
}

// bitsPerDim returns −mean log₂ P(row)/Dim over the given rows of x.
func bitsPerDim(m *model.Model, x *mat.Dense, rows []int) float64 {
	const chunk = 1024
	sum := 0.0
	for lo := 0; lo < len(rows); lo += chunk {
		hi := min(lo+chunk, len(rows))
		b := mat.NewDense(hi-lo, m.Dim, nil)
		for i, r := range rows[lo:hi] {
			b.SetRow(i, x.RawRowView(r))
		}
		for _, lp := range m.LogPDF(b, nil) {
			sum -= lp
		}
	}
	return sum / (float64(len(rows)) * float64(m.Dim) * math.Ln2)
}

// idxMagic starts an IDX file of unsigned bytes with 3 dimensions
// (images × rows × columns), as MNIST's image files.
var idxMagic = []byte{0, 0, 0x08, 3}

// readPixels reads the images at path: an IDX file of unsigned bytes
// (found by its magic number; its images are 1×H×W, and shape, when given,
// must agree) or a CSV file of one image per row (shape required). lines
// names the place of a row for errors.
func (f *fitFlags) readPixels(e *env, path string, shape flows.Shape) (*mat.Dense, func(int) string, flows.Shape, error) {
	if path != "-" {
		if x, s, ok, err := readIDX(path); ok || err != nil {
			if err == nil && shape != (flows.Shape{}) && shape != s {
				err = fmt.Errorf("%s: an IDX file of %v images, but --shape says %v", path, s, shape)
			}
			return x, func(i int) string { return "image " + strconv.Itoa(i) }, s, err
		}
	}
	if shape == (flows.Shape{}) {
		return nil, nil, shape, usagef("fit", "--kind %s needs --shape C,H,W for a CSV file of pixels", model.KindImageGlow)
	}
	opt, err := f.csv.options("fit")
	if err != nil {
		return nil, nil, shape, err
	}
	t, err := readTable(e, path, opt)
	if err != nil {
		return nil, nil, shape, err
	}
	if len(t.CatNames) > 0 || t.C != nil {
		return nil, nil, shape, fmt.Errorf("%s: text or context columns: an image file holds pixel values only", path)
	}
	if _, d := t.X.Dims(); d != shape.Size() {
		return nil, nil, shape, fmt.Errorf("%s: %d columns, but images of shape %v have C·H·W = %d pixels", path, d, shape, shape.Size())
	}
	return t.X, func(i int) string { return strconv.Itoa(t.Lines[i]) }, shape, nil
}

// readIDX reads an IDX file of unsigned-byte images, gzipped or not (as
// MNIST's files ship); ok is false, with no error, when the file does not
// start with the IDX magic number.
func readIDX(path string) (x *mat.Dense, s flows.Shape, ok bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, s, false, err
	}
	if len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, s, false, nil // not gzip after all: read it as CSV
		}
		if data, err = io.ReadAll(zr); err != nil {
			return nil, s, true, fmt.Errorf("%s: %v", path, err)
		}
	}
	if len(data) < 4 || !bytes.Equal(data[:4], idxMagic) {
		return nil, s, false, nil
	}
	if len(data) < 16 {
		return nil, s, true, fmt.Errorf("%s: an IDX file that ends at byte %d, inside its sizes (bytes 4 to 16)", path, len(data))
	}
	n := int(binary.BigEndian.Uint32(data[4:]))
	s = flows.Shape{C: 1, H: int(binary.BigEndian.Uint32(data[8:])), W: int(binary.BigEndian.Uint32(data[12:]))}
	if want := 16 + int64(n)*int64(s.Size()); n < 1 || s.H < 1 || s.W < 1 || int64(len(data)) != want {
		return nil, s, true, fmt.Errorf("%s: an IDX file of %d images of %v is %d bytes long, not %d", path, n, s, want, len(data))
	}
	pix := make([]float64, len(data)-16)
	for i, p := range data[16:] {
		pix[i] = float64(p)
	}
	return mat.NewDense(n, s.Size(), pix), s, true, nil
}

// writeImageGrid writes the images x (rows of shape s, pixel values 0 to
// 255, channel-major) to path as a PNG grid, atomically: gray for one
// channel, RGB for three, one pixel of gap.
func writeImageGrid(path string, x *mat.Dense, s flows.Shape) error {
	if s.C != 1 && s.C != 3 {
		return fmt.Errorf("%s: images of %d channels; a PNG grid shows 1 (gray) or 3 (RGB)", path, s.C)
	}
	n, _ := x.Dims()
	cols := int(math.Ceil(math.Sqrt(float64(n))))
	rows := (n + cols - 1) / cols
	img := image.NewRGBA(image.Rect(0, 0, cols*(s.W+1)+1, rows*(s.H+1)+1))
	hw := s.H * s.W
	for i := range n {
		row := x.RawRowView(i)
		ox, oy := 1+(i%cols)*(s.W+1), 1+(i/cols)*(s.H+1)
		for y := range s.H {
			for z := range s.W {
				var c [3]uint8
				for k := range 3 {
					c[k] = uint8(row[min(k, s.C-1)*hw+y*s.W+z])
				}
				img.Set(ox+z, oy+y, color.RGBA{c[0], c[1], c[2], 255})
			}
		}
	}
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// sampleImages writes n samples of the image model m at the given
// temperature to the PNG file out.
func sampleImages(m *model.Model, path, out string, n int, key flows.Key, temperature float64) error {
	if m.Config.Shape == (flows.Shape{}) {
		return fmt.Errorf("%s is a model of %s, not of images: a PNG grid needs an image model (--kind %s)", path, m.Config.Kind, model.KindImageGlow)
	}
	x, err := m.SampleTemperature(key, n, temperature)
	if err != nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "flows: "))
	}
	return writeImageGrid(out, x, m.Config.Shape)
}
