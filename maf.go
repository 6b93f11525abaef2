package flows

// The masked autoregressive flow layer (Papamakarios, Pavlakou and Murray,
// "Masked Autoregressive Flow for Density Estimation", 2017): the layer of
// autoregressive.go over the affine transformer, inverted. With
// [μ | raw] = MADE(x; c) (the MADE made with in = dim, out = 2·dim, so
// column i is μ_i and column dim+i is raw_i, both depending only on the
// inputs before i in the ordering, and on the context c when there is one),
//
//	α_i    = S·tanh(raw_i/S)          (S = 3, or MAFBound's bound)
//	z_i    = (x_i − μ_i)·exp(−α_i)
//	logDet = −Σ_i α_i
//
// Direct, the density direction, is one parallel pass of the MADE; Inverse,
// the sampling direction, computes x_i = z_i·exp(α_i) + μ_i (logDet =
// +Σ_i α_i) in dim sequential steps costing about one MADE pass in all (see
// autoregressive.go). The bound keeps every log-scale in (−S, S) per
// dimension per layer, as in AffineCoupling. The context reaches every
// first-layer unit and, directly, every output, so that μ and α of the
// first input of the ordering, which no hidden unit reaches, depend on c
// too; the MADE's last layer and the context weights into the outputs are
// zero at init, so Direct(x) is x exactly, log-det 0, for every context.
// dim 1 makes μ and α free parameters, an elementwise affine map.

import (
	"slices"
)

// mafBound is the bound S on MAF's log-scales, α = S·tanh(raw/S): the same
// bound as AffineCoupling's.
const mafBound = 3

// MAF returns a masked autoregressive flow layer (Papamakarios et al.,
// 2017): an affine autoregressive bijection, z_i = (x_i − μ_i)·exp(−α_i)
// with α_i = 3·tanh(raw_i/3) in (−3, 3), whose shifts μ and raw log-scales
// come from a MADE (see MADE for cfg and the ordering) made with in = dim
// and out = 2·dim: column i is μ_i, column dim+i is raw_i. It is
// MaskedAutoregressive over the affine map, read as [μ | raw] (the
// formulas are in maf.go's file comment).
//
// Parameters: exactly those of MADE(cfg)(key, dim, 2·dim), the same values
// for the same key, in MADE's layout; then, with a context of contextDim
// columns, its weights
//
//	[… | Wc_0 (contextDim×h_0) | Wc_L (contextDim×2·dim)]
//
// (only [… | Wc_0 (contextDim×2·dim)] without hidden layers), entering the
// pre-activations as c·Wc. The layer starts as the identity exactly, for
// every context.
//
// IAF (the inverse autoregressive flow, Kingma et al., 2016) is
// Invert(MAF(cfg)). The directions' costs, stacking, dim 1, init errors,
// panics and pullbacks are as for MaskedAutoregressive, with errors
// starting "flows: MAF:".
func MAF(cfg MADEConfig) InitFunc { return mafBounded("MAF", cfg, mafBound) }

// MAFBound is MAF with the log-scales bounded by bound instead of 3:
// α = bound·tanh(raw/bound), |α| < bound. A larger bound lets one layer
// contract a column more (a table whose columns nearly determine each
// other needs conditional log-scales of −4 and below), at the price of
// less protection against a step that blows up a scale. Init returns an
// error unless bound is positive and finite.
func MAFBound(cfg MADEConfig, bound float64) InitFunc { return mafBounded("MAFBound", cfg, bound) }

// mafBounded builds MAF and MAFBound; who names the layer.
func mafBounded(who string, cfg MADEConfig, bound float64) InitFunc {
	cfg.Hidden = slices.Clone(cfg.Hidden) // the caller may reuse its slice
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if err := checkAffineBound(who, bound); err != nil {
			return nil, Bijection{}, err
		}
		return newAR(who, cfg, key, dim, contextDim, mafTransformer(bound), mafOrder, bound)
	}
}

// mafTransformer is MAF's map: Affine's inverse, z = (x − μ)·exp(−α). Its
// parameters are Affine's, [raw, t]; the MADE emits them as [μ, raw], so
// the layer reads them in mafOrder.
func mafTransformer(bound float64) Transformer {
	return invertTransformer(Affine(bound))
}

// mafOrder is where MAF's layer finds Affine's θ = [raw, t] among the
// MADE's output blocks [μ, raw].
var mafOrder = []int{1, 0}
