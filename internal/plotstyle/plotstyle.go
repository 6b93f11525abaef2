// Package plotstyle holds the pieces of gonum/plot style that the command
// line's pictures (cmd/flows) and the examples' (examples/internal/figs)
// share, so that a density looks the same in both: the density palette and
// the ticks of a log10 axis.
package plotstyle

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
)

// densityStops are the density palette's colours, from no density (white)
// to the most (dark blue), after ColorBrewer's YlGnBu.
var densityStops = [][3]float64{
	{255, 255, 255}, {237, 248, 177}, {199, 233, 180}, {127, 205, 187}, {65, 182, 196},
	{29, 145, 192}, {34, 94, 168}, {37, 52, 148}, {8, 29, 88},
}

// Density is the density palette of 256 colours, from white (none) to dark
// blue (the most); it is a gonum palette.Palette.
type Density struct{}

// Colors returns the palette's 256 colours, interpolated linearly between
// the stops.
func (Density) Colors() []color.Color {
	const n = 256
	c := make([]color.Color, n)
	for i := range c {
		t := float64(i) / (n - 1) * float64(len(densityStops)-1)
		k := min(int(t), len(densityStops)-2)
		f := t - float64(k)
		mix := func(ch int) uint8 {
			return uint8(math.Round(densityStops[k][ch] + f*(densityStops[k+1][ch]-densityStops[k][ch])))
		}
		c[i] = color.NRGBA{R: mix(0), G: mix(1), B: mix(2), A: 255}
	}
	return c
}

// PowerTicks labels the integers of a log10 axis as the powers of 10 they
// stand for: 0.01, 0.1, 1, 10 (1e-05 beyond three places). It is a
// plot.Ticker.
type PowerTicks struct{}

// Ticks returns a tick at each integer from lo to hi.
func (PowerTicks) Ticks(lo, hi float64) []plot.Tick {
	var t []plot.Tick
	for e := math.Ceil(lo); e <= hi; e++ {
		label := strconv.FormatFloat(math.Pow(10, e), 'f', -1, 64)
		if math.Abs(e) > 3 {
			label = strconv.FormatFloat(math.Pow(10, e), 'e', 0, 64)
		}
		t = append(t, plot.Tick{Value: e, Label: label})
	}
	return t
}
