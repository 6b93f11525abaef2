// Package figs draws the pictures of the examples with gonum/plot: scatter
// plots of point sets with a legend, density heat maps with a colour bar
// (on a linear or a log scale), and grids of them; each with a title and
// axis labels, in a frame fitted to the data whose aspect follows it. It
// writes them atomically as PNG (internal/atomicfile), with mode 0666 less
// the umask, as other programs write files: 0644 under the usual umask.
package figs

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/internal/plotstyle"
)

// Box is the region a picture shows.
type Box struct{ XMin, XMax, YMin, YMax float64 }

// BoxOf returns the box that fits the first two columns of the point
// sets: on each axis, from the 0.5% to the 99.5% quantile of all the
// points, padded by a tenth of that span on each side (so that a few
// outliers do not shrink the rest into a corner).
func BoxOf(sets ...*mat.Dense) Box {
	var xs, ys []float64
	for _, s := range sets {
		n, _ := s.Dims()
		for i := range n {
			x, y := s.At(i, 0), s.At(i, 1)
			if !math.IsNaN(x) && !math.IsInf(x, 0) && !math.IsNaN(y) && !math.IsInf(y, 0) {
				xs, ys = append(xs, x), append(ys, y)
			}
		}
	}
	b := Box{XMin: -1, XMax: 1, YMin: -1, YMax: 1}
	if len(xs) > 0 {
		b.XMin, b.XMax = span(xs)
		b.YMin, b.YMax = span(ys)
	}
	return b
}

// span returns the padded quantile range of v (see BoxOf).
func span(v []float64) (lo, hi float64) {
	v = slices.Clone(v)
	slices.Sort(v)
	q := func(p float64) float64 { return v[int(math.Round(p*float64(len(v)-1)))] }
	lo, hi = q(0.005), q(0.995)
	pad := 0.1 * (hi - lo)
	if pad == 0 {
		pad = math.Max(1, math.Abs(lo)/10)
	}
	return lo - pad, hi + pad
}

// Labels are a picture's title and axis labels.
type Labels struct{ Title, X, Y string }

// Set is a named set of points: the first two columns of its rows.
type Set struct {
	Name   string
	Points *mat.Dense
}

// Scale is the colour scale of a density.
type Scale int

const (
	// Linear colours the density from 0 to its peak.
	Linear Scale = iota
	// Log colours the log10 of the density over the Decades powers of 10
	// below its peak: a sharp peak does not wash the rest out.
	Log
)

// Decades is the span of the Log scale, in powers of 10.
const Decades = 4

// setColors are the colours of the point sets, in turn.
var setColors = []color.NRGBA{{R: 31, G: 119, B: 180, A: 255}, {R: 235, G: 105, B: 10, A: 255}, {R: 44, G: 160, B: 44, A: 255}}

// Panel is one picture: a plot and, for a density, its colour bar.
type Panel struct {
	plot *plot.Plot
	bar  *plot.Plot // nil without a colour bar
	box  Box
}

// barWidth is the width of a colour bar with its labels.
const barWidth = 1.0 * vg.Inch

// Draw draws the panel on c.
func (p *Panel) Draw(c draw.Canvas) {
	c.SetColor(color.White)
	c.Fill(c.Rectangle.Path())
	if p.bar == nil {
		p.plot.Draw(c)
		return
	}
	w := c.Max.X - c.Min.X
	p.plot.Draw(draw.Crop(c, 0, -barWidth, 0, 0))
	// The bar spans the plot's data area, from bottom to top.
	data := p.plot.DataCanvas(draw.Crop(c, 0, -barWidth, 0, 0))
	bar := draw.Crop(c, w-barWidth+0.1*vg.Inch, 0, data.Min.Y-c.Min.Y-0.02*vg.Inch, -(c.Max.Y-data.Max.Y)+0.02*vg.Inch)
	p.bar.Draw(bar)
}

// size returns the panel's size for a plot area of about side: the aspect
// of its box, within limits, plus the colour bar.
func (p *Panel) size(side vg.Length) (w, h vg.Length) {
	aspect := (p.box.YMax - p.box.YMin) / (p.box.XMax - p.box.XMin)
	aspect = math.Min(1.6, math.Max(0.45, aspect))
	w, h = side, side*vg.Length(aspect)+0.6*vg.Inch // the title and the axis' labels
	if p.bar != nil {
		w += barWidth
	}
	return w + 0.6*vg.Inch, h // the vertical axis' labels
}

// newPlot returns a plot with the labels, over box.
func newPlot(l Labels, box Box) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = l.Title, l.X, l.Y
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = box.XMin, box.XMax, box.YMin, box.YMax
	p.X.Padding, p.Y.Padding = 0, 0
	return p
}

// ScatterPanel returns the scatter plot of the point sets within box, each
// in its colour, with a legend of their names. The more points a set has,
// the smaller and more transparent they are drawn.
func ScatterPanel(l Labels, box Box, sets ...Set) (*Panel, error) {
	p := newPlot(l, box)
	for k, s := range sets {
		n, _ := s.Points.Dims()
		xys := make(plotter.XYs, 0, n)
		for i := range n {
			x, y := s.Points.At(i, 0), s.Points.At(i, 1)
			if x >= box.XMin && x <= box.XMax && y >= box.YMin && y <= box.YMax {
				xys = append(xys, plotter.XY{X: x, Y: y})
			}
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return nil, err
		}
		c := setColors[k%len(setColors)]
		radius, alpha := pointStyle(n)
		c.A = alpha
		sc.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: radius, Color: c}
		p.Add(sc)
		// The legend shows an opaque, larger point.
		thumb, _ := plotter.NewScatter(plotter.XYs{{}})
		c.A = 255
		thumb.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: vg.Points(3), Color: c}
		p.Legend.Add(fmt.Sprintf("%s (%d)", s.Name, n), thumb)
	}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	return &Panel{plot: p, box: box}, nil
}

// pointStyle returns the radius and opacity of n points.
func pointStyle(n int) (vg.Length, uint8) {
	f := math.Max(1, float64(n))
	r := math.Min(2.2, math.Max(0.6, 2.2*math.Pow(150/f, 0.25)))
	a := math.Min(0.85, math.Max(0.12, math.Sqrt(150/f)))
	return vg.Points(r), uint8(math.Round(255 * a))
}

// grid is a plotter.GridXYZ over a regular grid.
type grid struct {
	n    int
	box  Box
	vals []float64 // row-major, row = y index
}

func (g grid) Dims() (int, int)   { return g.n, g.n }
func (g grid) Z(c, r int) float64 { return g.vals[r*g.n+c] }
func (g grid) X(c int) float64 {
	return g.box.XMin + (float64(c)+0.5)*(g.box.XMax-g.box.XMin)/float64(g.n)
}
func (g grid) Y(r int) float64 {
	return g.box.YMin + (float64(r)+0.5)*(g.box.YMax-g.box.YMin)/float64(g.n)
}

// DensityPanel returns the heat map of the density exp(logPDF) on an n×n
// grid over box, with a colour bar on the scale.
func DensityPanel(l Labels, box Box, n int, scale Scale, logPDF func(x *mat.Dense) []float64) *Panel {
	g := grid{n: n, box: box}
	x := mat.NewDense(n*n, 2, nil)
	for r := range n {
		for c := range n {
			x.Set(r*n+c, 0, g.X(c))
			x.Set(r*n+c, 1, g.Y(r))
		}
	}
	g.vals = logPDF(x)
	for i, v := range g.vals {
		g.vals[i] = math.Exp(v)
	}
	return heatPanel(l, box, g, scale, "density")
}

// HistPanel returns the heat map of the 2-D histogram of the first two
// columns of x on an n×n grid over box, as a density (the share of the
// rows in a cell over the cell's area), with a colour bar on the scale.
func HistPanel(l Labels, box Box, n int, scale Scale, x *mat.Dense) *Panel {
	g := grid{n: n, box: box, vals: make([]float64, n*n)}
	rows, _ := x.Dims()
	w, h := (box.XMax-box.XMin)/float64(n), (box.YMax-box.YMin)/float64(n)
	for i := range rows {
		c := int(math.Floor((x.At(i, 0) - box.XMin) / w))
		r := int(math.Floor((x.At(i, 1) - box.YMin) / h))
		if c >= 0 && c < n && r >= 0 && r < n {
			g.vals[r*n+c] += 1 / (float64(rows) * w * h)
		}
	}
	return heatPanel(l, box, g, scale, "density of the rows")
}

// heatPanel returns the heat map of g's values with a colour bar.
func heatPanel(l Labels, box Box, g grid, scale Scale, what string) *Panel {
	top := 0.0
	for i, v := range g.vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			g.vals[i] = 0 // a point the density cannot be evaluated at
		}
		top = math.Max(top, g.vals[i])
	}
	if top == 0 {
		top = 1
	}
	lo, hi, label := 0.0, top, what
	if scale == Log {
		for i, v := range g.vals {
			g.vals[i] = math.Log10(v) // −Inf for 0: drawn white
		}
		hi = math.Ceil(math.Log10(top))
		lo, label = hi-Decades, what+" (log scale)"
	}
	pal := plotstyle.Density{}.Colors()
	p := newPlot(l, box)
	hm := plotter.NewHeatMap(g, plotstyle.Density{})
	hm.Min, hm.Max = lo, hi
	hm.Underflow, hm.NaN, hm.Overflow = color.White, color.White, pal[len(pal)-1]
	hm.Rasterized = true // one image, without seams between cells
	p.Add(hm)

	bar := plot.New()
	bar.HideX()
	img := image.NewNRGBA(image.Rect(0, 0, 1, len(pal)))
	for i, c := range pal {
		img.Set(0, len(pal)-1-i, c)
	}
	bar.Add(plotter.NewImage(img, 0, lo, 1, hi))
	bar.Y.Min, bar.Y.Max, bar.Y.Padding = lo, hi, 0
	bar.Y.Label.Text = label
	bar.Y.Label.TextStyle.Font.Size = vg.Points(10)
	bar.Y.Tick.Label.Font.Size = vg.Points(9)
	if scale == Log {
		bar.Y.Tick.Marker = plotstyle.PowerTicks{}
	}
	return &Panel{plot: p, bar: bar, box: box}
}

// Scatter saves the ScatterPanel of the sets as a PNG at path.
func Scatter(path string, l Labels, box Box, sets ...Set) error {
	p, err := ScatterPanel(l, box, sets...)
	if err != nil {
		return err
	}
	return p.Save(path)
}

// Density saves the DensityPanel of logPDF as a PNG at path.
func Density(path string, l Labels, box Box, n int, scale Scale, logPDF func(x *mat.Dense) []float64) error {
	return DensityPanel(l, box, n, scale, logPDF).Save(path)
}

// Save writes the panel as a PNG at path, atomically, with a plot area
// 5 inches wide.
func (p *Panel) Save(path string) error {
	w, h := p.size(5 * vg.Inch)
	img := vgimg.New(w, h)
	p.Draw(draw.New(img))
	return write(path, vgimg.PngCanvas{Canvas: img})
}

// Grid draws panels[r][c] as tiles of a grid of len(panels) rows, each
// tile size wide (and as high as the first row's boxes make it), and saves
// it as a PNG at path, atomically. A nil panel leaves its tile empty.
func Grid(path string, panels [][]*Panel, size vg.Length) error {
	rows := len(panels)
	if rows == 0 || len(panels[0]) == 0 {
		return fmt.Errorf("figs: Grid: no panels")
	}
	cols := len(panels[0])
	var tw, th vg.Length
	for _, row := range panels {
		for _, p := range row {
			if p != nil {
				w, h := p.size(size)
				tw, th = max(tw, w), max(th, h)
			}
		}
	}
	img := vgimg.New(vg.Length(cols)*tw, vg.Length(rows)*th)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter, PadY: vg.Millimeter}
	for r, row := range panels {
		for c, p := range row {
			if p != nil {
				p.Draw(t.At(dc, c, r))
			}
		}
	}
	return write(path, vgimg.PngCanvas{Canvas: img})
}

// SavePlot writes the plot, w by h, as a PNG at path, atomically.
func SavePlot(path string, p *plot.Plot, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return err
	}
	return write(path, wt)
}

// SaveImage writes the image as a PNG at path, atomically.
func SaveImage(path string, img image.Image) error {
	return atomicfile.Write(path, func(w io.Writer) error { return png.Encode(w, img) })
}

// write writes the picture wt at path, atomically.
func write(path string, wt io.WriterTo) error {
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := wt.WriteTo(w)
		return err
	})
}
