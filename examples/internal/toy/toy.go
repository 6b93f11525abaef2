// Package toy generates the two-dimensional toy densities the examples fit.
package toy

import (
	"math"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// Moons draws n points of the two-moons density as defined in the FFJORD
// paper's code: with probability ½ (2cos t − 1, 2sin t − 0.2), otherwise
// (1 − 2cos t, 0.8 − 2sin t), t ~ U[0, π], plus N(0, 0.2²) noise on each
// coordinate.
func Moons(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		t := math.Pi * rng.Float64()
		a, b := 2*math.Cos(t)-1, 2*math.Sin(t)-0.2
		if rng.IntN(2) == 1 {
			a, b = 1-2*math.Cos(t), 0.8-2*math.Sin(t)
		}
		x.Set(i, 0, a+0.2*rng.NormFloat64())
		x.Set(i, 1, b+0.2*rng.NormFloat64())
	}
	return x
}
