package optim_test

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
	"github.com/gonormflows/flows/optim"
)

// wholeBatchNLL is NLL computed as before chunking: one LogPDFVJP on the
// whole batch, its pullback with −1/n per row.
func wholeBatchNLL(d flows.Distribution, p flows.Params, x *mat.Dense) (float64, flows.Params) {
	n, _ := x.Dims()
	logp, back := d.LogPDFVJP(p, x, nil)
	var sum float64
	for _, v := range logp {
		sum += v
	}
	dl := make([]float64, n)
	for i := range dl {
		dl[i] = -1 / float64(n)
	}
	g := make(flows.Params, len(p))
	back(dl, g, nil)
	return -sum / float64(n), g
}

// TestNLLChunks: a batch of more than NLLChunkRows rows is evaluated in
// chunks: the loss is the whole batch's bit for bit (a row's log density
// does not depend on its batch), the gradient equals the whole batch's up
// to the order of its sums over rows (1e-13 relative), and both are
// bit-identical on any GOMAXPROCS and number of workers. With a BatchNorm
// in training mode (which couples the rows) the batch is not split: the
// result is the whole batch's, bit for bit. The bits are our kernels'
// promise: in the openblas build only the 1e-13 agreement is checked.
func TestNLLChunks(t *testing.T) {
	exact := linalg.Backend() != "openblas"
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	bn := flows.Flow(flows.Serial(flows.BatchNorm(flows.BatchNormConfig{Momentum: 0.1, Eps: 1e-5, Train: true}),
		flows.AffineCoupling(flows.MLP([]int{16}, flows.Tanh))), flows.Normal())
	for _, c := range []struct {
		name    string
		d       flows.DistInitFunc
		n       int
		coupled bool
	}{
		{"RealNVP/129", realNVPFlow(2, 16, flows.Tanh, true), optim.NLLChunkRows + 1, false},
		{"RealNVP/1000", realNVPFlow(3, 32, flows.ReLU, false), 1000, false},
		{"BatchNorm/600", bn, 600, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, d, err := c.d(flows.NewKey(1), 3, 0)
			if err != nil {
				t.Fatal(err)
			}
			rng := flows.NewKey(2).Rand()
			for i := range p {
				p[i] += 0.05 * rng.NormFloat64()
			}
			x := mat.NewDense(c.n, 3, nil)
			for i := range c.n {
				x.SetRow(i, []float64{rng.NormFloat64(), 2 * rng.NormFloat64(), rng.Float64()})
			}
			wantLoss, wantGrad := wholeBatchNLL(d, p, x)
			var ref flows.Params
			for _, procs := range []int{1, 2, 4} {
				for _, workers := range []int{0, 3} {
					runtime.GOMAXPROCS(procs)
					prev := linalg.SetWorkers(workers)
					g := make(flows.Params, len(p))
					loss, err := optim.NLL(d, p, x, nil, g)
					linalg.SetWorkers(prev)
					if err != nil {
						t.Fatal(err)
					}
					where := fmt.Sprintf("GOMAXPROCS=%d, workers %d", procs, workers)
					if exact && loss != wantLoss || !(math.Abs(loss-wantLoss) <= 1e-13*math.Abs(wantLoss)) {
						t.Errorf("%s: loss %v, whole batch %v", where, loss, wantLoss)
					}
					if ref == nil {
						ref = g
						var dd, w float64
						same := true
						for i := range g {
							dd += (g[i] - wantGrad[i]) * (g[i] - wantGrad[i])
							w += wantGrad[i] * wantGrad[i]
							same = same && g[i] == wantGrad[i]
						}
						if e := math.Sqrt(dd / w); !(e <= 1e-13) {
							t.Errorf("%s: gradient differs from the whole batch's by %.3g (relative)", where, e)
						}
						if exact && c.coupled != same {
							t.Errorf("%s: gradient bit-identical to the whole batch's: %v, want %v", where, same, c.coupled)
						}
						continue
					}
					for i := range g {
						if exact && math.Float64bits(g[i]) != math.Float64bits(ref[i]) {
							t.Fatalf("%s: grad[%d] = %v, first run %v", where, i, g[i], ref[i])
						}
					}
				}
			}
		})
	}
}

// TestNLLChunksContext: the chunks take their rows of the context too: a
// conditional flow's chunked loss and gradient match the whole batch's.
func TestNLLChunksContext(t *testing.T) {
	init := flows.Flow(flows.Serial(flows.AffineCoupling(flows.MLP([]int{16}, flows.Tanh)), flows.Reverse(),
		flows.AffineCoupling(flows.MLP([]int{16}, flows.Tanh))), flows.Normal())
	p, d, err := init(flows.NewKey(3), 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	rng := flows.NewKey(4).Rand()
	for i := range p {
		p[i] += 0.05 * rng.NormFloat64()
	}
	const n = 3*optim.NLLChunkRows + 7
	x, c := mat.NewDense(n, 3, nil), mat.NewDense(n, 2, nil)
	for i := range n {
		x.SetRow(i, []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()})
		c.SetRow(i, []float64{rng.NormFloat64(), float64(i % 3)})
	}
	logp, back := d.LogPDFVJP(p, x, c)
	var sum float64
	for _, v := range logp {
		sum += v
	}
	dl := make([]float64, n)
	for i := range dl {
		dl[i] = -1 / float64(n)
	}
	want := make(flows.Params, len(p))
	back(dl, want, nil)
	got := make(flows.Params, len(p))
	loss, err := optim.NLL(d, p, x, c, got)
	if err != nil {
		t.Fatal(err)
	}
	if !(math.Abs(loss+sum/float64(n)) <= 1e-13*math.Abs(sum/float64(n))) {
		t.Errorf("loss %v, whole batch %v", loss, -sum/float64(n))
	}
	var dd, w float64
	for i := range got {
		dd += (got[i] - want[i]) * (got[i] - want[i])
		w += want[i] * want[i]
	}
	if e := math.Sqrt(dd / w); !(e <= 1e-13) {
		t.Errorf("gradient differs from the whole batch's by %.3g (relative)", e)
	}
}

// unfrozenChunksNLL is NLL's chunked evaluation written out without its
// frozen step: the same chunks, each a LogPDFVJP and pullback of its own
// on the unfrozen path (every product packs its weights), chunk i's
// gradient added into partial gradient i mod 4, the partials summed in
// order.
func unfrozenChunksNLL(d flows.Distribution, p flows.Params, x *mat.Dense) (float64, flows.Params) {
	n, dim := x.Dims()
	nc := (n + optim.NLLChunkRows - 1) / optim.NLLChunkRows
	slots := min(nc, 4)
	parts := make([]flows.Params, slots)
	for s := range parts {
		parts[s] = make(flows.Params, len(p))
	}
	var sum float64
	for i := range nc {
		r0, r1 := i*n/nc, (i+1)*n/nc
		lp, back := d.LogPDFVJP(p, x.Slice(r0, r1, 0, dim).(*mat.Dense), nil)
		for _, v := range lp {
			sum += v
		}
		dl := make([]float64, r1-r0)
		for j := range dl {
			dl[j] = -1 / float64(n)
		}
		back(dl, parts[i%slots], nil)
	}
	for _, part := range parts[1:] {
		for j, v := range part {
			parts[0][j] += v
		}
	}
	return -sum / float64(n), parts[0]
}

// TestNLLFrozenBits: NLL freezes p for its chunks, so that the nets pack
// their weights once per step (internal/frozen); the gradient is bit for
// bit that of the same chunks evaluated without freezing, in float64 and
// float32 mode, for ReLU and SiLU nets with a hidden width of two k-blocks
// (300 > 256), on 1 and 2 cores. (The loss is compared to 1e-15: NLL sums
// the log densities over the whole batch, the reference chunk by chunk.)
func TestNLLFrozenBits(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, pr := range []flows.Precision{flows.Float64, flows.Float32} {
		for _, act := range []flows.Activation{flows.ReLU, flows.SiLU} {
			var layers []flows.InitFunc
			for i := range 3 {
				if i > 0 {
					layers = append(layers, flows.Reverse())
				}
				net := flows.MLPWith(flows.MLPConfig{Hidden: []int{300, 32}, Act: act, Precision: pr})
				layers = append(layers, flows.AffineCoupling(net))
			}
			p, d, err := flows.Flow(flows.Serial(layers...), flows.Normal())(flows.NewKey(5), 5, 0)
			if err != nil {
				t.Fatal(err)
			}
			rng := flows.NewKey(6).Rand()
			for i := range p {
				p[i] += 0.05 * rng.NormFloat64()
			}
			const n = 3*optim.NLLChunkRows + 11
			x := mat.NewDense(n, 5, nil)
			for i := range n {
				for j := range 5 {
					x.Set(i, j, rng.NormFloat64())
				}
			}
			wantLoss, want := unfrozenChunksNLL(d, p, x)
			for _, procs := range []int{1, 2} {
				runtime.GOMAXPROCS(procs)
				g := make(flows.Params, len(p))
				loss, err := optim.NLL(d, p, x, nil, g)
				if err != nil {
					t.Fatal(err)
				}
				where := fmt.Sprintf("%v/%v/GOMAXPROCS=%d", pr, act, procs)
				if !(math.Abs(loss-wantLoss) <= 1e-15*math.Abs(wantLoss)) {
					t.Errorf("%s: loss %v, unfrozen chunks %v", where, loss, wantLoss)
				}
				for i := range g {
					if math.Float64bits(g[i]) != math.Float64bits(want[i]) {
						t.Fatalf("%s: grad[%d] = %v, unfrozen chunks %v", where, i, g[i], want[i])
					}
				}
			}
		}
	}
}
