package main

// A corner plot of a model with categories: samples drawn with their
// levels, and points coloured by the first categorical column's level
// (data darker, samples lighter).

import (
	"image/color"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/model"
)

// cornerMaxLevels is the most levels the legend names; the palette repeats
// after as many.
const cornerMaxLevels = 8

// levelPalette colours the levels (Okabe and Ito's colour-blind-safe set).
var levelPalette = []color.NRGBA{
	{R: 0, G: 114, B: 178, A: 255}, {R: 230, G: 159, B: 0, A: 255}, {R: 0, G: 158, B: 115, A: 255},
	{R: 204, G: 121, B: 167, A: 255}, {R: 86, G: 180, B: 233, A: 255}, {R: 213, G: 94, B: 0, A: 255},
	{R: 240, G: 228, B: 66, A: 255}, {R: 0, G: 0, B: 0, A: 255},
}

// levelColor is level l's colour: as it is for data, halfway to white for
// samples.
func levelColor(l int, data bool) color.NRGBA {
	c := levelPalette[l%len(levelPalette)]
	if !data {
		c.R, c.G, c.B = c.R/2+128, c.G/2+128, c.B/2+128
	}
	return c
}

// drawSamples draws want samples of m (with their level indexes of the first
// categorical column for a model with categories, and then sets the
// corner's levels).
func (cf *corner) drawSamples(m *model.Model, seed uint64, want int) (*mat.Dense, []float64) {
	if want == 0 {
		return nil, nil
	}
	if m.Categories == nil {
		return m.Sample(flows.NewKey(seed), want, nil), nil
	}
	cf.levelColumn, cf.levels = m.Categories.Names[0], m.Categories.Levels[0]
	x, cats := m.SampleMixed(flows.NewKey(seed), want, nil)
	return x, levelIndexes(m, cats)
}

// levelIndexes returns, for rows of levels (row-major, one per categorical
// column of m), the index of each row's level of the first column; nil
// without categories or levels.
func levelIndexes(m *model.Model, cats []string) []float64 {
	if m.Categories == nil || len(cats) == 0 {
		return nil
	}
	k := len(m.Categories.Names)
	out := make([]float64, len(cats)/k)
	for i := range out {
		j, _ := slices.BinarySearch(m.Categories.Levels[0], cats[i*k])
		out[i] = float64(j)
	}
	return out
}

// withLevels returns columnsOf(x, show, most) and, when levels is not nil,
// the levels of the same rows.
func (cf *corner) withLevels(x *mat.Dense, levels []float64, show []int, most int) ([][]float64, []float64) {
	if x == nil || levels == nil {
		return columnsOf(x, show, most), nil
	}
	n, d := x.Dims()
	xl := mat.NewDense(n, d+1, nil)
	xl.Slice(0, n, 0, d).(*mat.Dense).Copy(x)
	xl.SetCol(d, levels)
	cols := columnsOf(xl, append(slices.Clone(show), d), most)
	return cols[:len(show)], cols[len(show)]
}
