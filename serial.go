package flows

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Serial composes layers into one bijection that applies them in order:
// Serial(a, b) maps x to b(a(x)) in the Direct direction (like jax-flows and
// unlike distrax's Chain), and Inverse undoes b first, then a. Every layer
// sees the same context.
//
// Its parameters are the layers' parameter vectors concatenated in order;
// each layer sees its own slice, and layer i is made with key.Split(len)[i].
// The log-det is the sum of the layers'; since the context enters every
// layer, its gradient is the sum of theirs (each pullback adds into the one
// dc). InitFromData initialises the layers in order, each on the batch as
// the layers before it map it, so an ActNorm anywhere in the stack is
// reached; UpdateState does the same for running statistics. An init error
// from layer i is returned as "flows: Serial layer i: …".
func Serial(layers ...InitFunc) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if err := checkDim("Serial", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if err := checkContextDim("Serial", contextDim); err != nil {
			return nil, Bijection{}, err
		}
		keys := key.Split(len(layers))
		bs := make([]Bijection, len(layers))
		offs := make([]int, len(layers)+1)
		var p Params
		for i, init := range layers {
			if init == nil {
				return nil, Bijection{}, fmt.Errorf("flows: Serial layer %d: nil layer", i)
			}
			pi, b, err := init(keys[i], dim, contextDim)
			if err != nil {
				return nil, Bijection{}, fmt.Errorf("flows: Serial layer %d: %w", i, err)
			}
			bs[i] = b
			p = append(p, pi...)
			offs[i+1] = len(p)
		}
		s := &serial{bs: bs, offs: offs, dim: dim, cdim: contextDim}
		return p, s.bijection(), nil
	}
}

// serial holds a Serial stack's immutable shape.
type serial struct {
	bs        []Bijection
	offs      []int // layer i's parameters are p[offs[i]:offs[i+1]]
	dim, cdim int
}

// view returns layer i's slice of p.
func (s *serial) view(p Params, i int) Params {
	return p[s.offs[i]:s.offs[i+1]:s.offs[i+1]]
}

// check checks a call's shapes and returns the batch's rows.
func (s *serial) check(p Params, x, c *mat.Dense) int {
	checkParams("Serial", p, s.offs[len(s.bs)])
	checkWidth("Serial", x, s.dim)
	n, _ := x.Dims()
	checkContext("Serial", c, n, s.cdim)
	return n
}

// order returns the index of the layer that runs k-th, in the Direct
// direction or, when inverse, the Inverse one.
func (s *serial) order(k int, inverse bool) int {
	if inverse {
		return len(s.bs) - 1 - k
	}
	return k
}

// run applies the layers in order (or reverse order), summing log-dets.
func (s *serial) run(p Params, x, c *mat.Dense, inverse bool) (*mat.Dense, []float64) {
	n := s.check(p, x, c)
	total := make([]float64, n)
	for k := range s.bs {
		i := s.order(k, inverse)
		f := s.bs[i].Direct
		if inverse {
			f = s.bs[i].Inverse
		}
		var ld []float64
		x, ld = f(s.view(p, i), x, c)
		addTo(total, ld)
	}
	return x, total
}

// runVJP is run with the layers' pullbacks, chained in reverse.
func (s *serial) runVJP(p Params, x, c *mat.Dense, inverse bool) (*mat.Dense, []float64, Pullback) {
	n := s.check(p, x, c)
	total := make([]float64, n)
	backs := make([]Pullback, len(s.bs))
	for k := range s.bs {
		i := s.order(k, inverse)
		f := s.bs[i].DirectVJP
		if inverse {
			f = s.bs[i].InverseVJP
		}
		var ld []float64
		x, ld, backs[k] = f(s.view(p, i), x, c)
		addTo(total, ld)
	}
	np := s.offs[len(s.bs)]
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback("Serial", dz, dLogDet, dp, dc, n, s.dim, np, s.cdim)
		// Every layer's log-det enters the total with weight one, so each
		// receives dLogDet unchanged, and each adds its share of dL/dc.
		for k := len(s.bs) - 1; k >= 0; k-- {
			dz = backs[k](dz, dLogDet, s.view(dp, s.order(k, inverse)), dc)
		}
		return dz
	}
	return x, total, back
}

// bijection returns the stack's functions.
func (s *serial) bijection() Bijection {
	b := Bijection{
		Direct:  func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) { return s.run(p, x, c, false) },
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) { return s.run(p, z, c, true) },
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return s.runVJP(p, x, c, false)
		},
	}
	hasInverseVJP := true
	for _, l := range s.bs {
		hasInverseVJP = hasInverseVJP && l.InverseVJP != nil
	}
	if hasInverseVJP {
		b.InverseVJP = func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return s.runVJP(p, z, c, true)
		}
	}
	b.Prepare = s.prepare
	b.InitFromData = s.thread(func(l Bijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense { return l.InitFromData })
	b.UpdateState = s.thread(func(l Bijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense { return l.UpdateState })
	return b
}

// thread returns a function that runs hook (InitFromData or UpdateState) of
// each layer in order on the batch as the layers before it map it, passing
// the batch through layers without the hook by Direct; or nil when no layer
// has the hook.
func (s *serial) thread(hook func(Bijection) func(Params, *mat.Dense, *mat.Dense) *mat.Dense) func(Params, *mat.Dense, *mat.Dense) *mat.Dense {
	found := false
	for _, l := range s.bs {
		found = found || hook(l) != nil
	}
	if !found {
		return nil
	}
	return func(p Params, x, c *mat.Dense) *mat.Dense {
		s.check(p, x, c)
		for i, l := range s.bs {
			if h := hook(l); h != nil {
				x = h(s.view(p, i), x, c)
			} else {
				x, _ = l.Direct(s.view(p, i), x, c)
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
// and its Inverse is f's Direct, at the same context. IAF is
// Invert(MAF(...)): sampling then takes one pass and density evaluation
// takes dim passes.
//
// Invert(f) has a DirectVJP (and so can be trained by maximum likelihood)
// only when f has an InverseVJP; when f lacks one, init returns an error.
// Data-dependent initialisation does not carry over: it is defined for f's
// Direct direction.
func Invert(layer InitFunc) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if layer == nil {
			return nil, Bijection{}, fmt.Errorf("flows: Invert: nil layer")
		}
		p, b, err := layer(key, dim, contextDim)
		if err != nil {
			return nil, Bijection{}, err
		}
		if b.InverseVJP == nil {
			return nil, Bijection{}, fmt.Errorf("flows: Invert: the layer has no InverseVJP, so its inverse cannot be trained")
		}
		inv := Bijection{Direct: b.Inverse, Inverse: b.Direct, DirectVJP: b.InverseVJP, InverseVJP: b.DirectVJP}
		inv.Prepare = func(p Params) PreparedBijection {
			pb := PrepareBijection(b, p)
			out := PreparedBijection{Direct: pb.Inverse, Inverse: pb.Direct}
			if r := pb.rows; r != nil {
				out.rows = &preparedRows{dim: r.dim, cdim: r.cdim, direct: r.inverse, inverse: r.direct}
			}
			return out
		}
		return p, inv, nil
	}
}

// prepare is the stack's Prepare: every layer prepared at its slice of p.
// When every layer has row maps, the prepared stack runs all of them over
// one row block before the next (see prepare.go), and has row maps itself.
// Otherwise each run of consecutive layers with row maps is fused so, and
// the layers without are called in turn on the whole batch; the log-dets
// are added into one total in the layers' order, as run adds them.
func (s *serial) prepare(p Params) PreparedBijection {
	checkParams("Serial", p, s.offs[len(s.bs)])
	ls := make([]PreparedBijection, len(s.bs))
	fused := true
	for i, b := range s.bs {
		ls[i] = PrepareBijection(b, s.view(p, i))
		fused = fused && ls[i].rows != nil
	}
	// maps returns the row maps of layers [i0, i1) in the order they run
	// (forward, a permutation folded into the layer before it where that
	// layer can take it: directMaps).
	maps := func(i0, i1 int, inverse bool) []rowMap {
		var fs []rowMap
		if !inverse {
			rs := make([]*preparedRows, 0, i1-i0)
			for _, l := range ls[i0:i1] {
				rs = append(rs, l.rows)
			}
			return directMaps(rs)
		}
		for k := range i1 - i0 {
			fs = append(fs, ls[i1-1-k].rows.inverse)
		}
		return fs
	}
	if fused {
		n := len(ls)
		return withRows("Serial", &preparedRows{dim: s.dim, cdim: s.cdim,
			direct: chainRows(maps(0, n, false), s.dim), inverse: chainRows(maps(0, n, true), s.dim)})
	}
	// segs: [i0, i1) runs of layers, each either fused (all with row maps)
	// or a single layer without.
	type seg struct {
		i0, i1          int
		direct, inverse rowMap // nil for a layer without row maps
	}
	var segs []seg
	for i := 0; i < len(ls); {
		j := i + 1
		if ls[i].rows == nil {
			segs = append(segs, seg{i0: i, i1: j})
		} else {
			for j < len(ls) && ls[j].rows != nil {
				j++
			}
			segs = append(segs, seg{i, j, chainAdd(maps(i, j, false), s.dim), chainAdd(maps(i, j, true), s.dim)})
		}
		i = j
	}
	run := func(x, c *mat.Dense, inverse bool) (*mat.Dense, []float64) {
		checkWidth("Serial", x, s.dim)
		n, _ := x.Dims()
		checkContext("Serial", c, n, s.cdim)
		total := make([]float64, n)
		for k := range segs {
			g := segs[k]
			if inverse {
				g = segs[len(segs)-1-k]
			}
			switch {
			case g.direct != nil && inverse:
				x = runRowsInto("Serial", g.inverse, s.dim, s.cdim, x, c, total)
			case g.direct != nil:
				x = runRowsInto("Serial", g.direct, s.dim, s.cdim, x, c, total)
			default:
				f := ls[g.i0].Direct
				if inverse {
					f = ls[g.i0].Inverse
				}
				var ld []float64
				x, ld = f(x, c)
				addTo(total, ld)
			}
		}
		return x, total
	}
	return PreparedBijection{
		Direct:  func(x, c *mat.Dense) (*mat.Dense, []float64) { return run(x, c, false) },
		Inverse: func(z, c *mat.Dense) (*mat.Dense, []float64) { return run(z, c, true) },
	}
}
