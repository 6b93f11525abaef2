package flows_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

var (
	bnTrainCfg = flows.BatchNormConfig{Momentum: 0.1, Eps: 1e-5, Train: true}
	bnEvalCfg  = flows.BatchNormConfig{Momentum: 0.1, Eps: 1e-5, Train: false}
)

// bnBatch is a fixed n×dim batch whose columns have different offsets and
// scales, so that batch statistics are far from (0, 1).
func bnBatch(seed uint64, n, dim int) *mat.Dense {
	rng := flows.NewKey(seed).Rand()
	x := mat.NewDense(n, dim, nil)
	for i := 0; i < n; i++ {
		for j := 0; j < dim; j++ {
			off, scale := 3-2*float64(j), 0.5+0.75*float64(j%3)
			x.Set(i, j, off+scale*rng.NormFloat64())
		}
	}
	return x
}

// bnColumnStats returns the mean and biased (divisor n) variance of each
// column of x, computed independently of the layer.
func bnColumnStats(x *mat.Dense) (mean, variance []float64) {
	n, d := x.Dims()
	mean, variance = make([]float64, d), make([]float64, d)
	for j := 0; j < d; j++ {
		col := mat.Col(nil, j, x)
		for _, v := range col {
			mean[j] += v
		}
		mean[j] /= float64(n)
		for _, v := range col {
			variance[j] += (v - mean[j]) * (v - mean[j])
		}
		variance[j] /= float64(n)
	}
	return mean, variance
}

// bnState lists BatchNorm's state entries, [runningMean | runningVar], for
// the suite: they must get exactly zero gradient.
func bnState(dim int) []int {
	idx := make([]int, 2*dim)
	for i := range idx {
		idx[i] = 2*dim + i
	}
	return idx
}

// bnPerturb moves logGamma and beta away from the identity and sets the
// running statistics to the given values.
func bnPerturb(mean, variance []float64) func(flows.Key, flows.Params) flows.Params {
	return func(key flows.Key, p flows.Params) flows.Params {
		dim := len(mean)
		q := slices.Clone(p)
		rng := key.Rand()
		for i := range 2 * dim {
			q[i] += 0.2 * rng.NormFloat64()
		}
		copy(q[2*dim:3*dim], mean)
		copy(q[3*dim:], variance)
		return q
	}
}

// TestBatchNormEvalConformance runs the suite on the evaluation map, with
// running statistics away from their initial (0, 1).
func TestBatchNormEvalConformance(t *testing.T) {
	for _, dim := range []int{1, 3} {
		mean, variance := make([]float64, dim), make([]float64, dim)
		for j := range dim {
			mean[j], variance[j] = 0.7-0.4*float64(j), 0.3+0.8*float64(j)
		}
		flowstest.TestBijection(t, flowstest.Bijection{
			Name:    fmt.Sprintf("BatchNorm/eval/dim=%d", dim),
			Init:    flows.BatchNorm(bnEvalCfg),
			Dim:     dim,
			State:   bnState(dim),
			Perturb: bnPerturb(mean, variance),
		})
	}
}

// TestBatchNormTrainConformance runs the suite on the training map. Its
// Inverse is that of the evaluation map, so the suite's round trip holds
// only where the running statistics equal the test batch's statistics: the
// state is set to them by UpdateState with momentum 1, and the suite's test
// batch is that fixed batch. The rows interact (RowCoupled), and the
// suite's pullback check perturbs one entry at a time and recomputes the
// whole batch, so it checks the full batch-norm backward, the log-det's
// dependence on the variance included.
func TestBatchNormTrainConformance(t *testing.T) {
	for _, dim := range []int{1, 3} {
		const rows = 6
		x := bnBatch(11, rows, dim)
		p, b, err := flows.BatchNorm(flows.BatchNormConfig{Momentum: 1, Eps: 1e-5, Train: true})(flows.NewKey(1), dim, 0)
		if err != nil {
			t.Fatal(err)
		}
		b.UpdateState(p, x, nil)
		flowstest.TestBijection(t, flowstest.Bijection{
			Name:       fmt.Sprintf("BatchNorm/train/dim=%d", dim),
			Init:       flows.BatchNorm(bnTrainCfg),
			Dim:        dim,
			State:      bnState(dim),
			Perturb:    bnPerturb(p[2*dim:3*dim], p[3*dim:]),
			Rows:       rows,
			Inputs:     func(_ flows.Key, n, d int) *mat.Dense { return bnBatch(11, n, d) },
			RowCoupled: true,
		})
	}
}

// TestBatchNormInit checks the layout, the initial values, and that the two
// modes share them.
func TestBatchNormInit(t *testing.T) {
	const dim = 3
	pt, bt, err := flows.BatchNorm(bnTrainCfg)(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	pe, be, err := flows.BatchNorm(bnEvalCfg)(flows.NewKey(2), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := flows.Params{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}
	if !slices.Equal(pt, want) || !slices.Equal(pe, want) {
		t.Errorf("initial parameters %v (train), %v (eval), want %v", pt, pe, want)
	}
	if bt.UpdateState == nil {
		t.Error("training mode has no UpdateState")
	}
	if be.UpdateState != nil {
		t.Error("evaluation mode has an UpdateState")
	}
	if bt.InverseVJP == nil || be.InverseVJP == nil {
		t.Error("no InverseVJP")
	}
}

func TestBatchNormBadConfig(t *testing.T) {
	for _, c := range []struct {
		cfg flows.BatchNormConfig
		dim int
	}{
		{flows.BatchNormConfig{Momentum: 0, Eps: 1e-5}, 2},
		{flows.BatchNormConfig{Momentum: -0.1, Eps: 1e-5}, 2},
		{flows.BatchNormConfig{Momentum: 1.5, Eps: 1e-5}, 2},
		{flows.BatchNormConfig{Momentum: math.NaN(), Eps: 1e-5}, 2},
		{flows.BatchNormConfig{Momentum: 0.1, Eps: 0}, 2},
		{flows.BatchNormConfig{Momentum: 0.1, Eps: -1e-5}, 2},
		{flows.BatchNormConfig{Momentum: 0.1, Eps: math.NaN()}, 2},
		{flows.BatchNormConfig{Momentum: 0.1, Eps: math.Inf(1)}, 2},
		{flows.BatchNormConfig{}, 2},
		{bnTrainCfg, 0},
	} {
		_, _, err := flows.BatchNorm(c.cfg)(flows.NewKey(1), c.dim, 0)
		if err == nil {
			t.Errorf("%+v at dim %d: no error", c.cfg, c.dim)
		} else if !strings.HasPrefix(err.Error(), "flows: BatchNorm: ") {
			t.Errorf("%+v at dim %d: error %q lacks the flows: BatchNorm: prefix", c.cfg, c.dim, err)
		}
	}
	if _, _, err := flows.BatchNorm(flows.BatchNormConfig{Momentum: 1, Eps: 1e-5, Train: true})(flows.NewKey(1), 1, 0); err != nil {
		t.Errorf("momentum 1: %v", err)
	}
}

// bnPanics reports the panic message of f, or "" when it does not panic.
func bnPanics(f func()) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = fmt.Sprint(r)
		}
	}()
	f()
	return ""
}

// TestBatchNormSmallBatch checks that the training map refuses a batch of
// one row (no variance) and the evaluation map takes it.
func TestBatchNormSmallBatch(t *testing.T) {
	one := mat.NewDense(1, 2, []float64{1, 2})
	pt, bt, _ := flows.BatchNorm(bnTrainCfg)(flows.NewKey(1), 2, 0)
	for name, f := range map[string]func(){
		"Direct":      func() { bt.Direct(pt, one, nil) },
		"DirectVJP":   func() { bt.DirectVJP(pt, one, nil) },
		"UpdateState": func() { bt.UpdateState(pt, one, nil) },
	} {
		if msg := bnPanics(f); !strings.HasPrefix(msg, "flows: BatchNorm: ") {
			t.Errorf("training %s on one row: panic %q, want a flows: BatchNorm: message", name, msg)
		}
	}
	if msg := bnPanics(func() { bt.Inverse(pt, one, nil) }); msg != "" {
		t.Errorf("training Inverse on one row panicked: %s", msg)
	}
	pe, be, _ := flows.BatchNorm(bnEvalCfg)(flows.NewKey(1), 2, 0)
	if msg := bnPanics(func() { be.Direct(pe, one, nil) }); msg != "" {
		t.Errorf("evaluation Direct on one row panicked: %s", msg)
	}
}

func TestBatchNormBadRunningVariance(t *testing.T) {
	x := bnBatch(3, 4, 2)
	for _, v := range []float64{-1, -1e-5, math.NaN(), math.Inf(1)} {
		p, b, _ := flows.BatchNorm(bnEvalCfg)(flows.NewKey(1), 2, 0)
		p[7] = v
		for name, f := range map[string]func(){
			"Direct":  func() { b.Direct(p, x, nil) },
			"Inverse": func() { b.Inverse(p, x, nil) },
		} {
			if msg := bnPanics(f); !strings.HasPrefix(msg, "flows: BatchNorm: ") {
				t.Errorf("running variance %v, %s: panic %q, want a flows: BatchNorm: message", v, name, msg)
			}
		}
	}
}

// TestBatchNormTrainMap checks the training map against the MAF formula
// with statistics computed here: z = (x − m)/√(v + ε)·e^{logGamma} + β and
// logDet = Σ logGamma − ½·log(v + ε), on a batch with a constant column
// (variance 0, where ε keeps the map finite).
func TestBatchNormTrainMap(t *testing.T) {
	const n, dim, eps = 7, 3, 1e-5
	x := bnBatch(5, n, dim)
	for i := 0; i < n; i++ {
		x.Set(i, 2, 4.25) // constant column
	}
	p, b, _ := flows.BatchNorm(bnTrainCfg)(flows.NewKey(1), dim, 0)
	copy(p, []float64{0.3, -0.2, 0.1, 1.5, -0.5, 2}) // logGamma, beta
	copy(p[2*dim:], []float64{9, 9, 9, 7, 7, 7})     // running stats, unused
	mean, variance := bnColumnStats(x)
	z, ld := b.Direct(p, x, nil)
	wantLD := 0.0
	for j := 0; j < dim; j++ {
		wantLD += p[j] - 0.5*math.Log(variance[j]+eps)
	}
	for i := 0; i < n; i++ {
		// Same formula, different summation order: ulps.
		if math.Abs(ld[i]-wantLD) > 1e-13*math.Max(1, math.Abs(wantLD)) {
			t.Errorf("logDet[%d] = %.17g, want %.17g", i, ld[i], wantLD)
		}
		for j := 0; j < dim; j++ {
			want := (x.At(i, j)-mean[j])/math.Sqrt(variance[j]+eps)*math.Exp(p[j]) + p[dim+j]
			if math.Abs(z.At(i, j)-want) > 1e-12*math.Max(1, math.Abs(want)) {
				t.Errorf("z[%d,%d] = %.17g, want %.17g", i, j, z.At(i, j), want)
			}
		}
	}
	// The output's batch statistics: mean β and variance γ²·v/(v + ε).
	zm, zv := bnColumnStats(z)
	for j := 0; j < dim; j++ {
		wv := math.Exp(2*p[j]) * variance[j] / (variance[j] + eps)
		if math.Abs(zm[j]-p[dim+j]) > 1e-12 || math.Abs(zv[j]-wv) > 1e-12 {
			t.Errorf("column %d of z: mean %v, variance %v; want %v, %v", j, zm[j], zv[j], p[dim+j], wv)
		}
	}
}

// TestBatchNormTrainPullback compares the training pullback with central
// finite differences of L = Σ dz∘z + Σ dl∘logDet over the whole batch
// (perturbing one entry moves the batch statistics, hence every row),
// including the smallest batch (2 rows) and a larger one with offsets.
func TestBatchNormTrainPullback(t *testing.T) {
	for _, n := range []int{2, 3, 9} {
		const dim = 2
		x := bnBatch(uint64(20+n), n, dim)
		p, b, _ := flows.BatchNorm(bnTrainCfg)(flows.NewKey(1), dim, 0)
		copy(p, []float64{0.4, -0.3, 0.2, -1})
		dz := bnBatch(uint64(40+n), n, dim)
		dl := make([]float64, n)
		for i := range dl {
			dl[i] = 0.5 - 0.3*float64(i)
		}
		loss := func(p flows.Params, x *mat.Dense) float64 {
			z, ld := b.Direct(p, x, nil)
			s := 0.0
			for i := 0; i < n; i++ {
				s += dl[i] * ld[i]
				for j := 0; j < dim; j++ {
					s += dz.At(i, j) * z.At(i, j)
				}
			}
			return s
		}
		_, _, back := b.DirectVJP(p, x, nil)
		dp := make(flows.Params, len(p))
		dx := back(dz, dl, dp, nil)
		// Central differences with h = 1e-5 on O(1) curvature are good to
		// ~1e-9; 1e-6 absolute plus 1e-5 relative catches any wrong term.
		check := func(what string, got, want float64) {
			if math.Abs(got-want) > 1e-6+1e-5*math.Abs(want) {
				t.Errorf("n=%d: %s = %.10g, finite differences %.10g", n, what, got, want)
			}
		}
		xs := mat.DenseCopyOf(x)
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				v := xs.At(i, j)
				h := 1e-5 * math.Max(1, math.Abs(v))
				xs.Set(i, j, v+h)
				lp := loss(p, xs)
				xs.Set(i, j, v-h)
				lm := loss(p, xs)
				xs.Set(i, j, v)
				check(fmt.Sprintf("dx[%d,%d]", i, j), dx.At(i, j), (lp-lm)/(2*h))
			}
		}
		ps := slices.Clone(p)
		for k := 0; k < 2*dim; k++ {
			v := ps[k]
			h := 1e-5 * math.Max(1, math.Abs(v))
			ps[k] = v + h
			lp := loss(ps, x)
			ps[k] = v - h
			lm := loss(ps, x)
			ps[k] = v
			check(fmt.Sprintf("dp[%d]", k), dp[k], (lp-lm)/(2*h))
		}
		// The log-det alone: its gradient to x is not zero in training
		// mode (it depends on the batch variance).
		dx2 := back(mat.NewDense(n, dim, nil), dl, make(flows.Params, len(p)), nil)
		if mat.Norm(dx2, 2) == 0 {
			t.Errorf("n=%d: the log-det has no gradient to x", n)
		}
	}
}

// TestBatchNormStateGetsNoGradient checks that every pullback, in both
// modes and both directions, adds exactly zero to the running statistics'
// gradient (they are state, not trainable parameters), and that the
// trainable part is touched.
func TestBatchNormStateGetsNoGradient(t *testing.T) {
	const n, dim = 5, 3
	x := bnBatch(8, n, dim)
	dz := bnBatch(9, n, dim)
	dl := []float64{1, -2, 0.5, 3, -1}
	for _, cfg := range []flows.BatchNormConfig{bnTrainCfg, bnEvalCfg} {
		p, b, _ := flows.BatchNorm(cfg)(flows.NewKey(1), dim, 0)
		for j := 0; j < dim; j++ {
			p[2*dim+j], p[3*dim+j] = 1+float64(j), 2+float64(j)
		}
		_, _, back := b.DirectVJP(p, x, nil)
		_, _, iback := b.InverseVJP(p, x, nil)
		for name, bk := range map[string]flows.Pullback{"DirectVJP": back, "InverseVJP": iback} {
			dp := make(flows.Params, len(p))
			for k := range dp {
				dp[k] = 0.25
			}
			bk(dz, dl, dp, nil)
			for k := 2 * dim; k < 4*dim; k++ {
				if dp[k] != 0.25 {
					t.Errorf("train=%v %s: state gradient dp[%d] moved by %v", cfg.Train, name, k, dp[k]-0.25)
				}
			}
			for k := 0; k < 2*dim; k++ {
				if dp[k] == 0.25 {
					t.Errorf("train=%v %s: trainable dp[%d] got no gradient", cfg.Train, name, k)
				}
			}
		}
	}
}

// TestBatchNormUpdateState checks the running averages against the
// momentum formula computed by hand over three steps, that UpdateState
// returns the training map of the batch and leaves the trainable
// parameters and the batch alone, and that the evaluation map then uses
// the running averages, not the batch's statistics.
func TestBatchNormUpdateState(t *testing.T) {
	const dim, mom, eps = 2, 0.3, 1e-5
	cfg := flows.BatchNormConfig{Momentum: mom, Eps: eps, Train: true}
	p, train, _ := flows.BatchNorm(cfg)(flows.NewKey(1), dim, 0)
	cfg.Train = false
	_, eval, _ := flows.BatchNorm(cfg)(flows.NewKey(1), dim, 0)
	copy(p, []float64{0.2, -0.1, 0.5, 1})
	wantMean, wantVar := []float64{0, 0}, []float64{1, 1}
	var x *mat.Dense
	for step := range 3 {
		x = bnBatch(uint64(50+step), 4+step, dim)
		x0 := mat.DenseCopyOf(x)
		want, _ := train.Direct(p, x, nil)
		got := train.UpdateState(p, x, nil)
		if !mat.Equal(got, want) {
			t.Errorf("step %d: UpdateState returned a batch other than the training map's", step)
		}
		if !mat.Equal(x, x0) {
			t.Errorf("step %d: UpdateState modified its batch", step)
		}
		m, v := bnColumnStats(x)
		for j := 0; j < dim; j++ {
			wantMean[j] = (1-mom)*wantMean[j] + mom*m[j]
			wantVar[j] = (1-mom)*wantVar[j] + mom*v[j]
		}
		// Two-pass statistics in a different order: ulps.
		for j := 0; j < dim; j++ {
			if math.Abs(p[2*dim+j]-wantMean[j]) > 1e-14*math.Max(1, math.Abs(wantMean[j])) ||
				math.Abs(p[3*dim+j]-wantVar[j]) > 1e-14*math.Max(1, wantVar[j]) {
				t.Errorf("step %d column %d: running (%v, %v), want (%v, %v)", step, j, p[2*dim+j], p[3*dim+j], wantMean[j], wantVar[j])
			}
		}
		if !slices.Equal(p[:2*dim], []float64{0.2, -0.1, 0.5, 1}) {
			t.Errorf("step %d: UpdateState changed the trainable parameters to %v", step, p[:2*dim])
		}
	}
	// Evaluation uses the running averages.
	z, ld := eval.Direct(p, x, nil)
	wantLD := 0.0
	for j := 0; j < dim; j++ {
		wantLD += p[j] - 0.5*math.Log(wantVar[j]+eps)
	}
	for i := range ld {
		if math.Abs(ld[i]-wantLD) > 1e-13 {
			t.Errorf("eval logDet[%d] = %v, want %v", i, ld[i], wantLD)
		}
		for j := 0; j < dim; j++ {
			w := (x.At(i, j)-wantMean[j])/math.Sqrt(wantVar[j]+eps)*math.Exp(p[j]) + p[dim+j]
			if math.Abs(z.At(i, j)-w) > 1e-12*math.Max(1, math.Abs(w)) {
				t.Errorf("eval z[%d,%d] = %v, want %v", i, j, z.At(i, j), w)
			}
		}
	}
	zt, _ := train.Direct(p, x, nil)
	if mat.EqualApprox(z, zt, 1e-3) {
		t.Error("the evaluation map agrees with the training map: it is not using the running averages")
	}
	// The inverse in either mode undoes the evaluation map.
	for name, b := range map[string]flows.Bijection{"train": train, "eval": eval} {
		back, ild := b.Inverse(p, z, nil)
		if !mat.EqualApprox(back, x, 1e-12) {
			t.Errorf("%s Inverse does not undo the evaluation map", name)
		}
		for i := range ild {
			if math.Abs(ild[i]+ld[i]) > 1e-13 {
				t.Errorf("%s inverse logDet[%d] = %v, want %v", name, i, ild[i], -ld[i])
			}
		}
	}
}

// TestBatchNormMomentumOne checks that with momentum 1 the running
// averages become the batch's statistics, so the evaluation map of that
// batch is its training map.
func TestBatchNormMomentumOne(t *testing.T) {
	const dim = 3
	cfg := flows.BatchNormConfig{Momentum: 1, Eps: 1e-5, Train: true}
	p, train, _ := flows.BatchNorm(cfg)(flows.NewKey(1), dim, 0)
	cfg.Train = false
	_, eval, _ := flows.BatchNorm(cfg)(flows.NewKey(1), dim, 0)
	copy(p, []float64{0.1, 0.2, 0.3, -1, 0, 1})
	x := bnBatch(60, 5, dim)
	zt := train.UpdateState(p, x, nil)
	ze, lde := eval.Direct(p, x, nil)
	_, ldt := train.Direct(p, x, nil)
	if !mat.EqualApprox(zt, ze, 1e-13) || !floatsClose(ldt, lde, 1e-13) {
		t.Error("with momentum 1 the evaluation map after UpdateState differs from the training map")
	}
	// And then the training map's round trip holds on this batch.
	back, _ := train.Inverse(p, zt, nil)
	if !mat.EqualApprox(back, x, 1e-12) {
		t.Error("Inverse(Direct(x)) ≠ x with the running statistics equal to x's")
	}
}

func floatsClose(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol {
			return false
		}
	}
	return true
}

// TestBatchNormInverseBeforeDirect checks that Inverse works on a fresh
// parameter vector (running statistics 0 and 1) in both modes: it is the
// map z ↦ z·√(1 + ε).
func TestBatchNormInverseBeforeDirect(t *testing.T) {
	z := mat.NewDense(1, 2, []float64{1, -2})
	for _, cfg := range []flows.BatchNormConfig{bnTrainCfg, bnEvalCfg} {
		p, b, _ := flows.BatchNorm(cfg)(flows.NewKey(1), 2, 0)
		x, ld := b.Inverse(p, z, nil)
		s := math.Sqrt(1 + cfg.Eps)
		if math.Abs(x.At(0, 0)-s) > 1e-15 || math.Abs(x.At(0, 1)+2*s) > 1e-15 || math.Abs(ld[0]-math.Log(1+cfg.Eps)) > 1e-15 {
			t.Errorf("train=%v: Inverse at init = %v (log-det %v)", cfg.Train, mat.Formatted(x), ld[0])
		}
	}
}

// TestBatchNormConcurrentTrain runs the training map's passes from many
// goroutines on one parameter vector and batch (run with -race): the batch
// statistics live in each call, not in the layer.
func TestBatchNormConcurrentTrain(t *testing.T) {
	const n, dim = 16, 4
	p, b, _ := flows.BatchNorm(bnTrainCfg)(flows.NewKey(1), dim, 0)
	for k := range 2 * dim {
		p[k] = 0.1 * float64(k-dim)
	}
	dz := bnBatch(71, n, dim)
	dl := make([]float64, n)
	for i := range dl {
		dl[i] = float64(i%3) - 1
	}
	run := func(x *mat.Dense) (*mat.Dense, []float64, *mat.Dense, flows.Params) {
		z, ld := b.Direct(p, x, nil)
		_, _, back := b.DirectVJP(p, x, nil)
		dp := make(flows.Params, len(p))
		return z, ld, back(dz, dl, dp, nil), dp
	}
	var wg sync.WaitGroup
	errs := make([]string, 16)
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each goroutine has its own batch, so their statistics differ.
			x := bnBatch(uint64(100+w%4), n, dim)
			z0, ld0, dx0, dp0 := run(x)
			for range 20 {
				z, ld, dx, dp := run(x)
				if !mat.Equal(z, z0) || !slices.Equal(ld, ld0) || !mat.Equal(dx, dx0) || !slices.Equal(dp, dp0) {
					errs[w] = "results changed between calls"
				}
			}
			ze, lde := b.Direct(p, bnBatch(uint64(100+w%4), n, dim), nil)
			if !mat.Equal(ze, z0) || !slices.Equal(lde, ld0) {
				errs[w] = "results differ from another goroutine's on the same batch"
			}
		}()
	}
	wg.Wait()
	for w, e := range errs {
		if e != "" {
			t.Errorf("goroutine %d: %s", w, e)
		}
	}
}

// TestBatchNormFlowTraining runs the loop a user writes: a Flow whose
// Serial stack has two BatchNorms, trained by maximum likelihood with Adam
// and flows.UpdateState after each step, then evaluated with the model
// built in evaluation mode on the same parameter vector. It checks that
// Serial and Flow reach both layers' state, that Adam never moves the state
// (zero gradient), and that the evaluation density is that of the data.
func TestBatchNormFlowTraining(t *testing.T) {
	const dim, steps, batch = 2, 300, 64
	mu, sd := []float64{5, -2}, []float64{3, 0.5}
	model := func(train bool) flows.DistInitFunc {
		bn := flows.BatchNorm(flows.BatchNormConfig{Momentum: 0.05, Eps: 1e-5, Train: train})
		return flows.Flow(flows.Serial(bn, flows.Reverse(), bn), flows.Normal())
	}
	p, train, err := model(true)(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, eval, err := model(false)(flows.NewKey(1), dim, 0)
	if err != nil {
		t.Fatal(err)
	}
	if train.UpdateState == nil || eval.UpdateState != nil {
		t.Fatal("UpdateState should exist for the training model only")
	}
	if len(p) != 2*4*dim {
		t.Fatalf("len(p) = %d, want %d", len(p), 8*dim)
	}
	rng := flows.NewKey(2).Rand()
	draw := func(n int) *mat.Dense {
		x := mat.NewDense(n, dim, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < dim; j++ {
				x.Set(i, j, mu[j]+sd[j]*rng.NormFloat64())
			}
		}
		return x
	}
	opt := optim.NewAdam(len(p))
	opt.LR = 1e-2
	grad := make(flows.Params, len(p))
	state := func(p flows.Params) []float64 {
		return slices.Concat(p[2*dim:4*dim], p[6*dim:8*dim])
	}
	for step := range steps {
		x := draw(batch)
		if _, err := optim.NLL(train, p, x, nil, grad); err != nil {
			t.Fatal(err)
		}
		before := state(p)
		opt.Step(p, grad)
		if !slices.Equal(state(p), before) {
			t.Fatalf("step %d: the optimiser moved the running statistics", step)
		}
		flows.UpdateState(train, p, x, nil)
	}
	// The first layer's running mean and variance track the data.
	for j := 0; j < dim; j++ {
		m, v := p[2*dim+j], p[3*dim+j]
		// An exponential average over ~1/0.05 = 20 batches of 64: the
		// mean's sd is about sd_j/√(64·20)·√(0.05/(2−0.05))·√20 ≈ 0.03·sd_j;
		// 0.2·sd_j and 25% of the variance leave a wide margin.
		if math.Abs(m-mu[j]) > 0.2*sd[j] || math.Abs(v/(sd[j]*sd[j])-1) > 0.25 {
			t.Errorf("column %d: running (mean %v, variance %v), want about (%v, %v)", j, m, v, mu[j], sd[j]*sd[j])
		}
	}
	// The second layer sees the first one's output (reversed), which has
	// mean about beta and variance about exp(2·logGamma).
	for j := 0; j < dim; j++ {
		k := dim - 1 - j // Reverse
		m, v := p[4*dim+2*dim+j], p[4*dim+3*dim+j]
		if math.Abs(m-p[dim+k]) > 0.2 || math.Abs(v/math.Exp(2*p[k])-1) > 0.25 {
			t.Errorf("second layer column %d: running (mean %v, variance %v), want about (%v, %v)", j, m, v, p[dim+k], math.Exp(2*p[k]))
		}
	}
	// Held-out NLL under the evaluation model is close to the entropy of
	// the data distribution, Σ_j ½·log(2πe·sd_j²) (the best possible).
	test := draw(4000)
	nll, err := optim.NLLValue(eval, p, test, nil)
	if err != nil {
		t.Fatal(err)
	}
	entropy := 0.0
	for _, s := range sd {
		entropy += 0.5 * math.Log(2*math.Pi*math.E*s*s)
	}
	// The sampling sd of a 4000-row mean NLL is √(dim/2/4000) ≈ 0.016;
	// the running statistics' error adds O(0.01); 0.1 is a wide margin.
	if math.Abs(nll-entropy) > 0.1 {
		t.Errorf("held-out NLL %v under the evaluation model, entropy %v", nll, entropy)
	}
	// The training model's density on the same rows is batch-dependent; the
	// evaluation model's is per row: a single row gives the same value.
	one := test.Slice(0, 1, 0, dim).(*mat.Dense)
	if a, b := eval.LogPDF(p, one, nil)[0], eval.LogPDF(p, test, nil)[0]; math.Abs(a-b) > 1e-12 {
		t.Errorf("evaluation log density of a row depends on the batch: %v vs %v", a, b)
	}
}
