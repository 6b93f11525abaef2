package figs

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DensityPlot returns the heat map Density draws, without saving it, for
// use as a tile of Grid.
func DensityPlot(title string, box Box, n int, logPDF func(x *mat.Dense) []float64) *plot.Plot {
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
	return heatPlot(title, box, g)
}

// HistPlot returns a heat map of the two-dimensional histogram of the first
// two columns of x on an n×n grid over box, drawn as DensityPlot draws a
// density, for use as a tile of Grid.
func HistPlot(title string, box Box, n int, x *mat.Dense) *plot.Plot {
	g := grid{n: n, box: box, vals: make([]float64, n*n)}
	rows, _ := x.Dims()
	for i := 0; i < rows; i++ {
		c := int(math.Floor((x.At(i, 0) - box.XMin) / (box.XMax - box.XMin) * float64(n)))
		r := int(math.Floor((x.At(i, 1) - box.YMin) / (box.YMax - box.YMin) * float64(n)))
		if c >= 0 && c < n && r >= 0 && r < n {
			g.vals[r*n+c]++
		}
	}
	return heatPlot(title, box, g)
}

func heatPlot(title string, box Box, g grid) *plot.Plot {
	pal := moreland.SmoothBlueRed().Palette(255)
	p := plot.New()
	p.Title.Text = title
	hm := plotter.NewHeatMap(g, pal)
	hm.Rasterized = true
	p.Add(hm)
	setBox(p, box)
	return p
}

// Grid draws plots[r][c] as tiles of a grid of len(plots) rows, each tile
// size×size, aligned with plot.Align, and saves it as a PNG at path,
// atomically. A nil plot leaves its tile empty.
func Grid(path string, plots [][]*plot.Plot, size vg.Length) error {
	rows := len(plots)
	if rows == 0 {
		return fmt.Errorf("figs: Grid: no plots")
	}
	cols := len(plots[0])
	img := vgimg.New(vg.Length(cols)*size, vg.Length(rows)*size)
	dc := draw.New(img)
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	canvases := plot.Align(plots, t, dc)
	for r := range plots {
		for c, p := range plots[r] {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*.png")
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
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
