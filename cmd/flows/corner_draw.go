package main

import (
	"bytes"
	"image"
	"image/color"
	"math"
	"strconv"

	"github.com/gonormflows/flows/internal/plotstyle"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Drawing a corner plot: the picture's size, its panels, legend, colour bar
// and axis ticks (newCorner in corner.go computes what they show).

// pointStyle returns the radius and opacity of n scattered points in a
// panel of the given side: the more points, the smaller and the more
// transparent, so that a dense cloud shows its density and a sparse one
// each point.
func pointStyle(n int, side vg.Length) (vg.Length, uint8) {
	f := math.Max(1, float64(n))
	r := math.Min(2.2, math.Max(0.55, 2.2*math.Pow(150/f, 0.25)))
	r *= math.Min(1, math.Max(0.6, float64(side)/float64(2*vg.Inch)))
	a := math.Min(0.85, math.Max(0.1, math.Sqrt(150/f)))
	return vg.Points(r), uint8(math.Round(255 * a))
}

// panelSide is the side of one panel of a k×k corner plot.
func panelSide(k int) vg.Length {
	return vg.Length(math.Min(cornerMaxPanel, math.Max(cornerMinPanel, cornerWidth/float64(k)))) * vg.Inch
}

// size returns the picture's width and height.
func (cf *corner) size() (w, h vg.Length) {
	k := len(cf.names)
	s := panelSide(k)
	grid := vg.Length(k)*s + 0.7*vg.Inch // the axes' labels
	return grid + cornerStrip*vg.Inch, grid + cornerTitle*vg.Inch
}

// encode draws the picture in the format png, svg or pdf.
func (cf *corner) encode(format string) ([]byte, error) {
	w, h := cf.size()
	var c vg.CanvasWriterTo
	if format == "png" {
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(cornerDPI))}
	} else {
		var err error
		if c, err = draw.NewFormattedCanvas(w, h, format); err != nil {
			return nil, err
		}
	}
	cf.draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// style returns a text style of the default font at size points.
func style(size float64) text.Style {
	return text.Style{Font: font.From(plot.DefaultFont, vg.Points(size)), Handler: plot.DefaultTextHandler}
}

// draw draws the picture on dc.
func (cf *corner) draw(dc draw.Canvas) {
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	k := len(cf.names)
	side := panelSide(k)

	title := style(13)
	title.XAlign, title.YAlign = draw.XCenter, draw.YTop
	top := dc.Max.Y - 0.12*vg.Inch
	dc.FillText(title, vg.Point{X: (dc.Min.X + dc.Max.X - cornerStrip*vg.Inch) / 2, Y: top}, cf.title)

	grid := draw.Crop(dc, 0.05*vg.Inch, -cornerStrip*vg.Inch, 0.05*vg.Inch, -cornerTitle*vg.Inch)
	plots := make([][]*plot.Plot, k)
	for i := range k {
		plots[i] = make([]*plot.Plot, k)
		for j := range k {
			plots[i][j] = cf.panel(i, j, side)
		}
	}
	tiles := draw.Tiles{Rows: k, Cols: k, PadX: 0.06 * vg.Inch, PadY: 0.06 * vg.Inch}
	canvases := plot.Align(plots, tiles, grid)
	for i := range k {
		for j := range k {
			if plots[i][j] != nil {
				plots[i][j].Draw(canvases[i][j])
			}
		}
	}

	// The strip: the legend, then the colour bar.
	strip := draw.Crop(dc, dc.Max.X-dc.Min.X-cornerStrip*vg.Inch+0.1*vg.Inch, -0.1*vg.Inch, 0.3*vg.Inch, -cornerTitle*vg.Inch)
	l := cf.legend()
	l.Draw(strip)
	if cf.upper != nil {
		bar := draw.Crop(strip, 0, 0, 0, -l.Rectangle(strip).Size().Y-0.35*vg.Inch)
		h := bar.Max.Y - bar.Min.Y
		bar = draw.Crop(bar, 0, 0, h-min(h, 2.8*vg.Inch), 0)
		cf.colorBar().Draw(bar)
	}
}

// legend returns the legend of what the panels show.
func (cf *corner) legend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = style(9)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = 0.25 * vg.Inch
	l.Padding = vg.Points(4)
	dot := func(c color.NRGBA) *plotter.Scatter {
		s, _ := plotter.NewScatter(plotter.XYs{{}})
		s.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: vg.Points(2.5), Color: c}
		return s
	}
	switch {
	case cf.levels != nil:
		if cf.data != nil {
			l.Add("data", &plotter.Histogram{FillColor: dataFill, LineStyle: draw.LineStyle{Color: dataFill, Width: vg.Points(0.4)}})
		}
		for i, name := range cf.levels {
			if i == cornerMaxLevels {
				break
			}
			l.Add(cf.levelColumn+" "+name, dot(levelColor(i, true)))
		}
	default:
		if cf.data != nil {
			l.Add("data", &plotter.Histogram{FillColor: dataFill, LineStyle: draw.LineStyle{Color: dataFill, Width: vg.Points(0.4)}}, dot(dataColor))
		}
		if cf.samples != nil && len(cf.names) > 1 {
			l.Add("samples", dot(sampleColor))
		}
	}
	line, _ := plotter.NewLine(plotter.XYs{{}})
	line.Color, line.Width = modelColor, vg.Points(1.4)
	l.Add("model", line)
	return l
}

// panel returns the plot of row i and column j (nil for an empty one).
func (cf *corner) panel(i, j int, side vg.Length) *plot.Plot {
	k := len(cf.names)
	p := plot.New()
	p.BackgroundColor = color.Transparent
	tick := 7.0
	if side >= 1.6*vg.Inch {
		tick = 8
	}
	p.X.Tick.Label.Font.Size = vg.Points(tick)
	p.Y.Tick.Label.Font.Size = vg.Points(tick)
	p.X.Label.TextStyle.Font.Size = vg.Points(9.5)
	p.Y.Label.TextStyle.Font.Size = vg.Points(9.5)
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Min, p.X.Max = cf.lims[j].lo, cf.lims[j].hi
	most := 4
	if side >= 1.6*vg.Inch {
		most = 5
	}
	p.X.Tick.Marker = axisTicks{most: most, unlabelled: i != k-1}
	p.Y.Tick.Marker = axisTicks{most: most, unlabelled: j != 0}
	if i == k-1 {
		p.X.Label.Text = cf.names[j]
	}
	if j == 0 {
		p.Y.Label.Text = cf.names[i]
	}

	switch {
	case i == j:
		h := cf.diag[i]
		p.Y.Min, p.Y.Max = 0, 1.08*h.top
		if !(h.top > 0) {
			p.Y.Max = 1
		}
		p.Y.Tick.Marker = axisTicks{most: most, unlabelled: true}
		if h.dataBins != nil {
			p.Add(&plotter.Histogram{Bins: h.dataBins, Width: h.dataW, FillColor: dataFill,
				LineStyle: draw.LineStyle{Color: color.NRGBA{R: 110, G: 110, B: 110, A: 255}, Width: vg.Points(0.4)}})
		}
		if len(h.model) > 0 {
			line, err := plotter.NewLine(h.model)
			if err == nil {
				line.Color, line.Width = modelColor, vg.Points(1.4)
				p.Add(line)
			}
		}
		if k == 1 {
			p.Y.Label.Text = "density"
			p.Y.Tick.Marker = axisTicks{most: most}
		}
	case i < j:
		g := cf.upper[i][j]
		hm := plotter.NewHeatMap(g, plotstyle.Density{})
		hm.Min, hm.Max = cf.zlo, cf.zhi
		hm.Underflow, hm.NaN = color.White, color.White
		hm.Overflow = plotstyle.Density{}.Colors()[255]
		hm.Rasterized = true
		p.Add(hm)
		p.Y.Min, p.Y.Max = cf.lims[i].lo, cf.lims[i].hi
	default:
		p.Y.Min, p.Y.Max = cf.lims[i].lo, cf.lims[i].hi
		if cf.samples == nil && cf.data == nil {
			return nil
		}
		add := func(cols [][]float64, c color.NRGBA, levels []float64, level int) {
			if cols == nil {
				return
			}
			xs, ys := cols[j], cols[i]
			xys := make(plotter.XYs, 0, len(xs))
			for r := range xs {
				if levels != nil && int(levels[r]) != level {
					continue
				}
				if xs[r] >= cf.lims[j].lo && xs[r] <= cf.lims[j].hi && ys[r] >= cf.lims[i].lo && ys[r] <= cf.lims[i].hi {
					xys = append(xys, plotter.XY{X: xs[r], Y: ys[r]})
				}
			}
			s, err := plotter.NewScatter(xys)
			if err != nil {
				return
			}
			radius, alpha := pointStyle(len(xs), side)
			c.A = alpha
			s.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: radius, Color: c}
			p.Add(s)
		}
		if cf.levels == nil {
			add(cf.samples, sampleColor, nil, 0)
			add(cf.data, dataColor, nil, 0)
			break
		}
		for l := range cf.levels {
			add(cf.samples, levelColor(l, false), cf.sampleLevel, l)
			add(cf.data, levelColor(l, true), cf.dataLevel, l)
		}
	}
	return p
}

// colorBar returns the colour bar of the density panels, as a plot.
func (cf *corner) colorBar() *plot.Plot {
	p := plot.New()
	p.BackgroundColor = color.Transparent
	p.HideX()
	pal := plotstyle.Density{}.Colors()
	img := image.NewNRGBA(image.Rect(0, 0, 1, len(pal)))
	for i, c := range pal {
		img.Set(0, len(pal)-1-i, c)
	}
	p.Add(plotter.NewImage(img, 0, cf.zlo, 1, cf.zhi))
	p.Y.Min, p.Y.Max, p.Y.Padding = cf.zlo, cf.zhi, 0
	p.Y.Label.Text = cf.zLabel
	p.Y.Label.TextStyle.Font.Size = vg.Points(9)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Marker = axisTicks{most: 5}
	if cf.logScale {
		p.Y.Tick.Marker = plotstyle.PowerTicks{}
	}
	return p
}

// axisTicks places a few major ticks at round numbers, at most four on a
// small panel, and labels them unless unlabelled (the inner panels share
// their axes with the outer ones).
type axisTicks struct {
	most       int
	unlabelled bool
}

func (a axisTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) {
		return nil
	}
	step := roundStep((hi-lo)/float64(a.most), 1)
	for math.Floor(hi/step)-math.Ceil(lo/step)+1 > float64(a.most) {
		step = roundStep(step, 1.0001)
	}
	places := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	if m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); math.Abs(m-2.5) < 1e-6 {
		places++
	}
	var t []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0
		}
		tk := plot.Tick{Value: v}
		if !a.unlabelled {
			tk.Label = strconv.FormatFloat(v, 'f', places, 64)
		}
		t = append(t, tk)
	}
	return t
}

// roundStep returns the least of 1, 2, 2.5 and 5 times a power of 10 that
// is at least x·grow.
func roundStep(x, grow float64) float64 {
	x *= grow
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= x*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}
