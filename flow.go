package flows

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// Flow is the distribution of x = f⁻¹(z; c) for z drawn from prior, where f
// is the bijection's Direct map: a normalizing flow, conditional when the
// context width is positive. Its log density is
//
//	log p(x | c) = log p_prior(Direct(x; c)) + logDet(x; c),
//
// and it samples by drawing from the prior and applying Inverse(·; c).
//
// Parameter layout: [bijection's parameters | prior's parameters], so a
// trainable prior trains with the rest. Keys: the bijection is made with
// key.Split2()'s first key and the prior with its second. The prior is made
// with the same context width; the priors of this package ignore the
// context, so all of the dependence on c is in the bijection's layers.
//
// The pullback of LogPDF reaches both parts, through the bijection's
// log-det as well as its output, and the context through every layer that
// reads it. A finite row whose values overflow inside the bijection (values
// beyond about 1e150 of the data's scale, where an intermediate product or
// sum passes MaxFloat64 and leaves Inf − Inf = NaN) gets log density −Inf:
// the row is beyond what float64 represents at the model's scale, and its
// density there is 0 in floating point. So the log density of a finite row
// is a number or −Inf, never NaN; a row holding NaN gives NaN. Latent is the bijection's Direct. When the bijection has a
// data-dependent initialisation (ActNorm anywhere in a Serial stack), the
// flow's InitFromData runs it; likewise UpdateState. Prepare gives the flow
// at fixed parameters, its bijection and prior prepared (see
// PrepareDistribution).
func Flow(bijection InitFunc, prior DistInitFunc) DistInitFunc {
	return func(key Key, dim, contextDim int) (Params, Distribution, error) {
		if bijection == nil || prior == nil {
			return nil, Distribution{}, fmt.Errorf("flows: Flow: nil bijection or prior")
		}
		kb, kp := key.Split2()
		pb, b, err := bijection(kb, dim, contextDim)
		if err != nil {
			return nil, Distribution{}, fmt.Errorf("flows: Flow bijection: %w", err)
		}
		pp, prior, err := prior(kp, dim, contextDim)
		if err != nil {
			return nil, Distribution{}, fmt.Errorf("flows: Flow prior: %w", err)
		}
		nb := len(pb)
		np := nb + len(pp)
		p := make(Params, 0, np)
		p = append(append(p, pb...), pp...)
		split := func(p Params) (Params, Params) {
			checkParams("Flow", p, np)
			return p[:nb:nb], p[nb:]
		}
		d := Distribution{
			LogPDF: func(p Params, x, c *mat.Dense) []float64 {
				bp, priorp := split(p)
				z, ld := b.Direct(bp, x, c)
				lp := prior.LogPDF(priorp, z, c)
				addTo(lp, ld)
				overflowToZero(lp, x, c)
				return lp
			},
			Sample: func(key Key, p Params, n int, c *mat.Dense) *mat.Dense {
				bp, priorp := split(p)
				x, _ := b.Inverse(bp, prior.Sample(key, priorp, n, c), c)
				return x
			},
			LogPDFVJP: func(p Params, x, c *mat.Dense) ([]float64, DistPullback) {
				bp, priorp := split(p)
				z, ld, bback := b.DirectVJP(bp, x, c)
				lp, pback := prior.LogPDFVJP(priorp, z, c)
				addTo(lp, ld)
				overflowToZero(lp, x, c)
				return lp, func(dLogp []float64, dp Params, dc *mat.Dense) *mat.Dense {
					checkParams("Flow pullback", dp, np)
					// log p = prior(z) + logDet: the prior's pullback gives
					// dL/dz, and the log-det receives dLogp unchanged.
					dz := pback(dLogp, dp[nb:], dc)
					return bback(dz, dLogp, dp[:nb:nb], dc)
				}
			},
			Latent: func(p Params, x, c *mat.Dense) *mat.Dense {
				bp, _ := split(p)
				z, _ := b.Direct(bp, x, c)
				return z
			},
		}
		d.Prepare = func(p Params) PreparedDistribution {
			bp, priorp := split(p)
			pb, pp := PrepareBijection(b, bp), PrepareDistribution(prior, priorp)
			logPDF := func(x, c *mat.Dense) []float64 {
				z, ld := pb.Direct(x, c)
				lp := pp.LogPDF(z, c)
				addTo(lp, ld)
				overflowToZero(lp, x, c)
				return lp
			}
			if pb.rows != nil && pp.logRows != nil {
				logPDF = flowLogPDF(pb.rows, pp.logRows) // the same, fused over row blocks
			}
			return PreparedDistribution{
				LogPDF: logPDF,
				Sample: func(key Key, n int, c *mat.Dense) *mat.Dense {
					x, _ := pb.Inverse(pp.Sample(key, n, c), c)
					return x
				},
				Latent: func(x, c *mat.Dense) *mat.Dense {
					z, _ := pb.Direct(x, c)
					return z
				},
			}
		}
		if b.InitFromData != nil {
			d.InitFromData = func(p Params, x, c *mat.Dense) {
				bp, _ := split(p)
				b.InitFromData(bp, x, c)
			}
		}
		if b.UpdateState != nil {
			d.UpdateState = func(p Params, x, c *mat.Dense) {
				bp, _ := split(p)
				b.UpdateState(bp, x, c)
			}
		}
		return p, d, nil
	}
}

// overflowToZero sets lp[i] to −Inf where it is NaN and row i of x (and of
// c) is finite: an overflow inside the flow, not bad data.
func overflowToZero(lp []float64, x, c *mat.Dense) {
	for i, v := range lp {
		if v == v {
			continue
		}
		if finiteRow(x, i) && (c == nil || c.IsEmpty() || finiteRow(c, i)) {
			lp[i] = math.Inf(-1)
		}
	}
}

// finiteRow reports whether every entry of row i of m is finite.
func finiteRow(m *mat.Dense, i int) bool {
	for _, v := range m.RawRowView(i) {
		if v-v != 0 {
			return false
		}
	}
	return true
}
