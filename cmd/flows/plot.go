package main

import (
	"bytes"
	"flag"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/gonormflows/flows"
)

// Plot sizes and limits.
const (
	plotGrid     = 200  // the heat map's cells per side
	plotMaxData  = 5000 // the most data rows drawn (evenly spaced through the file)
	plotSize     = 6 * vg.Inch
	plotQuantile = 0.005 // the box spans these quantiles of the points, padded
	plotPad      = 0.1   // the padding, a fraction of the quantiles' span
)

// plotFlags are the flags of flows plot.
type plotFlags struct {
	csv        csvFlags
	out        string
	n          int
	seed       uint64
	xlim, ylim rangeFlag
	title      string
}

var plotCommand = &command{
	name:  "plot",
	args:  "model.flow [data.csv]",
	short: "draw a 2-D model's density, samples and data",
	long: `Plot draws a model of two columns: its density as a heat map, -n rows
sampled from it (orange) and, when a CSV file is given, its data rows (dark
dots; two columns, or the two that --columns selects, in the model's
order). It writes the picture to the -o file, atomically, as PNG, or as
SVG or PDF when the name ends in .svg or .pdf.

The axes span the middle 99% of the points, padded by a tenth, unless
--xlim and --ylim set them; points outside are not drawn.`,
	nArgs: [2]int{1, 2},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &plotFlags{}
		f.csv.add(fs)
		fs.StringVar(&f.out, "o", "", "the picture `file` to write (required): .png, .svg or .pdf")
		fs.IntVar(&f.n, "n", 1000, "the number of samples to draw (0: none)")
		fs.Uint64Var(&f.seed, "seed", 0, "the seed of the samples")
		fs.Var(&f.xlim, "xlim", "the horizontal axis' range `lo,hi`")
		fs.Var(&f.ylim, "ylim", "the vertical axis' range `lo,hi`")
		fs.StringVar(&f.title, "title", "", "the picture's title (default the file names)")
		return func(e *env, args []string) error { return f.run(e, args) }
	},
}

// run draws the plot of the model args[0] over the data args[1], if any.
func (f *plotFlags) run(e *env, args []string) error {
	if f.out == "" || f.out == "-" {
		return usagef("plot", "no picture file: give one with -o plot.png")
	}
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(f.out), "."))
	switch format {
	case "png", "svg", "pdf":
	case "":
		format = "png"
	default:
		return usagef("plot", "-o %s: want a .png, .svg or .pdf file", f.out)
	}
	if f.n < 0 {
		return usagef("plot", "-n %d: want 0 or more", f.n)
	}
	opt, err := f.csv.options("plot")
	if err != nil {
		return err
	}
	if err := checkNotInput(f.out, args...); err != nil {
		return err
	}
	m, err := loadModel(args[0])
	if err != nil {
		return err
	}
	if m.ContextDim > 0 {
		return fmt.Errorf("%s is a conditional model; plot draws unconditional ones", args[0])
	}
	if m.Dim != 2 {
		return fmt.Errorf("%s is a model of %d %s; plot draws models of 2", args[0], m.Dim, plural(m.Dim, "column"))
	}
	names := m.Config.Columns
	if len(names) == 0 {
		names = []string{"x0", "x1"}
	}
	var data *mat.Dense
	if len(args) == 2 {
		t, err := readTable(e, args[1], forModel(opt, m, args[0]))
		if err != nil {
			return err
		}
		data, names = t.X, t.Names
	}
	var samples *mat.Dense
	if f.n > 0 {
		samples = m.Sample(flows.NewKey(f.seed), f.n, nil)
	}

	// The box: from the data, or else the samples.
	pts := data
	if pts == nil {
		pts = samples
	}
	xlim, ylim := f.xlim, f.ylim
	if pts != nil {
		if !xlim.set {
			xlim.lo, xlim.hi = span(mat.Col(nil, 0, pts))
		}
		if !ylim.set {
			ylim.lo, ylim.hi = span(mat.Col(nil, 1, pts))
		}
	} else if !xlim.set || !ylim.set {
		return usagef("plot", "with no data and -n 0, give the axes with --xlim and --ylim")
	}

	title := f.title
	if title == "" {
		title = filepath.Base(args[0])
		if len(args) == 2 {
			title += " on " + filepath.Base(args[1])
		}
	}
	p, err := drawPlot(m, title, names, xlim, ylim, data, samples)
	if err != nil {
		return err
	}
	wt, err := p.WriterTo(plotSize, plotSize, format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	return writeOutput(e, f.out, func(w io.Writer) error {
		_, err := w.Write(buf.Bytes())
		return err
	})
}

// span returns the range of the axis for the values v: their quantiles
// plotQuantile and 1−plotQuantile, padded by plotPad of the distance
// between them on each side.
func span(v []float64) (lo, hi float64) {
	v = slices.Clone(v)
	slices.Sort(v)
	q := func(p float64) float64 { return v[int(math.Round(p*float64(len(v)-1)))] }
	lo, hi = q(plotQuantile), q(1-plotQuantile)
	pad := plotPad * (hi - lo)
	if pad == 0 {
		pad = max(1, math.Abs(lo)/10)
	}
	return lo - pad, hi + pad
}

// densityGrid is the model's density on a regular grid, for the heat map.
type densityGrid struct {
	n          int
	xlim, ylim rangeFlag
	z          []float64 // row-major, a row per y
}

func (g *densityGrid) Dims() (c, r int)   { return g.n, g.n }
func (g *densityGrid) Z(c, r int) float64 { return g.z[r*g.n+c] }
func (g *densityGrid) X(c int) float64 {
	return g.xlim.lo + (float64(c)+0.5)*(g.xlim.hi-g.xlim.lo)/float64(g.n)
}
func (g *densityGrid) Y(r int) float64 {
	return g.ylim.lo + (float64(r)+0.5)*(g.ylim.hi-g.ylim.lo)/float64(g.n)
}

// blues is the heat map's palette: from white (no density) to dark blue.
type blues struct{}

func (blues) Colors() []color.Color {
	const n = 256
	c := make([]color.Color, n)
	from, to := [3]float64{255, 255, 255}, [3]float64{8, 48, 107}
	for i := range c {
		t := float64(i) / (n - 1)
		mix := func(k int) uint8 { return uint8(math.Round(from[k] + t*(to[k]-from[k]))) }
		c[i] = color.NRGBA{R: mix(0), G: mix(1), B: mix(2), A: 255}
	}
	return c
}

// drawPlot makes the plot: the heat map of the density over the box, the
// data (if any) and the samples (if any) over it.
func drawPlot(m *flows.Model, title string, names []string, xlim, ylim rangeFlag, data, samples *mat.Dense) (*plot.Plot, error) {
	g := &densityGrid{n: plotGrid, xlim: xlim, ylim: ylim}
	x := mat.NewDense(g.n*g.n, 2, nil)
	for r := range g.n {
		for c := range g.n {
			x.Set(r*g.n+c, 0, g.X(c))
			x.Set(r*g.n+c, 1, g.Y(r))
		}
	}
	g.z = m.LogPDF(x, nil)
	top := 0.0
	for i, v := range g.z {
		v = math.Exp(v)
		if math.IsNaN(v) {
			v = 0 // a point the model cannot evaluate shows as no density
		}
		g.z[i] = v
		top = max(top, v)
	}
	if top == 0 || math.IsInf(top, 0) {
		top = 1
	}

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = names[0], names[1]
	hm := plotter.NewHeatMap(g, blues{})
	hm.Min, hm.Max = 0, top
	hm.Overflow = color.NRGBA{R: 8, G: 48, B: 107, A: 255}
	hm.Rasterized = true
	p.Add(hm)
	p.Legend.Top = true

	add := func(label string, pts *mat.Dense, maxPts int, col color.Color, radius vg.Length) error {
		n, _ := pts.Dims()
		stride := 1
		if n > maxPts {
			stride = (n + maxPts - 1) / maxPts
		}
		var xys plotter.XYs
		for i := 0; i < n; i += stride {
			px, py := pts.At(i, 0), pts.At(i, 1)
			if px >= xlim.lo && px <= xlim.hi && py >= ylim.lo && py <= ylim.hi {
				xys = append(xys, plotter.XY{X: px, Y: py})
			}
		}
		s, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		s.GlyphStyle.Shape = draw.CircleGlyph{}
		s.GlyphStyle.Radius = radius
		s.GlyphStyle.Color = col
		p.Add(s)
		p.Legend.Add(label, s)
		return nil
	}
	if data != nil {
		if err := add("data", data, plotMaxData, color.NRGBA{R: 20, G: 20, B: 20, A: 150}, vg.Points(1.4)); err != nil {
			return nil, err
		}
	}
	if samples != nil {
		if err := add("samples", samples, math.MaxInt, color.NRGBA{R: 240, G: 110, B: 10, A: 170}, vg.Points(1.4)); err != nil {
			return nil, err
		}
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xlim.lo, xlim.hi, ylim.lo, ylim.hi
	return p, nil
}
