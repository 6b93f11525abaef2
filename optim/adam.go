package optim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/gonormflows/flows/internal/linalg"
)

// Adam is the Adam optimiser of Kingma & Ba (2015), "Adam: A Method for
// Stochastic Optimization", Algorithm 1, over a flat parameter vector such as
// a flows.Params. It keeps one first-moment and one second-moment estimate per
// parameter and updates the parameters in place.
//
// At step t = 1, 2, ... with gradient g, learning rate α = LR (or the rate
// handed to StepLR), β₁ = Beta1, β₂ = Beta2 and ε = Eps, each coordinate i is
// updated as
//
//	m_i ← β₁·m_i + (1 − β₁)·g_i
//	v_i ← β₂·v_i + (1 − β₂)·g_i²
//	m̂_i = m_i / (1 − β₁ᵗ)
//	v̂_i = v_i / (1 − β₂ᵗ)
//	p_i ← p_i − α·m̂_i / (√v̂_i + ε)
//
// with m and v starting at zero. The bias corrections m̂ and v̂ undo the pull
// of that zero start, so the first step moves every coordinate by almost
// exactly α·sign(g_i), whatever the gradient's scale. (ε is added after the
// square root, as in Algorithm 1, not inside it.)
//
// The fields may be changed between steps. Beta1 and Beta2 must lie in
// [0, 1) and Eps must be non-negative; with Eps = 0 a coordinate whose
// gradient has always been zero becomes NaN.
//
// Make an Adam with NewAdam. An Adam holds mutable state: it is not safe for
// concurrent use, and each parameter vector needs its own. MarshalBinary
// saves that state (the moments, the step count and the four fields) and
// UnmarshalBinary restores it, so that a training run stopped and resumed
// takes the same steps, bit for bit, as one never stopped.
type Adam struct {
	// LR is the learning rate α used by Step.
	LR float64
	// Beta1 is the decay rate β₁ of the first-moment (mean) estimate.
	Beta1 float64
	// Beta2 is the decay rate β₂ of the second-moment (uncentred variance) estimate.
	Beta2 float64
	// Eps is ε, added to √v̂ to keep the division finite.
	Eps float64

	m, v []float64 // moment estimates, one per parameter
	t    int       // steps taken
}

// NewAdam returns an Adam for n parameters with the defaults of the paper:
// LR 1e-3, Beta1 0.9, Beta2 0.999 and Eps 1e-8. It panics if n is negative.
func NewAdam(n int) *Adam {
	if n < 0 {
		panic("optim: NewAdam: negative parameter count")
	}
	return &Adam{
		LR:    1e-3,
		Beta1: 0.9,
		Beta2: 0.999,
		Eps:   1e-8,
		m:     make([]float64, n),
		v:     make([]float64, n),
	}
}

// Step takes one Adam step at learning rate a.LR: it updates the moment
// estimates from grad and moves p in place. It reads but never modifies grad.
// It panics if len(p) or len(grad) differs from the parameter count given to
// NewAdam, or if Beta1, Beta2 or Eps are out of range. For 2¹⁵ parameters
// or more it splits the update over the helper pool (linalg.Parallel; the
// same bits, each entry's update being its own, and a few small
// allocations); below that it runs on the calling goroutine and does not
// allocate.
func (a *Adam) Step(p, grad []float64) {
	a.StepLR(p, grad, a.LR)
}

// StepLR is Step at learning rate lr instead of a.LR, for learning-rate
// schedules:
//
//	opt.StepLR(p, grad, sched(opt.Steps(), total))
func (a *Adam) StepLR(p, grad []float64, lr float64) {
	if len(p) != len(a.m) || len(grad) != len(a.m) {
		panic("optim: Adam.Step: parameter or gradient length differs from the optimiser's parameter count")
	}
	if !(a.Beta1 >= 0 && a.Beta1 < 1) || !(a.Beta2 >= 0 && a.Beta2 < 1) {
		panic("optim: Adam.Step: Beta1 and Beta2 must lie in [0, 1)")
	}
	if !(a.Eps >= 0) {
		panic("optim: Adam.Step: Eps must be non-negative")
	}
	a.t++
	b1, b2, eps := a.Beta1, a.Beta2, a.Eps
	// With the bias corrections c = 1 − βᵗ folded into constants,
	// α·(m/c₁)/(√(v/c₂) + ε) = step·m/(√v·r + ε), one division per entry.
	c1 := 1 - math.Pow(b1, float64(a.t))
	c2 := 1 - math.Pow(b2, float64(a.t))
	step := lr / c1
	r := 1 / math.Sqrt(c2)
	n := len(a.m)
	if n < 2*adamChunk {
		adamUpdate(a.m, a.v, p, grad, b1, b2, step, r, eps)
		return
	}
	// Each entry's update is its own, so the split cannot change a bit.
	linalg.Parallel((n+adamChunk-1)/adamChunk, func(t int) {
		i0, i1 := t*adamChunk, min((t+1)*adamChunk, n)
		adamUpdate(a.m[i0:i1], a.v[i0:i1], p[i0:i1], grad[i0:i1], b1, b2, step, r, eps)
	})
}

// adamUpdate updates the moments m, v and the parameters p from grad (all
// as long as m) with the step's constants (see StepLR).
func adamUpdate(m, v, p, grad []float64, b1, b2, step, r, eps float64) {
	v, p, grad = v[:len(m)], p[:len(m)], grad[:len(m)] // let the compiler drop bounds checks
	for i, g := range grad {
		mi := b1*m[i] + (1-b1)*g
		vi := b2*v[i] + (1-b2)*g*g
		m[i], v[i] = mi, vi
		p[i] -= step * mi / (math.Sqrt(vi)*r + eps)
	}
}

// adamChunk is how many entries of a large parameter vector one task of
// Adam's update covers (a few tens of microseconds), when it splits the
// update over the helper pool.
const adamChunk = 1 << 14

// Steps returns the number of steps taken since NewAdam or the last Reset:
// the t of the last update, and the step index (counting from 0) that a
// Schedule should be given for the next one.
func (a *Adam) Steps() int { return a.t }

// Reset zeroes the moment estimates and the step count, as if a were new.
// The hyperparameters LR, Beta1, Beta2 and Eps are kept.
func (a *Adam) Reset() {
	clear(a.m)
	clear(a.v)
	a.t = 0
}

// adamStateVersion is the first byte of MarshalBinary's encoding.
const adamStateVersion = 1

// adamHeader is the encoding's size before the moments: the version byte,
// the step count and the parameter count (uint64 each), and LR, Beta1,
// Beta2 and Eps (float64 each).
const adamHeader = 1 + 2*8 + 4*8

// MarshalBinary returns a's state: a version byte (1), then, little-endian,
// the step count and the parameter count n as uint64, LR, Beta1, Beta2 and
// Eps as float64, and the n first moments and n second moments as float64,
// exactly. It implements encoding.BinaryMarshaler and never fails.
func (a *Adam) MarshalBinary() ([]byte, error) {
	n := len(a.m)
	b := make([]byte, 0, adamHeader+16*n)
	b = append(b, adamStateVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(a.t))
	b = binary.LittleEndian.AppendUint64(b, uint64(n))
	for _, f := range [...]float64{a.LR, a.Beta1, a.Beta2, a.Eps} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	for _, s := range [...][]float64{a.m, a.v} {
		for _, f := range s {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
	}
	return b, nil
}

// UnmarshalBinary restores the state that MarshalBinary saved into a, which
// must have been made by NewAdam for the same parameter count: the moments,
// the step count, LR, Beta1, Beta2 and Eps are replaced, and data is not
// kept. It implements encoding.BinaryUnmarshaler. It returns an error, and
// leaves a as it was, when data is not such a state (an unknown version, a
// wrong length), when the parameter counts differ, or when a value is out of
// range (Beta1 or Beta2 outside [0, 1), a negative Eps, a moment that is not
// finite or a negative second moment, naming its index).
func (a *Adam) UnmarshalBinary(data []byte) error {
	if len(data) == 0 {
		return errors.New("optim: Adam state: empty")
	}
	if data[0] != adamStateVersion {
		return fmt.Errorf("optim: Adam state: version %d, want %d", data[0], adamStateVersion)
	}
	if len(data) < adamHeader {
		return fmt.Errorf("optim: Adam state: %d bytes, shorter than the %d-byte header", len(data), adamHeader)
	}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(data[1+8*i:]) }
	f := func(i int) float64 { return math.Float64frombits(u(i)) }
	t, n := u(0), u(1)
	if n != uint64(len(a.m)) {
		return fmt.Errorf("optim: Adam state: for %d parameters, the optimiser has %d", n, len(a.m))
	}
	if want := adamHeader + 16*len(a.m); len(data) != want {
		return fmt.Errorf("optim: Adam state: %d bytes, want %d for %d parameters", len(data), want, n)
	}
	if t > math.MaxInt32 {
		return fmt.Errorf("optim: Adam state: step count %d out of range", t)
	}
	lr, b1, b2, eps := f(2), f(3), f(4), f(5)
	if !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) {
		return fmt.Errorf("optim: Adam state: Beta1 %v and Beta2 %v must lie in [0, 1)", b1, b2)
	}
	if !(eps >= 0) {
		return fmt.Errorf("optim: Adam state: Eps %v is negative", eps)
	}
	m, v := make([]float64, len(a.m)), make([]float64, len(a.m))
	for i := range m {
		m[i], v[i] = f(6+i), f(6+len(m)+i)
		if math.IsNaN(m[i]) || math.IsInf(m[i], 0) {
			return fmt.Errorf("optim: Adam state: first moment %d is %v", i, m[i])
		}
		if !(v[i] >= 0) || math.IsInf(v[i], 0) {
			return fmt.Errorf("optim: Adam state: second moment %d is %v", i, v[i])
		}
	}
	copy(a.m, m)
	copy(a.v, v)
	a.t, a.LR, a.Beta1, a.Beta2, a.Eps = int(t), lr, b1, b2, eps
	return nil
}
