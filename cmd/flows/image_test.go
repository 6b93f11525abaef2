package main

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// barImages returns n 8×8 images of a bright row or column on a dark,
// noisy ground, as pixel values.
func barImages(n int) [][]byte {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([][]byte, n)
	for i := range out {
		k, vertical := rng.IntN(8), rng.IntN(2) == 0
		img := make([]byte, 64)
		for y := range 8 {
			for x := range 8 {
				v := rng.IntN(40)
				if (vertical && x == k) || (!vertical && y == k) {
					v = 200 + rng.IntN(56)
				}
				img[y*8+x] = byte(v)
			}
		}
		out[i] = img
	}
	return out
}

// writeBarsCSV writes images as CSV rows with a header p0…p63.
func writeBarsCSV(t *testing.T, path string, imgs [][]byte) {
	t.Helper()
	var b strings.Builder
	for j := range 64 {
		if j > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "p%d", j)
	}
	b.WriteByte('\n')
	for _, img := range imgs {
		for j, v := range img {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(int(v)))
		}
		b.WriteByte('\n')
	}
	writeFile(t, path, b.String())
}

// writeBarsIDX writes images as an IDX file of unsigned bytes.
func writeBarsIDX(t *testing.T, path string, imgs [][]byte) {
	t.Helper()
	b := []byte{0, 0, 8, 3}
	for _, v := range []uint32{uint32(len(imgs)), 8, 8} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	for _, img := range imgs {
		b = append(b, img...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reportedBits returns the bits/dim figure fit printed.
func reportedBits(t *testing.T, stderr string) float64 {
	t.Helper()
	_, after, ok := strings.Cut(stderr, "images: ")
	if !ok {
		t.Fatalf("no bits/dim in:\n%s", stderr)
	}
	v, err := strconv.ParseFloat(strings.Fields(after)[0], 64)
	if err != nil || !strings.HasPrefix(strings.Fields(after)[1], "bits/dim") {
		t.Fatalf("bad bits/dim in %q", after)
	}
	return v
}

func TestImageFitSample(t *testing.T) {
	dir := t.TempDir()
	imgs := barImages(300)
	writeBarsCSV(t, filepath.Join(dir, "bars.csv"), imgs)
	r := mustRun(t, dir, "fit", "bars.csv", "-o", "img.flow", "--kind", "image-glow", "--shape", "1,8,8",
		"--epochs", "2", "--steps", "2", "--channels", "8", "--lr", "3e-3")
	// A uniform model of the pixels gives 8 bits/dim; the noise pixels
	// alone (uniform on 0..39) hold log₂ 40 ≈ 5.3.
	if bits := reportedBits(t, r.stderr); !(bits > 3 && bits < 7.5) {
		t.Errorf("validation %v bits/dim after 2 epochs, want well under 8:\n%s", bits, r.stderr)
	}
	r = mustRun(t, dir, "sample", "img.flow", "-n", "5", "--seed", "2")
	rows := readCSV(t, r.stdout)
	if len(rows) != 6 || len(rows[1]) != 64 {
		t.Fatalf("sample gave %d records of %d fields", len(rows), len(rows[1]))
	}
	for _, row := range rows[1:] {
		for _, cell := range row {
			if v, err := strconv.Atoi(cell); err != nil || v < 0 || v > 255 {
				t.Fatalf("sample value %q, want an integer 0 to 255", cell)
			}
		}
	}
	mustRun(t, dir, "sample", "img.flow", "-n", "10", "--temperature", "0.7", "-o", "grid.png")
	f, err := os.Open(filepath.Join(dir, "grid.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 10 images: 4 columns and 3 rows of 8×8 with a one-pixel gap.
	if b := img.Bounds(); b.Dx() != 4*9+1 || b.Dy() != 3*9+1 {
		t.Errorf("grid is %v, want 37×28", b)
	}
	// The same images as an IDX file: the shape comes from the file.
	writeBarsIDX(t, filepath.Join(dir, "bars-ubyte"), imgs)
	r = mustRun(t, dir, "fit", "bars-ubyte", "-o", "idx.flow", "--kind", "image-glow", "--epochs", "1", "--steps", "1", "--channels", "4")
	if !strings.Contains(r.stderr, "images 1×8×8") {
		t.Errorf("IDX fit:\n%s", r.stderr)
	}
	// Gzipped, as MNIST's files ship.
	raw, err := os.ReadFile(filepath.Join(dir, "bars-ubyte"))
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	writeFile(t, filepath.Join(dir, "bars-ubyte.gz"), gz.String())
	r = mustRun(t, dir, "fit", "bars-ubyte.gz", "-o", "gz.flow", "--kind", "image-glow", "--epochs", "1", "--steps", "1", "--channels", "4")
	if !strings.Contains(r.stderr, "images 1×8×8") || readText(t, filepath.Join(dir, "gz.flow")) != readText(t, filepath.Join(dir, "idx.flow")) {
		t.Errorf("gzipped IDX fit differs from the plain one:\n%s", r.stderr)
	}
	noTemps(t, dir)
}

func TestImageErrors(t *testing.T) {
	dir := t.TempDir()
	imgs := barImages(40)
	imgs[3][5] = 0
	writeBarsCSV(t, filepath.Join(dir, "bars.csv"), imgs)
	writeBarsIDX(t, filepath.Join(dir, "bars-ubyte"), imgs)
	bad := strings.Replace(readText(t, filepath.Join(dir, "bars.csv")), "\n"+strconv.Itoa(int(imgs[1][0]))+",", "\n300,", 1)
	writeFile(t, filepath.Join(dir, "bad.csv"), bad)
	writeMixture(t, filepath.Join(dir, "data.csv"), 50)
	fit := []string{"fit", "-o", "m.flow", "--epochs", "1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bars.csv", "--kind", "image-glow"}, "needs --shape C,H,W"},
		{[]string{"bars.csv", "--kind", "image-glow", "--shape", "1,8"}, "want C,H,W"},
		{[]string{"bars.csv", "--kind", "image-glow", "--shape", "1,4,4"}, "64 columns, but images of shape 1×4×4 have C·H·W = 16 pixels"},
		{[]string{"bars.csv", "--kind", "image-glow", "--shape", "1,8,8", "--layers", "3"}, "--layers: not for --kind image-glow"},
		{[]string{"data.csv", "--kind", "realnvp", "--shape", "1,1,2"}, "--shape: for --kind image-glow only"},
		{[]string{"bad.csv", "--kind", "image-glow", "--shape", "1,8,8"}, "bad.csv:3: pixel 0: 300 is not a pixel value 0 to 255"},
		{[]string{"bars-ubyte", "--kind", "image-glow", "--shape", "1,4,16"}, "an IDX file of 1×8×8 images, but --shape says 1×4×16"},
	} {
		r := flowsRun(t, dir, append(fit, tc.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("fit %v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	mustRun(t, dir, "fit", "data.csv", "-o", "v.flow", "--kind", "realnvp", "--epochs", "1", "--quiet")
	if r := flowsRun(t, dir, "sample", "v.flow", "-o", "g.png"); r.code == 0 || !strings.Contains(r.stderr, "not of images") {
		t.Errorf("PNG of a vector model: exit %d, %q", r.code, r.stderr)
	}
	if r := flowsRun(t, dir, "sample", "v.flow", "--temperature", "-1"); r.code == 0 || !strings.Contains(r.stderr, "temperature -1") {
		t.Errorf("negative temperature: exit %d, %q", r.code, r.stderr)
	}
}

// TestImageDefaultBatch: --kind image-glow takes batches of imageBatch = 32
// rows unless --batch says otherwise (the general default would be a
// tenth of the rows): 288 training rows (320 less the 32 held out) make
// ⌊288/32⌋ = 9 steps an epoch, and --batch 96 makes 3.
func TestImageDefaultBatch(t *testing.T) {
	dir := t.TempDir()
	writeBarsCSV(t, filepath.Join(dir, "bars.csv"), barImages(320))
	for _, c := range []struct {
		args  []string
		steps string
	}{{nil, "9"}, {[]string{"--batch", "96"}, "3"}} {
		args := append([]string{"fit", "bars.csv", "-o", "img.flow", "--kind", "image-glow", "--shape", "1,8,8",
			"--epochs", "1", "--steps", "1", "--channels", "4", "--log", "log.csv"}, c.args...)
		mustRun(t, dir, args...)
		log, err := os.ReadFile(filepath.Join(dir, "log.csv"))
		if err != nil {
			t.Fatal(err)
		}
		rows := readCSV(t, string(log))
		if len(rows) != 2 || rows[0][1] != "step" || rows[1][1] != c.steps {
			t.Errorf("%v: log %v, want one epoch of %s steps", c.args, rows, c.steps)
		}
	}
}
