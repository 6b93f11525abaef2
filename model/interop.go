package model

import (
	"fmt"
	"math/rand/v2"

	"github.com/gonormflows/flows"

	"gonum.org/v1/gonum/mat"
)

// LogProb returns the log density of the point x (len(x) == Dim) under the
// model: a Model is a gonum distmv.LogProber. For many points, LogPDF is
// the batch form and much faster. LogProb does not modify x and panics when
// len(x) != Dim.
func (m *Model) LogProb(x []float64) float64 {
	if len(x) != m.Dim {
		panic(fmt.Sprintf("flows: Model.LogProb: point has %d values, want %d", len(x), m.Dim))
	}
	return m.LogPDF(mat.NewDense(1, m.Dim, x), nil)[0]
}

// Rander returns a sampler of the model whose random stream is determined
// by key alone; it is a gonum distmv.RandLogProber (and so a Rander and a
// LogProber), for gonum's samplers such as samplemv.IID and
// samplemv.Importance. The model is shared, not copied: do not change its
// Params while the Rander is in use.
func (m *Model) Rander(key flows.Key) *Rander {
	return &Rander{model: m, rng: key.Rand()}
}

// Rander draws points from a Model one at a time, from a random
// stream fixed when it is made (Model.Rander). Like math/rand's generators,
// it is not safe for concurrent use: give each goroutine its own, from its
// own key (Key.Split).
type Rander struct {
	model *Model
	rng   *rand.Rand
}

// Rand draws one point from the model and returns it in x, or in a new
// slice when x is nil (gonum's distmv.Rander convention). Each call takes a
// fresh key from the Rander's stream and runs Model.Sample with it for
// one row, so a Rander made from the same key gives the same points in
// the same order. Model.Sample draws many points far faster. It panics when
// x is not nil and len(x) != Dim.
func (r *Rander) Rand(x []float64) []float64 {
	d := r.model.Dim
	if x == nil {
		x = make([]float64, d)
	} else if len(x) != d {
		panic(fmt.Sprintf("flows: Rander.Rand: destination has %d values, want %d", len(x), d))
	}
	key := flows.KeyFrom(r.rng.Uint64(), r.rng.Uint64())
	copy(x, r.model.Sample(key, 1, nil).RawRowView(0))
	return x
}

// LogProb returns the model's log density at x, as Model.LogProb does.
func (r *Rander) LogProb(x []float64) float64 { return r.model.LogProb(x) }
