package flows

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Serial composes layers into one bijection that applies them in order:
// Serial(a, b) maps x to b(a(x)) in the Direct direction (like jax-flows and
// unlike distrax's Chain), and Inverse undoes b first, then a.
//
// Its parameters are the layers' parameter vectors concatenated in order;
// each layer sees its own slice. The log-det is the sum of the layers'.
// InitFromData initialises the layers in order, each on the batch as the
// layers before it map it, so an ActNorm anywhere in the stack is reached;
// UpdateState does the same for running statistics.
// An init error from layer i is returned as "flows: Serial layer i: …".
func Serial(layers ...InitFunc) InitFunc {
	return func(key Key, dim int) (Params, Bijection, error) {
		if err := checkDim("Serial", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		keys := key.Split(len(layers))
		bs := make([]Bijection, len(layers))
		offs := make([]int, len(layers)+1)
		var p Params
		for i, init := range layers {
			pi, b, err := init(keys[i], dim)
			if err != nil {
				return nil, Bijection{}, fmt.Errorf("flows: Serial layer %d: %w", i, err)
			}
			bs[i] = b
			p = append(p, pi...)
			offs[i+1] = len(p)
		}
		return p, serial(bs, offs, dim), nil
	}
}

func serial(bs []Bijection, offs []int, dim int) Bijection {
	np := offs[len(bs)]
	view := func(p Params, i int) Params { return p[offs[i]:offs[i+1]:offs[i+1]] }
	// run applies fs in order (or reverse order), summing log-dets.
	run := func(p Params, x *mat.Dense, inverse bool) (*mat.Dense, []float64) {
		checkParams("Serial", p, np)
		checkWidth("Serial", x, dim)
		n, _ := x.Dims()
		total := make([]float64, n)
		for k := range bs {
			i := k
			f := bs[i].Direct
			if inverse {
				i = len(bs) - 1 - k
				f = bs[i].Inverse
			}
			var ld []float64
			x, ld = f(view(p, i), x)
			addTo(total, ld)
		}
		return x, total
	}
	runVJP := func(p Params, x *mat.Dense, inverse bool) (*mat.Dense, []float64, Pullback) {
		checkParams("Serial", p, np)
		checkWidth("Serial", x, dim)
		n, _ := x.Dims()
		total := make([]float64, n)
		backs := make([]Pullback, len(bs))
		order := make([]int, len(bs))
		for k := range bs {
			i := k
			f := bs[i].DirectVJP
			if inverse {
				i = len(bs) - 1 - k
				f = bs[i].InverseVJP
			}
			order[k] = i
			var ld []float64
			x, ld, backs[k] = f(view(p, i), x)
			addTo(total, ld)
		}
		back := func(dz *mat.Dense, dLogDet []float64, dp Params) *mat.Dense {
			checkPullback("Serial", dz, dLogDet, dp, n, dim, np)
			// Every layer's log-det enters the total with weight one, so
			// each receives dLogDet unchanged.
			for k := len(bs) - 1; k >= 0; k-- {
				dz = backs[k](dz, dLogDet, view(dp, order[k]))
			}
			return dz
		}
		return x, total, back
	}
	b := Bijection{
		Direct:  func(p Params, x *mat.Dense) (*mat.Dense, []float64) { return run(p, x, false) },
		Inverse: func(p Params, z *mat.Dense) (*mat.Dense, []float64) { return run(p, z, true) },
		DirectVJP: func(p Params, x *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return runVJP(p, x, false)
		},
	}
	hasInverseVJP := true
	for _, c := range bs {
		hasInverseVJP = hasInverseVJP && c.InverseVJP != nil
	}
	if hasInverseVJP {
		b.InverseVJP = func(p Params, z *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return runVJP(p, z, true)
		}
	}
	b.InitFromData = thread(bs, view, np, dim, func(c Bijection) func(Params, *mat.Dense) *mat.Dense { return c.InitFromData })
	b.UpdateState = thread(bs, view, np, dim, func(c Bijection) func(Params, *mat.Dense) *mat.Dense { return c.UpdateState })
	return b
}

// thread returns a function that runs hook (InitFromData or UpdateState) of
// each layer in order on the batch as the layers before it map it, passing
// the batch through layers without the hook by Direct; or nil when no layer
// has the hook.
func thread(bs []Bijection, view func(Params, int) Params, np, dim int, hook func(Bijection) func(Params, *mat.Dense) *mat.Dense) func(Params, *mat.Dense) *mat.Dense {
	found := false
	for _, c := range bs {
		found = found || hook(c) != nil
	}
	if !found {
		return nil
	}
	return func(p Params, x *mat.Dense) *mat.Dense {
		checkParams("Serial", p, np)
		checkWidth("Serial", x, dim)
		for i, c := range bs {
			if h := hook(c); h != nil {
				x = h(view(p, i), x)
			} else {
				x, _ = c.Direct(view(p, i), x)
			}
		}
		return x
	}
}

// addTo adds src into dst elementwise.
func addTo(dst, src []float64) {
	for i, v := range src {
		dst[i] += v
	}
}

// Invert swaps the directions of a layer: Invert(f)'s Direct is f's Inverse
// and its Inverse is f's Direct. IAF is Invert(MAF(...)): sampling then takes
// one pass and density evaluation takes dim passes.
//
// Invert(f) has a DirectVJP (and so can be trained by maximum likelihood)
// only when f has an InverseVJP; when f lacks one, init returns an error.
// Data-dependent initialisation does not carry over: it is defined for f's
// Direct direction.
func Invert(layer InitFunc) InitFunc {
	return func(key Key, dim int) (Params, Bijection, error) {
		p, b, err := layer(key, dim)
		if err != nil {
			return nil, Bijection{}, err
		}
		if b.InverseVJP == nil {
			return nil, Bijection{}, fmt.Errorf("flows: Invert: the layer has no InverseVJP, so its inverse cannot be trained")
		}
		return p, Bijection{Direct: b.Inverse, Inverse: b.Direct, DirectVJP: b.InverseVJP, InverseVJP: b.DirectVJP}, nil
	}
}
