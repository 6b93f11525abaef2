package model

// Prepared evaluation of a model at fixed parameters (issue 22): Prepare
// runs flows.PrepareDistribution on the model's flow once, so that every
// later call skips what depends on the parameters alone (a MADE's masked
// and packed weights, the layers' set-up), and wraps the prepared flow
// with the model's own data handling (dequantised midpoints, bounded and
// integer samples, the categories' log probability) exactly as the
// Model's methods do, so that the results are the same bits.

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// Prepared is a Model at fixed parameters, for scoring, latents and
// sampling: its methods return exactly what the Model's methods of the
// same names return, bit for bit, without the fixed cost of each call.
// Make one with Model.Prepare.
//
// A Prepared is a snapshot: it copies the parameters (and whatever
// depends on them alone) when it is made, so later changes to the Model's
// Params, by training or by hand, are not seen; prepare again after them.
// Its methods are safe for concurrent use and take no locks.
type Prepared struct {
	cfg  Config
	cat  *Categories
	cdim int
	d    flows.PreparedDistribution
}

// Prepare returns the model at its current parameters as a Prepared
// evaluator, for a loaded model that scores or samples many times (a
// server, a scoring job): the one call to make after Load. Training keeps
// using the Model's own methods, which read Params on every call.
func (m *Model) Prepare() *Prepared {
	return &Prepared{cfg: m.Config, cat: m.Categories, cdim: m.ContextDim, d: flows.PrepareDistribution(m.Dist, m.Params)}
}

// LogPDF is Model.LogPDF at the snapshot's parameters: the log density of
// each row of x (n×Dim) given the flow's context c (nil without one).
func (e *Prepared) LogPDF(x, c *mat.Dense) []float64 {
	return e.d.LogPDF(e.cfg.midpoints(x), c)
}

// Sample is Model.Sample at the snapshot's parameters: n rows, row i
// given row i of c; the same key gives the same rows as Model.Sample.
func (e *Prepared) Sample(key flows.Key, n int, c *mat.Dense) *mat.Dense {
	return e.cfg.finishSample(e.d.Sample(key, n, c))
}

// Latent is Model.Latent at the snapshot's parameters.
func (e *Prepared) Latent(x, c *mat.Dense) *mat.Dense {
	return e.d.Latent(e.cfg.midpoints(x), c)
}

// Context is Model.Context: the flow's context for rows of levels cats
// and contexts c, with each row's log p(k).
func (e *Prepared) Context(cats []string, c *mat.Dense) (*mat.Dense, []float64, error) {
	return flowContext(e.cat, cats, c)
}

// LogPDFMixed is Model.LogPDFMixed at the snapshot's parameters.
func (e *Prepared) LogPDFMixed(x *mat.Dense, cats []string, c *mat.Dense) ([]float64, error) {
	full, logp, err := e.Context(cats, c)
	if err != nil {
		return nil, err
	}
	lp := e.LogPDF(x, full)
	for i := range logp {
		lp[i] += logp[i]
	}
	return lp, nil
}

// SampleMixed is Model.SampleMixed at the snapshot's parameters: the same
// key gives the same levels and numbers.
func (e *Prepared) SampleMixed(key flows.Key, n int, c *mat.Dense) (*mat.Dense, []string) {
	if e.cat == nil {
		return e.Sample(key, n, c), nil
	}
	kc, kx := key.Split2()
	cats := e.cat.Sample(kc, n)
	full, _, err := e.Context(cats, c)
	if err != nil {
		panic(fmt.Sprintf("flows: SampleMixed: %v", err)) // the table's own levels
	}
	return e.Sample(kx, n, full), cats
}

// preparedContext is standardizedContext's Prepare hook: d prepared at p,
// reading its context through conv.
func preparedContext(d flows.Distribution, p flows.Params, conv func(*mat.Dense) *mat.Dense) flows.PreparedDistribution {
	pd := flows.PrepareDistribution(d, p)
	out := flows.PreparedDistribution{
		LogPDF: func(x, c *mat.Dense) []float64 { return pd.LogPDF(x, conv(c)) },
		Sample: func(key flows.Key, n int, c *mat.Dense) *mat.Dense { return pd.Sample(key, n, conv(c)) },
	}
	if pd.Latent != nil {
		out.Latent = func(x, c *mat.Dense) *mat.Dense { return pd.Latent(x, conv(c)) }
	}
	return out
}
