package flows

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Flow is the distribution of x = f⁻¹(z) for z drawn from prior, where f is
// the bijection's Direct map: a normalizing flow. Its log density is
//
//	log p(x) = log p_prior(Direct(x)) + logDet(x),
//
// and it samples by drawing from the prior and applying Inverse.
//
// Parameter layout: [bijection's parameters | prior's parameters], so a
// trainable prior trains with the rest. The pullback of LogPDF reaches both
// parts, and through the bijection's log-det as well as its output.
// When the bijection has a data-dependent initialisation (ActNorm anywhere
// in a Serial stack), the flow's InitFromData runs it.
func Flow(bijection InitFunc, prior DistInitFunc) DistInitFunc {
	return func(key Key, dim int) (Params, Distribution, error) {
		kb, kp := key.Split2()
		pb, b, err := bijection(kb, dim)
		if err != nil {
			return nil, Distribution{}, fmt.Errorf("flows: Flow bijection: %w", err)
		}
		pp, prior, err := prior(kp, dim)
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
			LogPDF: func(p Params, x *mat.Dense) []float64 {
				bp, priorp := split(p)
				z, ld := b.Direct(bp, x)
				lp := prior.LogPDF(priorp, z)
				addTo(lp, ld)
				return lp
			},
			Sample: func(key Key, p Params, n int) *mat.Dense {
				bp, priorp := split(p)
				x, _ := b.Inverse(bp, prior.Sample(key, priorp, n))
				return x
			},
			LogPDFVJP: func(p Params, x *mat.Dense) ([]float64, DistPullback) {
				bp, priorp := split(p)
				z, ld, bback := b.DirectVJP(bp, x)
				lp, pback := prior.LogPDFVJP(priorp, z)
				addTo(lp, ld)
				return lp, func(dLogp []float64, dp Params) *mat.Dense {
					checkParams("Flow pullback", dp, np)
					// log p = prior(z) + logDet: the prior's pullback gives
					// dL/dz, and the log-det receives dLogp unchanged.
					dz := pback(dLogp, dp[nb:])
					return bback(dz, dLogp, dp[:nb:nb])
				}
			},
		}
		if b.InitFromData != nil {
			d.InitFromData = func(p Params, x *mat.Dense) {
				bp, _ := split(p)
				b.InitFromData(bp, x)
			}
		}
		if b.UpdateState != nil {
			d.UpdateState = func(p Params, x *mat.Dense) {
				bp, _ := split(p)
				b.UpdateState(bp, x)
			}
		}
		return p, d, nil
	}
}
