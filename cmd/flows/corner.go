package main

// The corner plot of a model, drawn by flows plot and by the model card of
// flows serve: one picture, written once.

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot/plotter"

	"github.com/gonormflows/flows/model"
)

// Sizes and counts of the corner plot.
const (
	cornerMaxData  = 5000  // the most data rows drawn (evenly spaced through the file)
	cornerMarginal = 20000 // the samples the marginal densities are estimated from
	cornerGrid     = 160   // the exact density's cells per side (a model of 2 columns)
	cornerBins     = 50    // the bins per side of a density panel estimated from samples
	cornerCurve    = 400   // the points of a 1-D model's exact density curve
	cornerDPI      = 110   // the PNG's dots per inch
	cornerDecades  = 4     // the log scale spans this many powers of 10
	plotQuantile   = 0.005 // an axis spans these quantiles of the points, padded
	plotPad        = 0.1   // the padding, a fraction of the quantiles' span
	cornerMinPanel = 1.1   // inches: the smallest panel side
	cornerMaxPanel = 2.6   // inches: the largest panel side
	cornerWidth    = 9.0   // inches: the panels' total width, within those bounds
	cornerStrip    = 1.45  // inches: the strip for the legend and the colour bar
	cornerTitle    = 0.45  // inches: the title's band
	cornerSamples  = 2000  // samples scattered by default without data
	cornerMinScat  = 1000  // samples scattered by default at least, with data
	cornerMaxScat  = cornerMaxData
)

// cornerOptions says what a corner plot shows.
type cornerOptions struct {
	// Title is the picture's title.
	Title string
	// Names names the model's columns (one per column).
	Names []string
	// Show lists the model's columns to draw, in order (nil: all).
	Show []int
	// Data holds data rows in the model's column order (nil: none); at
	// most cornerMaxData rows, evenly spaced, are drawn.
	Data *mat.Dense
	// N is the number of samples to scatter (0: none; negative: the
	// default of cornerSamplesFor); Seed is the seed of every sample.
	N    int
	Seed uint64
	// Lims holds an axis range for each shown column (nil, or unset
	// entries, take the range from the points).
	Lims []rangeFlag
	// LogScale colours the density panels by the log10 of the density.
	LogScale bool
	// DataLevels holds, for a model with categories, each data row's level
	// of the first categorical column (row-major levels of all of them, as
	// table.Table's Cats); the points are coloured by it.
	DataLevels []string
}

// cornerSamplesFor is the default number of samples scattered over n data
// rows (n = 0: no data): as many as the data rows, so that neither hides
// the other, from cornerMinScat to cornerMaxScat; cornerSamples without
// data.
func cornerSamplesFor(n int) int {
	if n == 0 {
		return cornerSamples
	}
	return min(max(n, cornerMinScat), cornerMaxScat)
}

// corner is a corner plot ready to draw: k×k panels over the shown columns
// (the panel in row i and column j has column j across and column i up),
// with marginal histograms on the diagonal, data and samples below it and
// the model's density above it, a legend and a colour bar.
type corner struct {
	title    string
	names    []string    // of the shown columns
	lims     []rangeFlag // of the shown columns
	data     [][]float64 // the shown columns of the drawn data rows, by column
	samples  [][]float64 // the shown columns of the scattered samples, by column
	diag     []panelHist // per shown column
	upper    [][]*cellGrid
	exact    bool // the density panels are the exact density, not estimates
	logScale bool
	zlo, zhi float64 // the colour scale
	zLabel   string
	// For a model with categories, the points are coloured by the first
	// categorical column: its name and levels, and the level (an index)
	// of each drawn data row and sample.
	levelColumn            string
	levels                 []string
	dataLevel, sampleLevel []float64
}

// panelHist is a diagonal panel: the data's histogram and the model's
// marginal density, both as densities.
type panelHist struct {
	dataBins []plotter.HistogramBin
	dataW    float64
	model    plotter.XYs // the marginal density as a curve or steps
	top      float64
}

// cellGrid is a density on a regular grid of cells, a plotter.GridXYZ.
type cellGrid struct {
	nx, ny             int
	xlo, xhi, ylo, yhi float64
	z                  []float64 // row-major, a row per y
}

func (g *cellGrid) Dims() (c, r int)   { return g.nx, g.ny }
func (g *cellGrid) Z(c, r int) float64 { return g.z[r*g.nx+c] }
func (g *cellGrid) X(c int) float64 {
	return g.xlo + (float64(c)+0.5)*(g.xhi-g.xlo)/float64(g.nx)
}
func (g *cellGrid) Y(r int) float64 {
	return g.ylo + (float64(r)+0.5)*(g.yhi-g.ylo)/float64(g.ny)
}

// newCorner computes the corner plot of the unconditional model m: it
// draws the samples, evaluates the density and bins the data.
func newCorner(m *model.Model, o cornerOptions) (*corner, error) {
	if m.ContextDim > 0 {
		return nil, fmt.Errorf("a conditional model has no corner plot without a context")
	}
	show := o.Show
	if show == nil {
		show = make([]int, m.Dim)
		for j := range show {
			show[j] = j
		}
	}
	k := len(show)
	if k == 0 {
		return nil, fmt.Errorf("no columns to draw")
	}
	if len(o.Names) != m.Dim {
		return nil, fmt.Errorf("%d names for a model of %d columns", len(o.Names), m.Dim)
	}
	cf := &corner{title: o.Title, logScale: o.LogScale}
	for _, j := range show {
		cf.names = append(cf.names, o.Names[j])
	}

	n := o.N
	if n < 0 {
		rows := 0
		if o.Data != nil {
			rows, _ = o.Data.Dims()
		}
		n = cornerSamplesFor(rows)
	}
	// One draw: the first n rows are scattered, all of them estimate the
	// marginal densities (a 1-D model's is exact).
	want := n
	if m.Dim > 1 || m.Categories != nil {
		want = max(n, cornerMarginal)
	}
	drawn, drawnLevels := cf.drawSamples(m, o.Seed, want)
	cf.data, cf.dataLevel = cf.withLevels(o.Data, levelIndexes(m, o.DataLevels), show, cornerMaxData)
	if n > 0 {
		cf.samples, cf.sampleLevel = cf.withLevels(drawn.Slice(0, n, 0, m.Dim).(*mat.Dense), drawnLevels[:min(n, len(drawnLevels))], show, n)
	}
	var marg [][]float64
	if m.Dim > 1 || m.Categories != nil {
		marg = columnsOf(drawn, show, want)
	}

	// The axes: given, or from the data, the samples or the marginal draw.
	cf.lims = make([]rangeFlag, k)
	for i := range k {
		if i < len(o.Lims) && o.Lims[i].set {
			cf.lims[i] = o.Lims[i]
			continue
		}
		var v []float64
		switch {
		case cf.data != nil:
			v = cf.data[i]
		case cf.samples != nil:
			v = cf.samples[i]
		case marg != nil:
			v = marg[i]
		}
		if len(v) == 0 {
			return nil, fmt.Errorf("no points to fit the axes to: give data or samples")
		}
		lo, hi, ok := span(v)
		if !ok {
			return nil, fmt.Errorf("column %q has no finite values to draw", cf.names[i])
		}
		cf.lims[i] = rangeFlag{lo: lo, hi: hi, set: true}
	}

	// The diagonal.
	cf.diag = make([]panelHist, k)
	for i := range k {
		h := &cf.diag[i]
		lim := cf.lims[i]
		if cf.data != nil {
			nb := min(max(int(math.Round(2*math.Cbrt(float64(len(cf.data[i]))))), 10), 60)
			h.dataBins, h.dataW = densityBins(cf.data[i], lim, nb)
			for _, b := range h.dataBins {
				h.top = max(h.top, b.Weight)
			}
		}
		if m.Dim == 1 && m.Categories == nil {
			h.model = exactCurve(m, lim)
		} else {
			bins, _ := densityBins(marg[i], lim, cornerBins)
			for _, b := range bins {
				h.model = append(h.model, plotter.XY{X: b.Min, Y: b.Weight}, plotter.XY{X: b.Max, Y: b.Weight})
			}
		}
		for _, p := range h.model {
			h.top = max(h.top, p.Y)
		}
	}

	// The density panels, above the diagonal.
	if k > 1 {
		cf.exact = m.Dim == 2 && m.Categories == nil
		cf.upper = make([][]*cellGrid, k)
		top := 0.0
		for i := range k {
			cf.upper[i] = make([]*cellGrid, k)
			for j := i + 1; j < k; j++ {
				var g *cellGrid
				if cf.exact {
					g = exactGrid(m, show[j], show[i], cf.lims[j], cf.lims[i])
				} else {
					g = histGrid(marg[j], marg[i], cf.lims[j], cf.lims[i])
				}
				cf.upper[i][j] = g
				top = max(top, slices.Max(g.z))
			}
		}
		cf.scale(top)
	}
	return cf, nil
}

// scale sets the density panels' colour scale, given the largest density
// of the panels: absolute for the exact density (one panel, of a model of
// 2 columns), relative to each panel's peak for estimates (whose units
// differ from panel to panel); linear, or over cornerDecades powers of 10.
func (cf *corner) scale(top float64) {
	if !(top > 0) || math.IsInf(top, 0) {
		top = 1
	}
	for i := range cf.upper {
		for _, g := range cf.upper[i] {
			if g == nil {
				continue
			}
			peak := top
			if !cf.exact {
				peak = slices.Max(g.z)
				if !(peak > 0) {
					peak = 1
				}
			}
			for c, v := range g.z {
				if !cf.exact {
					v /= peak
				}
				if cf.logScale {
					v = math.Log10(v) // −Inf for 0: drawn white
				}
				g.z[c] = v
			}
		}
	}
	switch {
	case cf.exact && cf.logScale:
		cf.zhi = math.Ceil(math.Log10(top))
		cf.zlo, cf.zLabel = cf.zhi-cornerDecades, "density (log scale)"
	case cf.exact:
		cf.zlo, cf.zhi, cf.zLabel = 0, top, "density"
	case cf.logScale:
		cf.zlo, cf.zhi, cf.zLabel = -cornerDecades+1, 0, "density ÷ panel's peak (log scale)"
	default:
		cf.zlo, cf.zhi, cf.zLabel = 0, 1, "density ÷ panel's peak"
	}
}

// columnsOf returns the columns show of at most most rows of x, evenly
// spaced, without rows holding a value that is not finite; nil for a nil x.
func columnsOf(x *mat.Dense, show []int, most int) [][]float64 {
	if x == nil {
		return nil
	}
	n, _ := x.Dims()
	stride := 1
	if n > most {
		stride = (n + most - 1) / most
	}
	out := make([][]float64, len(show))
rows:
	for i := 0; i < n; i += stride {
		row := x.RawRowView(i)
		for _, j := range show {
			if isInfOrNaN(row[j]) {
				continue rows
			}
		}
		for c, j := range show {
			out[c] = append(out[c], row[j])
		}
	}
	return out
}

// span returns the range of an axis for the values v: their quantiles
// plotQuantile and 1−plotQuantile, padded by plotPad of the distance
// between them on each side; ok is false when no value is finite.
func span(v []float64) (lo, hi float64, ok bool) {
	v = slices.DeleteFunc(slices.Clone(v), isInfOrNaN)
	if len(v) == 0 {
		return 0, 0, false
	}
	slices.Sort(v)
	q := func(p float64) float64 { return v[int(math.Round(p*float64(len(v)-1)))] }
	lo, hi = q(plotQuantile), q(1-plotQuantile)
	pad := plotPad * (hi - lo)
	if pad == 0 {
		pad = max(1, math.Abs(lo)/10)
	}
	return lo - pad, hi + pad, true
}

// densityBins bins the values v within lim into nb bins, each weighted by
// its share of all of v over its width: a density, whose area over lim is
// the share of v within it.
func densityBins(v []float64, lim rangeFlag, nb int) ([]plotter.HistogramBin, float64) {
	w := (lim.hi - lim.lo) / float64(nb)
	bins := make([]plotter.HistogramBin, nb)
	for b := range bins {
		bins[b].Min, bins[b].Max = lim.lo+float64(b)*w, lim.lo+float64(b+1)*w
	}
	for _, x := range v {
		if b := int(math.Floor((x - lim.lo) / w)); b >= 0 && b < nb {
			bins[b].Weight++
		}
	}
	if len(v) > 0 {
		for b := range bins {
			bins[b].Weight /= float64(len(v)) * w
		}
	}
	return bins, w
}

// exactCurve is the density of a model of one column over lim.
func exactCurve(m *model.Model, lim rangeFlag) plotter.XYs {
	x := mat.NewDense(cornerCurve, 1, nil)
	for i := range cornerCurve {
		x.Set(i, 0, lim.lo+(lim.hi-lim.lo)*float64(i)/(cornerCurve-1))
	}
	lp := m.LogPDF(x, nil)
	xys := make(plotter.XYs, cornerCurve)
	for i, v := range lp {
		xys[i] = plotter.XY{X: x.At(i, 0), Y: finiteOrZero(math.Exp(v))}
	}
	return xys
}

// exactGrid is the density of a model of two columns on a grid over the
// column cx across (xlim) and the column cy up (ylim).
func exactGrid(m *model.Model, cx, cy int, xlim, ylim rangeFlag) *cellGrid {
	g := &cellGrid{nx: cornerGrid, ny: cornerGrid, xlo: xlim.lo, xhi: xlim.hi, ylo: ylim.lo, yhi: ylim.hi}
	x := mat.NewDense(g.nx*g.ny, 2, nil)
	for r := range g.ny {
		for c := range g.nx {
			x.Set(r*g.nx+c, cx, g.X(c))
			x.Set(r*g.nx+c, cy, g.Y(r))
		}
	}
	g.z = m.LogPDF(x, nil)
	for i, v := range g.z {
		g.z[i] = finiteOrZero(math.Exp(v)) // a point the model cannot evaluate shows as no density
	}
	return g
}

// histGrid is the density of the points (x, y) estimated by their 2-D
// histogram on cornerBins² cells over xlim × ylim.
func histGrid(x, y []float64, xlim, ylim rangeFlag) *cellGrid {
	g := &cellGrid{nx: cornerBins, ny: cornerBins, xlo: xlim.lo, xhi: xlim.hi, ylo: ylim.lo, yhi: ylim.hi}
	g.z = make([]float64, g.nx*g.ny)
	wx, wy := (xlim.hi-xlim.lo)/float64(g.nx), (ylim.hi-ylim.lo)/float64(g.ny)
	for i := range x {
		c := int(math.Floor((x[i] - xlim.lo) / wx))
		r := int(math.Floor((y[i] - ylim.lo) / wy))
		if c >= 0 && c < g.nx && r >= 0 && r < g.ny {
			g.z[r*g.nx+c]++
		}
	}
	smooth(g)
	for i := range g.z {
		g.z[i] /= float64(len(x)) * wx * wy
	}
	return g
}

// smooth replaces each cell of g by the weighted mean of it and its eight
// neighbours, with weights (1 2 1)ᵀ(1 2 1)/16 (cells outside the grid
// count as 0): a histogram's counting noise fades and its total is kept
// but for what spills over the edge.
func smooth(g *cellGrid) {
	w := [3]float64{0.25, 0.5, 0.25}
	tmp := make([]float64, len(g.z))
	for r := range g.ny {
		for c := range g.nx {
			s := 0.0
			for d := -1; d <= 1; d++ {
				if cc := c + d; cc >= 0 && cc < g.nx {
					s += w[d+1] * g.z[r*g.nx+cc]
				}
			}
			tmp[r*g.nx+c] = s
		}
	}
	for r := range g.ny {
		for c := range g.nx {
			s := 0.0
			for d := -1; d <= 1; d++ {
				if rr := r + d; rr >= 0 && rr < g.ny {
					s += w[d+1] * tmp[rr*g.nx+c]
				}
			}
			g.z[r*g.nx+c] = s
		}
	}
}

// finiteOrZero returns v, or 0 when v is not finite.
func finiteOrZero(v float64) float64 {
	if isInfOrNaN(v) {
		return 0
	}
	return v
}

// Colours.
var (
	dataColor   = color.NRGBA{R: 25, G: 25, B: 25, A: 255}
	sampleColor = color.NRGBA{R: 235, G: 105, B: 10, A: 255}
	modelColor  = color.NRGBA{R: 33, G: 94, B: 168, A: 255}
	dataFill    = color.NRGBA{R: 160, G: 160, B: 160, A: 255}
)
