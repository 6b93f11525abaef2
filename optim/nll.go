package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// NLL returns the mean negative log-likelihood of the rows of x under d with
// parameters p, given the contexts c (one row per row of x; nil for an
// unconditional d),
//
//	loss = −(1/n)·Σᵢ log d(xᵢ | cᵢ; p)
//
// and writes its gradient with respect to p into grad (overwriting it;
// len(grad) == len(p)). It evaluates d.LogPDFVJP once and runs its pullback
// with dLogp = −1/n for every row.
//
// A NaN or Inf anywhere in x or c is an error wrapping ErrNonFinite that
// names the first bad row and column (counting from 0), checked before any
// work; the loss returned is then NaN and grad is left untouched. A
// non-finite loss is an error wrapping ErrDiverged: it names the first row
// whose log density is not finite, the non-finite loss is returned with it,
// and grad is then zeroed, so a caller that steps anyway moves nowhere.
//
// NLL panics, with an "optim:" message, for misuse: a nil or empty x, a
// len(grad) different from len(p), a d without LogPDFVJP, or a LogPDFVJP
// that returns the wrong number of log densities or no pullback.
func NLL(d flows.Distribution, p flows.Params, x, c *mat.Dense, grad flows.Params) (float64, error) {
	if x == nil {
		panic("optim: NLL: nil batch")
	}
	if x.IsEmpty() {
		panic("optim: NLL: empty batch")
	}
	if len(grad) != len(p) {
		panic("optim: NLL: gradient length differs from parameter length")
	}
	if d.LogPDFVJP == nil {
		panic("optim: NLL: distribution has no LogPDFVJP")
	}
	if err := checkFinite(x, c); err != nil {
		return math.NaN(), err
	}
	n, _ := x.Dims()
	logp, back := d.LogPDFVJP(p, x, c)
	if len(logp) != n {
		panic("optim: NLL: LogPDFVJP returned a log density count different from the batch's row count")
	}
	if back == nil {
		panic("optim: NLL: LogPDFVJP returned a nil pullback")
	}
	clear(grad)
	loss, err := meanNLL(logp)
	if err != nil {
		return loss, err
	}
	dLogp := make([]float64, n)
	w := -1 / float64(n)
	for i := range dLogp {
		dLogp[i] = w
	}
	back(dLogp, grad, nil)
	return loss, nil
}

// NLLValue returns the mean negative log-likelihood of the rows of x under d
// with parameters p given the contexts c, as NLL does, but without a
// gradient: it calls only d.LogPDF, so it suits validation sets. It returns
// the same errors as NLL for non-finite entries of x or c and a non-finite
// loss, and panics for a nil or empty x, a d without LogPDF, or a LogPDF that
// returns the wrong number of log densities.
func NLLValue(d flows.Distribution, p flows.Params, x, c *mat.Dense) (float64, error) {
	if x == nil {
		panic("optim: NLLValue: nil batch")
	}
	if x.IsEmpty() {
		panic("optim: NLLValue: empty batch")
	}
	if d.LogPDF == nil {
		panic("optim: NLLValue: distribution has no LogPDF")
	}
	if err := checkFinite(x, c); err != nil {
		return math.NaN(), err
	}
	n, _ := x.Dims()
	logp := d.LogPDF(p, x, c)
	if len(logp) != n {
		panic("optim: NLLValue: LogPDF returned a log density count different from the batch's row count")
	}
	return meanNLL(logp)
}

// checkFinite returns an error wrapping ErrNonFinite that names the first
// row and column (in row-major order) of x, or then of c, that holds a NaN
// or an Inf, or nil when there is none.
func checkFinite(x, c *mat.Dense) error {
	if err := FirstNonFinite(x, "the batch"); err != nil {
		return fmt.Errorf("optim: %w", err)
	}
	if err := FirstNonFinite(c, "the batch's context"); err != nil {
		return fmt.Errorf("optim: %w", err)
	}
	return nil
}

// FirstNonFinite returns a *NonFiniteError naming the first row and column
// of m (in row-major order) holding a NaN or an Inf, with where saying what
// m is, or nil when there is none (or m is nil).
func FirstNonFinite(m *mat.Dense, where string) error {
	if m == nil || m.IsEmpty() {
		return nil
	}
	raw := m.RawMatrix()
	for i := 0; i < raw.Rows; i++ {
		row := raw.Data[i*raw.Stride : i*raw.Stride+raw.Cols]
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return &NonFiniteError{Row: i, Column: j, Where: where, Value: v}
			}
		}
	}
	return nil
}

// meanNLL returns −mean(logp), or an error naming the first row whose log
// density is not finite (with the non-finite loss). logp is not empty.
func meanNLL(logp []float64) (float64, error) {
	n := float64(len(logp))
	var sum float64
	for _, v := range logp {
		sum += v
	}
	loss := -sum / n
	for i, v := range logp {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return loss, diverged("optim: log density of row %d of the batch is %v", i, v)
		}
	}
	if math.IsInf(loss, 0) {
		// Every term is finite but their sum overflowed: average term by term.
		loss = 0
		for _, v := range logp {
			loss -= v / n
		}
		if math.IsInf(loss, 0) {
			return loss, diverged("optim: the mean negative log-likelihood of the batch overflows")
		}
	}
	return loss, nil
}
