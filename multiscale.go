package flows

// Multi-scale architecture (RealNVP, Glow): factor-out with a learned
// conditional prior, and the ready-made Glow flow.
//
// Factoring out is written as a bijection of the whole row, so a multi-scale
// flow stays an ordinary layer over a Normal prior. At a factor-out of an
// image of shape C×H×W, the first C/2 channels (the first C/2·H·W columns)
// go on through the rest of the flow and the other C − C/2 channels leave.
// Glow scores the leaving half z_b under N(μ(z_a), σ(z_a)²), with μ and
// log σ from a zero-initialised 3×3 convolution of the staying half z_a;
// that density equals the standard normal density of
// (z_b − μ)·exp(−log σ) times exp(−Σ log σ), which is an affine coupling of
// z_b given z_a. So FactorOut with PriorLearned is an image coupling with
// MaskChannels over a one-conv net (with AffineCoupling's bounded
// log-scale, |log σ| < 3, rather than ImageCoupling's sigmoid scale), followed by the rest of the flow applied
// to the first C/2·H·W columns alone (the leaving columns pass through
// unchanged); with PriorNormal the coupling is left out. The final latent
// row holds every factor, and the flow's prior is the standard Normal.

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// FactorPrior is the prior of the channels that leave at a FactorOut.
type FactorPrior int

const (
	// PriorLearned is Glow's split: a normal whose mean and log-scale per
	// value come from a zero-initialised 3×3 convolution of the channels
	// that stay (a standard normal at init).
	PriorLearned FactorPrior = iota
	// PriorNormal is a standard normal (RealNVP).
	PriorNormal
)

// FactorOut returns the multi-scale factor-out of images of the given
// shape: the first C/2 channels go on through rest, made at width
// (C/2)·H·W with the same context, and the last C − C/2 channels leave the
// flow, under the prior chosen (see multiscale.go's file comment for how
// the learned prior is a coupling). Parameters: [the prior's coupling (for
// PriorLearned) | rest's]. Init returns an error unless dim is
// shape.Size() and C ≥ 2, or when rest's init fails.
func FactorOut(shape Shape, prior FactorPrior, rest InitFunc) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "FactorOut"
		if err := checkImageDim(who, shape, dim, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		if shape.C < 2 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: image shape %v has fewer than 2 channels to split", who, shape)
		}
		if rest == nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: nil rest", who)
		}
		k := shape.C / 2 * shape.H * shape.W
		onRest := func(key Key, dim, contextDim int) (Params, Bijection, error) {
			p, b, err := rest(key, k, contextDim)
			if err != nil {
				return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, err)
			}
			return p, onPrefix(who, b, k, dim, len(p)), nil
		}
		switch prior {
		case PriorLearned:
			net := func(key Key, in, out int) (Params, Net, error) {
				return convNetInit(key, shape.H, shape.W, in, out, 0, 0, false, Float64)
			}
			return Serial(imageCouplingInit(shape, MaskChannels, net, false), onRest)(key, dim, contextDim)
		case PriorNormal:
			return onRest(key, dim, contextDim)
		}
		return nil, Bijection{}, fmt.Errorf("flows: %s: unknown prior %d", who, int(prior))
	}
}

// onPrefix applies b, a bijection of width k, to the first k of dim
// columns; the others pass through.
func onPrefix(who string, b Bijection, k, dim, np int) Bijection {
	// split returns x's first k columns as a view.
	split := func(x *mat.Dense) (*mat.Dense, int) {
		checkWidth(who, x, dim)
		n, _ := x.Dims()
		return x.Slice(0, n, 0, k).(*mat.Dense), n
	}
	// join returns a new batch of x's columns with the first k replaced.
	join := func(x, head *mat.Dense, n int) *mat.Dense {
		out := mat.NewDense(n, dim, nil)
		out.Copy(x)
		out.Slice(0, n, 0, k).(*mat.Dense).Copy(head)
		return out
	}
	pass := func(f func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64)) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64) {
		return func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			checkParams(who, p, np)
			h, n := split(x)
			z, ld := f(p, h, c)
			return join(x, z, n), ld
		}
	}
	passVJP := func(f func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, Pullback)) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, Pullback) {
		if f == nil {
			return nil
		}
		return func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			checkParams(who, p, np)
			h, n := split(x)
			z, ld, back := f(p, h, c)
			pb := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
				dh, _ := split(dz)
				return join(dz, back(dh, dLogDet, dp, dc), n)
			}
			return join(x, z, n), ld, pb
		}
	}
	hook := func(f func(Params, *mat.Dense, *mat.Dense) *mat.Dense) func(Params, *mat.Dense, *mat.Dense) *mat.Dense {
		if f == nil {
			return nil
		}
		return func(p Params, x, c *mat.Dense) *mat.Dense {
			checkParams(who, p, np)
			h, n := split(x)
			return join(x, f(p, h, c), n)
		}
	}
	return Bijection{
		Direct:       pass(b.Direct),
		Inverse:      pass(b.Inverse),
		DirectVJP:    passVJP(b.DirectVJP),
		InverseVJP:   passVJP(b.InverseVJP),
		InitFromData: hook(b.InitFromData),
		UpdateState:  hook(b.UpdateState),
	}
}
