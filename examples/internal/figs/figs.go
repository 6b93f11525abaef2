// Package figs draws the pictures of the examples with gonum/plot: sample
// scatter plots and density heat maps, written atomically as PNG.
package figs

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Box is the square region a picture shows.
type Box struct{ XMin, XMax, YMin, YMax float64 }

// Scatter draws the first two columns of each set of points, in turn in blue
// and orange, and saves the plot as a PNG at path.
func Scatter(path, title string, box Box, sets ...*mat.Dense) error {
	p := plot.New()
	p.Title.Text = title
	colors := []color.Color{color.NRGBA{R: 31, G: 119, B: 180, A: 110}, color.NRGBA{R: 255, G: 127, B: 14, A: 110}}
	for k, s := range sets {
		n, _ := s.Dims()
		xys := make(plotter.XYs, 0, n)
		for i := 0; i < n; i++ {
			x, y := s.At(i, 0), s.At(i, 1)
			if x >= box.XMin && x <= box.XMax && y >= box.YMin && y <= box.YMax {
				xys = append(xys, plotter.XY{X: x, Y: y})
			}
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(1)
		sc.GlyphStyle.Color = colors[k%len(colors)]
		p.Add(sc)
	}
	setBox(p, box)
	return save(p, path)
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

// Density evaluates logPDF on an n×n grid over box and saves a heat map of
// the density (not the log density) as a PNG at path.
func Density(path, title string, box Box, n int, logPDF func(x *mat.Dense) []float64) error {
	g := grid{n: n, box: box}
	x := mat.NewDense(n*n, 2, nil)
	for r := 0; r < n; r++ {
		for c := 0; c < n; c++ {
			x.Set(r*n+c, 0, g.X(c))
			x.Set(r*n+c, 1, g.Y(r))
		}
	}
	lp := logPDF(x)
	g.vals = make([]float64, n*n)
	for i, v := range lp {
		g.vals[i] = math.Exp(v)
	}
	pal := moreland.SmoothBlueRed().Palette(255)
	p := plot.New()
	p.Title.Text = title
	hm := plotter.NewHeatMap(g, pal)
	hm.Rasterized = true // one image, without seams between cells
	p.Add(hm)
	setBox(p, box)
	return save(p, path)
}

func setBox(p *plot.Plot, box Box) {
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = box.XMin, box.XMax, box.YMin, box.YMax
}

// save writes the plot to a temporary file beside path and renames it into
// place, so an interrupted run never leaves a half-written picture.
func save(p *plot.Plot, path string) error {
	w, err := p.WriterTo(5*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.png")
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}
