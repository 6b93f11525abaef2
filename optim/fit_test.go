package optim_test

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distmv"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// banana draws n rows of a 2-D "banana": x₀ ~ N(0, 1) and, given x₀,
// x₁ ~ N(x₀² − 1, 0.5²). Its NLL (its entropy) is log 2πe + log 0.5 ≈ 2.14
// nats, while the best Gaussian's is about 3.24: an affine coupling that
// conditions x₁ on x₀ can model it exactly, a Gaussian cannot.
func banana(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		a := rng.NormFloat64()
		x.Set(i, 0, a)
		x.Set(i, 1, a*a-1+0.5*rng.NormFloat64())
	}
	return x
}

// gaussianNLL returns the mean NLL on test of the maximum-likelihood Gaussian
// of train: its sample mean and (biased) sample covariance.
func gaussianNLL(train, test *mat.Dense) float64 {
	n, dim := train.Dims()
	mu := make([]float64, dim)
	for j := range dim {
		mu[j] = stat.Mean(mat.Col(nil, j, train), nil)
	}
	var cov mat.SymDense
	stat.CovarianceMatrix(&cov, train, nil)
	cov.ScaleSym(float64(n-1)/float64(n), &cov) // unbiased → maximum likelihood
	g, ok := distmv.NewNormal(mu, &cov, nil)
	if !ok {
		panic("sample covariance is not positive definite")
	}
	m, _ := test.Dims()
	var nll float64
	for i := range m {
		nll -= g.LogProb(test.RawRowView(i))
	}
	return nll / float64(m)
}

// realNVPFlow is a RealNVP on a standard normal prior: couplings whose
// conditioners are MLPs with two hidden layers of width hidden, the halves
// swapped between couplings, after an ActNorm when actNorm is set.
func realNVPFlow(couplings, hidden int, act flows.Activation, actNorm bool) flows.DistInitFunc {
	var layers []flows.InitFunc
	if actNorm {
		layers = append(layers, flows.ActNorm())
	}
	for i := range couplings {
		if i > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.AffineCoupling(flows.MLP([]int{hidden, hidden}, act)))
	}
	return flows.Flow(flows.Serial(layers...), flows.Normal())
}

// rowsOf returns the rows of x listed in rows, in that order, as a new matrix.
func rowsOf(x *mat.Dense, rows []int) *mat.Dense {
	_, dim := x.Dims()
	out := mat.NewDense(len(rows), dim, nil)
	for i, r := range rows {
		copy(out.RawRowView(i), x.RawRowView(r))
	}
	return out
}

// sameBits reports whether a and b hold the same float64s, bit for bit.
func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(u, v float64) bool { return math.Float64bits(u) == math.Float64bits(v) })
}

// fitPanics fails the test unless f panics with a string starting "optim: ".
func fitPanics(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if s, ok := r.(string); !ok || !strings.HasPrefix(s, "optim: ") {
			t.Errorf("%s: panic value %#v, want a string starting \"optim: \"", what, r)
		}
	}()
	f()
}

// TestFitBeatsGaussian fits a RealNVP to 2,000 rows of the banana and checks
// that its NLL on 2,000 separate test rows is well below that of the best
// Gaussian, and that the validation NLL went down.
func TestFitBeatsGaussian(t *testing.T) {
	keys := flows.NewKey(42).Split(4)
	train, test := banana(keys[0], 2000), banana(keys[1], 2000)
	p, d, err := realNVPFlow(3, 32, flows.Tanh, true)(keys[2], 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	flows.InitFromData(d, p, train, nil)
	res, err := optim.Fit(keys[3], d, p, train, nil, optim.FitConfig{
		Epochs:    40,
		BatchSize: 128,
		Schedule:  optim.Cosine(3e-3, 1e-4),
	})
	if err != nil {
		t.Fatal(err)
	}
	flowNLL, err := optim.NLLValue(d, p, test, nil)
	if err != nil {
		t.Fatal(err)
	}
	gaussNLL := gaussianNLL(train, test)
	t.Logf("test NLL: flow %.4f, Gaussian %.4f; %d epochs, best %d (validation NLL %.4f → %.4f)",
		flowNLL, gaussNLL, res.Epochs, res.BestEpoch, res.ValNLL[0], res.BestValNLL)
	if !(flowNLL < gaussNLL-0.5) {
		t.Errorf("test NLL of the flow %.4f is not 0.5 nats below the Gaussian's %.4f", flowNLL, gaussNLL)
	}
	if len(res.ValRows) != 200 || len(res.TrainNLL) != res.Epochs || len(res.ValNLL) != res.Epochs {
		t.Errorf("%d validation rows, %d train and %d validation NLLs for %d epochs; want 200 rows and one NLL each per epoch",
			len(res.ValRows), len(res.TrainNLL), len(res.ValNLL), res.Epochs)
	}
	if !(res.BestValNLL < res.ValNLL[0]) {
		t.Errorf("best validation NLL %.4f is not below the first epoch's %.4f", res.BestValNLL, res.ValNLL[0])
	}
}

// TestFitEarlyStoppingRestoresBest overfits 30 training rows, in batches of
// 10, with a large learning rate, so that the validation NLL turns up and Patience runs out,
// and checks that p then holds the best epoch's parameters.
func TestFitEarlyStoppingRestoresBest(t *testing.T) {
	keys := flows.NewKey(7).Split(3)
	x := banana(keys[0], 40)
	p, d, err := realNVPFlow(2, 64, flows.ReLU, false)(keys[1], 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var bestParams, lastParams flows.Params
	res, err := optim.Fit(keys[2], d, p, x, nil, optim.FitConfig{
		Epochs:      1000,
		BatchSize:   10,
		LR:          1e-2,
		ValFraction: 0.25,
		Patience:    2,
		Progress: func(pr optim.Progress) {
			lastParams = slices.Clone(p)
			if pr.Best {
				bestParams = slices.Clone(p)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped after %d epochs, best %d: validation NLL %v", res.Epochs, res.BestEpoch, res.ValNLL)
	if !res.Stopped || res.Epochs >= 1000 {
		t.Fatalf("Stopped = %v after %d epochs, want an early stop", res.Stopped, res.Epochs)
	}
	if res.BestEpoch != res.Epochs-2 {
		t.Errorf("BestEpoch = %d after %d epochs, want 2 fewer (Patience 2)", res.BestEpoch, res.Epochs)
	}
	if len(res.ValRows) != 10 || len(res.ValNLL) != res.Epochs {
		t.Fatalf("%d validation rows and %d validation NLLs, want 10 and %d", len(res.ValRows), len(res.ValNLL), res.Epochs)
	}
	if got := slices.Min(res.ValNLL); got != res.BestValNLL || res.ValNLL[res.BestEpoch-1] != got {
		t.Errorf("BestValNLL = %v, ValNLL[BestEpoch−1] = %v, want both the minimum %v",
			res.BestValNLL, res.ValNLL[res.BestEpoch-1], got)
	}
	val, err := optim.NLLValue(d, p, rowsOf(x, res.ValRows), nil)
	if err != nil {
		t.Fatal(err)
	}
	if val != res.BestValNLL {
		t.Errorf("validation NLL of the returned parameters = %.17g, want BestValNLL %.17g exactly", val, res.BestValNLL)
	}
	if !sameBits(p, bestParams) {
		t.Error("p is not the best epoch's parameters")
	}
	if sameBits(p, lastParams) {
		t.Error("p is still the last epoch's parameters")
	}
	// The held-out rows are exactly the rows not trained on: all distinct.
	if s := slices.Compact(slices.Sorted(slices.Values(res.ValRows))); len(s) != 10 || s[0] < 0 || s[9] >= 40 {
		t.Errorf("ValRows = %v, want 10 distinct rows of 40", res.ValRows)
	}
}

// TestFitDeterministicAcrossGOMAXPROCS fits a RealNVP whose matrix products
// are large enough for gonum to compute them in parallel blocks (a batch of
// 256 rows times 64 hidden units is 4×1 blocks of 64, gonum's threshold),
// under GOMAXPROCS 1, 2 and 4, and checks that the parameters and the
// losses agree bit for bit.
func TestFitDeterministicAcrossGOMAXPROCS(t *testing.T) {
	keys := flows.NewKey(3).Split(3)
	x := banana(keys[0], 1100)
	p0, d, err := realNVPFlow(3, 64, flows.ReLU, false)(keys[1], 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	cfg := optim.FitConfig{Epochs: 2, BatchSize: 256, Schedule: optim.Cosine(1e-3, 0)}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	var first flows.Params
	var firstRes optim.FitResult
	for i, procs := range []int{1, 2, 4} {
		runtime.GOMAXPROCS(procs)
		p := slices.Clone(p0)
		res, err := optim.Fit(keys[2], d, p, x, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.Steps != 6 {
			t.Fatalf("%d steps, want 2 epochs of ⌊990/256⌋ = 3", res.Steps)
		}
		if i == 0 {
			first, firstRes = p, res
			if sameBits(p, p0) {
				t.Fatal("the parameters did not move")
			}
			continue
		}
		if !sameBits(p, first) {
			t.Errorf("GOMAXPROCS %d: parameters differ from GOMAXPROCS 1's", procs)
		}
		if !sameBits(res.TrainNLL, firstRes.TrainNLL) || !sameBits(res.ValNLL, firstRes.ValNLL) ||
			!slices.Equal(res.ValRows, firstRes.ValRows) {
			t.Errorf("GOMAXPROCS %d: result %+v differs from GOMAXPROCS 1's %+v", procs, res, firstRes)
		}
	}
}

// untouchableDist is a Distribution whose every function fails the test.
func untouchableDist(t *testing.T) flows.Distribution {
	return flows.Distribution{
		LogPDF: func(flows.Params, *mat.Dense, *mat.Dense) []float64 {
			t.Error("LogPDF called")
			return nil
		},
		LogPDFVJP: func(flows.Params, *mat.Dense, *mat.Dense) ([]float64, flows.DistPullback) {
			t.Error("LogPDFVJP called")
			return nil, nil
		},
	}
}

// TestFitRejectsNonFiniteData checks that a NaN or an Inf in x is an error
// naming its row and column, before the model, the optimiser or Progress are
// called.
func TestFitRejectsNonFiniteData(t *testing.T) {
	for _, tc := range []struct {
		row, col int
		val      float64
		want     string
	}{
		{37, 1, math.NaN(), "optim: Fit: row 37, column 1 of x is NaN"},
		{0, 0, math.Inf(1), "optim: Fit: row 0, column 0 of x is +Inf"},
		{99, 1, math.Inf(-1), "optim: Fit: row 99, column 1 of x is -Inf"},
	} {
		x := banana(flows.NewKey(1), 100)
		x.Set(tc.row, tc.col, tc.val)
		x.Set(99, 1, math.NaN()) // a later bad entry must not be the one named
		x.Set(tc.row, tc.col, tc.val)
		p := flows.Params{1, 2, 3}
		res, err := optim.Fit(flows.NewKey(2), untouchableDist(t), p, x, nil, optim.FitConfig{
			Progress: func(optim.Progress) { t.Error("Progress called") },
		})
		if err == nil || err.Error() != tc.want {
			t.Errorf("error %v, want %q", err, tc.want)
		}
		if res.Steps != 0 || res.Epochs != 0 || !slices.Equal(p, flows.Params{1, 2, 3}) {
			t.Errorf("after bad data: %d steps, %d epochs, p = %v", res.Steps, res.Epochs, p)
		}
	}
}

// failing wraps d so that its LogPDFVJP calls number failFrom to failTo
// (counting from 1) return a log density of −Inf for the batch's row 2, its
// gradAt-th call has a pullback that writes a NaN into the gradient, its
// valAt-th LogPDF call returns NaN for row 3, and from its jumpAt-th call
// on its losses are 1000 nats worse; zero disables each. calls counts the
// LogPDFVJP calls and updates the UpdateState calls.
type failing struct {
	d                        flows.Distribution
	failFrom, failTo, gradAt int
	valAt, jumpAt, spikeAt   int
	calls, valCalls, updates int
}

func (f *failing) dist() flows.Distribution {
	return flows.Distribution{
		LogPDF: func(p flows.Params, x, c *mat.Dense) []float64 {
			f.valCalls++
			lp := f.d.LogPDF(p, x, nil)
			if f.valCalls == f.valAt {
				lp[3] = math.NaN()
			}
			return lp
		},
		LogPDFVJP: func(p flows.Params, x, _ *mat.Dense) ([]float64, flows.DistPullback) {
			f.calls++
			lp, back := f.d.LogPDFVJP(p, x, nil)
			if f.calls >= f.failFrom && f.calls <= f.failTo {
				lp[2] = math.Inf(-1)
			}
			if f.jumpAt > 0 && f.calls >= f.jumpAt {
				for i := range lp {
					lp[i] -= 1000
				}
			}
			if f.calls == f.spikeAt {
				lp[0] -= 1e5 // one row far in the tails: a huge but honest loss
			}
			if f.calls == f.gradAt {
				return lp, func(dLogp []float64, dp flows.Params, _ *mat.Dense) *mat.Dense {
					dx := back(dLogp, dp, nil)
					dp[0] = math.NaN()
					return dx
				}
			}
			return lp, back
		},
		UpdateState: func(flows.Params, *mat.Dense, *mat.Dense) { f.updates++ },
	}
}

// TestFitRecovers checks that a blow-up (a non-finite training loss or
// gradient, a NaN validation log density, a training NLL that jumps) is
// recovered from: the parameters of the epoch's start are restored, the
// rate is halved and the recovery recorded, and the fit goes on; and that
// one that keeps failing ends with ErrDiverged naming the epoch and step,
// p restored to the best epoch's parameters.
func TestFitRecovers(t *testing.T) {
	rng := flows.NewKey(5).Rand()
	x := mat.NewDense(100, 2, nil)
	for i := range 100 {
		x.Set(i, 0, 3+rng.NormFloat64())
		x.Set(i, 1, -1+2*rng.NormFloat64())
	}
	// 80 training rows in batches of 20: 4 steps per epoch.
	for _, tc := range []struct {
		name string
		f    failing
		want []optim.Recovery
	}{
		{"loss in epoch 2", failing{failFrom: 6, failTo: 6}, []optim.Recovery{{Epoch: 2, Step: 6, LRScale: 0.5}}},
		{"gradient in epoch 1", failing{gradAt: 3}, []optim.Recovery{{Epoch: 1, Step: 3, LRScale: 0.5}}},
		{"validation after epoch 2", failing{valAt: 2}, []optim.Recovery{{Epoch: 2, Step: 8, LRScale: 0.5}}},
		{"loss jumps in epoch 3", failing{jumpAt: 9}, []optim.Recovery{{Epoch: 3, Step: 12, LRScale: 0.5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, base, err := flows.DiagNormal()(flows.NewKey(0), 2, 0)
			if err != nil {
				t.Fatal(err)
			}
			f := tc.f
			f.d = base
			if f.jumpAt > 0 {
				f.jumpAt, f.failTo = 9, 0 // from step 9 on, until the recovery: see below
			}
			d := f.dist()
			if tc.f.jumpAt > 0 {
				// The jump lasts one epoch: after the recovery the loss is
				// the base's again.
				inner := d.LogPDFVJP
				d.LogPDFVJP = func(p flows.Params, x, c *mat.Dense) ([]float64, flows.DistPullback) {
					if f.calls >= 12 {
						f.jumpAt = 0
					}
					return inner(p, x, c)
				}
			}
			res, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{
				BatchSize: 20, LR: 0.05, ValFraction: 0.2, Epochs: 6, Patience: -1,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Recoveries) != len(tc.want) {
				t.Fatalf("recoveries %+v, want %+v", res.Recoveries, tc.want)
			}
			for i, r := range res.Recoveries {
				w := tc.want[i]
				if r.Epoch != w.Epoch || r.Step != w.Step || r.LRScale != w.LRScale || r.Reason == "" {
					t.Errorf("recovery %d: %+v, want %+v", i, r, w)
				}
			}
			if res.Epochs != 6 {
				t.Errorf("%d epochs, want all 6", res.Epochs)
			}
		})
	}

	// One row far in the tails lifts epoch 2's mean loss by 1250 nats but
	// not its median: no recovery.
	pSpike, baseSpike, _ := flows.DiagNormal()(flows.NewKey(0), 2, 0)
	fs := &failing{d: baseSpike, spikeAt: 6}
	res0, err := optim.Fit(flows.NewKey(1), fs.dist(), pSpike, x, nil, optim.FitConfig{BatchSize: 20, LR: 0.05, ValFraction: 0.2, Epochs: 4})
	if err != nil || len(res0.Recoveries) != 0 || !(res0.TrainNLL[1] > res0.TrainNLL[0]+1000) {
		t.Errorf("a spike of one row: err %v, recoveries %+v, training NLL %v", err, res0.Recoveries, res0.TrainNLL)
	}

	// A loss that fails at every step from step 6 on: after maxRecoveries
	// the fit gives up, with p the best (first) epoch's parameters.
	p0, base, _ := flows.DiagNormal()(flows.NewKey(0), 2, 0)
	f := &failing{d: base, failFrom: 6, failTo: math.MaxInt}
	p := slices.Clone(p0)
	var afterFirst []float64
	res, err := optim.Fit(flows.NewKey(1), f.dist(), p, x, nil, optim.FitConfig{
		BatchSize: 20, LR: 0.05, ValFraction: 0.2,
		Progress: func(pr optim.Progress) {
			if pr.Epoch == 1 {
				afterFirst = slices.Clone(p)
			}
		},
	})
	// Recoveries at steps 6, 7, 8 (epoch 2) and 9 to 12 (epoch 3); the
	// eighth blow-up, at step 13, ends the fit.
	if !errors.Is(err, optim.ErrDiverged) || !strings.Contains(err.Error(), "epoch 4, step 13: the training loss is not finite") ||
		!strings.Contains(err.Error(), "gave up after 7 recoveries") {
		t.Fatalf("err = %v, want ErrDiverged at epoch 4, step 13", err)
	}
	if len(res.Recoveries) != 8 || res.BestEpoch != 1 || !sameBits(p, afterFirst) {
		t.Errorf("%d recoveries, best epoch %d, p %v; want 8, 1 and the first epoch's %v", len(res.Recoveries), res.BestEpoch, p, afterFirst)
	}
}

// TestFitTrimmedValidation: the early-stopping score leaves out the worst
// tenth of the validation rows, so one validation row far from the rest
// does not decide which epoch is kept; with ValTrim −1 the score is the
// plain mean.
func TestFitTrimmedValidation(t *testing.T) {
	rng := flows.NewKey(8).Rand()
	x := mat.NewDense(200, 1, nil)
	for i := range 200 {
		x.Set(i, 0, rng.NormFloat64())
	}
	p, d, _ := flows.DiagNormal()(flows.NewKey(0), 1, 0)
	res, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{Epochs: 3})
	if err != nil {
		t.Fatal(err)
	}
	val := rowsOf(x, res.ValRows)
	lp := d.LogPDF(p, val, nil)
	slices.Sort(lp)
	want := 0.0
	for _, v := range lp[2:] { // ⌊0.1·20⌋ = 2 rows left out
		want -= v / 18
	}
	if math.Abs(res.BestValScore-want) > 1e-12 || res.BestValNLL == res.BestValScore {
		t.Errorf("score %v, plain %v; want the trimmed mean %v", res.BestValScore, res.BestValNLL, want)
	}
	p2, _, _ := flows.DiagNormal()(flows.NewKey(0), 1, 0)
	res, err = optim.Fit(flows.NewKey(1), d, p2, x, nil, optim.FitConfig{Epochs: 3, ValTrim: -1})
	if err != nil || res.BestValScore != res.BestValNLL {
		t.Errorf("ValTrim −1: score %v, plain %v (%v)", res.BestValScore, res.BestValNLL, err)
	}
}

// TestFitScheduleAndProgress checks that the schedule is called once per
// step with the step index and the planned total, that the cosine's rates
// reach Adam (decaying), that Progress comes once per epoch with growing Step
// and the last rate, and that UpdateState sees every step's batch: one
// reused matrix of BatchSize training rows, no row twice in an epoch.
func TestFitScheduleAndProgress(t *testing.T) {
	rng := flows.NewKey(9).Rand()
	const n = 100
	x := mat.NewDense(n, 1, nil)
	rowOf := map[float64]int{}
	for i := range n {
		v := 2 + rng.NormFloat64()
		x.Set(i, 0, v)
		rowOf[v] = i
	}
	p, d, err := flows.DiagNormal()(flows.NewKey(0), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	cosine := optim.Cosine(0.05, 1e-3)
	var steps, totals []int
	var rates []float64
	var progress []optim.Progress
	var batch *mat.Dense
	seen := map[int]bool{}
	updates := 0
	d.UpdateState = func(_ flows.Params, b, _ *mat.Dense) {
		if batch == nil {
			batch = b
		} else if b != batch {
			t.Errorf("update %d: a new batch matrix", updates)
		}
		if r, c := b.Dims(); r != 16 || c != 1 {
			t.Errorf("batch is %d×%d, want 16×1", r, c)
		}
		if updates%5 == 0 {
			clear(seen)
		}
		for i := range 16 {
			row, ok := rowOf[b.At(i, 0)]
			if !ok || seen[row] {
				t.Errorf("update %d: batch row %d is not a new row of x (row %d)", updates, i, row)
			}
			seen[row] = true
		}
		updates++
	}
	res, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{
		Epochs:      5,
		BatchSize:   16,
		ValFraction: 0.2, // 80 training rows: 5 steps per epoch
		Patience:    -1,
		Schedule: func(step, total int) float64 {
			steps, totals = append(steps, step), append(totals, total)
			lr := cosine(step, total)
			rates = append(rates, lr)
			return lr
		},
		Progress: func(pr optim.Progress) { progress = append(progress, pr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 5 || res.Steps != 25 || res.Stopped || updates != 25 {
		t.Errorf("Epochs %d, Steps %d, Stopped %v, %d updates; want 5, 25, false, 25", res.Epochs, res.Steps, res.Stopped, updates)
	}
	for i := range 25 {
		if steps[i] != i || totals[i] != 25 {
			t.Errorf("schedule call %d got (%d, %d), want (%d, 25)", i, steps[i], totals[i], i)
		}
		if i > 0 && !(rates[i] < rates[i-1]) {
			t.Errorf("rate %d = %v, not below rate %d = %v", i, rates[i], i-1, rates[i-1])
		}
	}
	if rates[0] != 0.05 || rates[24] > 0.0013 {
		t.Errorf("rates run from %v to %v, want 0.05 down to near 1e-3", rates[0], rates[24])
	}
	if len(progress) != 5 {
		t.Fatalf("Progress called %d times, want 5", len(progress))
	}
	for i, pr := range progress {
		if pr.Epoch != i+1 || pr.Step != 5*(i+1) || pr.Steps != 25 || pr.LR != rates[5*i+4] {
			t.Errorf("Progress %d = %+v, want Epoch %d, Step %d, Steps 25, LR %v", i, pr, i+1, 5*(i+1), rates[5*i+4])
		}
		if pr.TrainNLL != res.TrainNLL[i] || pr.ValNLL != res.ValNLL[i] || pr.Elapsed < 0 {
			t.Errorf("Progress %d = %+v does not match the result (%v, %v)", i, pr, res.TrainNLL[i], res.ValNLL[i])
		}
		if i > 0 && pr.Elapsed < progress[i-1].Elapsed {
			t.Errorf("Elapsed went back from %v to %v", progress[i-1].Elapsed, pr.Elapsed)
		}
	}
}

// TestFitWithoutValidation checks a negative ValFraction: no rows held out,
// no early stopping, and p keeps the last epoch's parameters.
func TestFitWithoutValidation(t *testing.T) {
	x := banana(flows.NewKey(1), 50)
	p, d, err := flows.DiagNormal()(flows.NewKey(0), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var last flows.Params
	var bests int
	res, err := optim.Fit(flows.NewKey(2), d, p, x, nil, optim.FitConfig{
		Epochs:      7,
		BatchSize:   1000, // capped at the 50 rows: one step per epoch
		LR:          0.1,
		ValFraction: -1,
		Progress: func(pr optim.Progress) {
			if !math.IsNaN(pr.ValNLL) {
				t.Errorf("epoch %d: ValNLL %v, want NaN", pr.Epoch, pr.ValNLL)
			}
			if pr.Best {
				bests++
			}
			last = slices.Clone(p)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Epochs != 7 || res.Steps != 7 || res.BestEpoch != 7 || res.Stopped || bests != 7 {
		t.Errorf("Epochs %d, Steps %d, BestEpoch %d, Stopped %v, %d best; want 7, 7, 7, false, 7",
			res.Epochs, res.Steps, res.BestEpoch, res.Stopped, bests)
	}
	if res.ValRows != nil || res.ValNLL != nil || !math.IsNaN(res.BestValNLL) {
		t.Errorf("ValRows %v, ValNLL %v, BestValNLL %v; want nil, nil, NaN", res.ValRows, res.ValNLL, res.BestValNLL)
	}
	if !sameBits(p, last) {
		t.Error("p is not the last epoch's parameters")
	}
}

// TestFitZeroConfig checks that the zero FitConfig works: until the
// validation score plateaus (1000 epochs at most) with batches of a tenth
// of the training rows (180 of 1800), a tenth of the rows held out, early
// stopping after 10 epochs without progress; and that without validation
// the budget is 100 epochs.
func TestFitZeroConfig(t *testing.T) {
	x := banana(flows.NewKey(1), 2000)
	p, d, err := flows.DiagNormal()(flows.NewKey(0), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	var progress []optim.Progress
	res, err := optim.Fit(flows.NewKey(2), d, p, x, nil, optim.FitConfig{
		Progress: func(pr optim.Progress) { progress = append(progress, pr) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d epochs, best %d, validation NLL %.4f", res.Epochs, res.BestEpoch, res.BestValNLL)
	if len(res.ValRows) != 200 || res.Epochs < 1 || res.Epochs > 1000 || res.Steps != 10*res.Epochs {
		t.Errorf("%d validation rows, %d epochs, %d steps; want 200, 1 to 1000, 10 a epoch", len(res.ValRows), res.Epochs, res.Steps)
	}
	if pr := progress[0]; pr.Epochs != 1000 || pr.Steps != 10000 || pr.LR != 1e-3 {
		t.Errorf("first Progress %+v, want Epochs 1000, Steps 10000 and LR 1e-3", pr)
	}
	if !res.Stopped || res.BestEpoch != res.Epochs-10 {
		t.Errorf("Stopped %v, Epochs %d, BestEpoch %d: want a plateau ended by Patience 10", res.Stopped, res.Epochs, res.BestEpoch)
	}
	progress = nil
	if _, err := optim.Fit(flows.NewKey(2), d, p, x, nil, optim.FitConfig{ValFraction: -1, Epochs: 0,
		Progress: func(pr optim.Progress) { progress = append(progress, pr) }}); err != nil {
		t.Fatal(err)
	}
	if len(progress) != 100 || progress[0].Epochs != 100 {
		t.Errorf("without validation: %d epochs, budget %d; want 100", len(progress), progress[0].Epochs)
	}
}

// TestFitConfigErrors checks that a configuration out of range, or data too
// small to split, is an error that leaves p unchanged, and that misuse
// panics.
func TestFitConfigErrors(t *testing.T) {
	x := banana(flows.NewKey(1), 10)
	_, d, err := flows.DiagNormal()(flows.NewKey(0), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  optim.FitConfig
		x    *mat.Dense
		want string
	}{
		{optim.FitConfig{Epochs: -1}, x, "Epochs is -1"},
		{optim.FitConfig{BatchSize: -3}, x, "BatchSize is -3"},
		{optim.FitConfig{LR: -1e-3}, x, "LR is -0.001"},
		{optim.FitConfig{LR: math.NaN()}, x, "LR is NaN"},
		{optim.FitConfig{LR: math.Inf(1)}, x, "LR is +Inf"},
		{optim.FitConfig{LR: 1e-3, Schedule: optim.Constant(1e-3)}, x, "both LR (0.001) and Schedule are set"},
		{optim.FitConfig{ClipNorm: math.NaN()}, x, "ClipNorm is NaN"},
		{optim.FitConfig{ValFraction: 1}, x, "ValFraction is 1"},
		{optim.FitConfig{ValFraction: math.NaN()}, x, "ValFraction is NaN"},
		{optim.FitConfig{}, mat.NewDense(1, 2, nil), "1 rows of data leave no training row after holding out 1"},
		{optim.FitConfig{ValFraction: 0.96}, x, "10 rows of data leave no training row after holding out 10"},
		{optim.FitConfig{Schedule: func(int, int) float64 { return math.NaN() }}, x, "epoch 1, step 1: the schedule gave learning rate NaN"},
	} {
		p := flows.Params{0.5, 0.5, 0.5, 0.5}
		_, err := optim.Fit(flows.NewKey(1), d, p, tc.x, nil, tc.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "optim: Fit: "+tc.want) {
			t.Errorf("%+v: error %v, want one starting %q", tc.cfg, err, "optim: Fit: "+tc.want)
		}
		if !slices.Equal(p, flows.Params{0.5, 0.5, 0.5, 0.5}) {
			t.Errorf("%+v: p changed to %v", tc.cfg, p)
		}
	}
	// A negative ValFraction, ClipNorm and Patience are "off", not errors.
	p := make(flows.Params, 4)
	if _, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{Epochs: 2, ValFraction: -0.5, ClipNorm: -1, Patience: -1}); err != nil {
		t.Errorf("negative ValFraction, ClipNorm and Patience: %v", err)
	}

	fitPanics(t, "nil x", func() { optim.Fit(flows.NewKey(1), d, p, nil, nil, optim.FitConfig{}) })
	fitPanics(t, "empty x", func() { optim.Fit(flows.NewKey(1), d, p, &mat.Dense{}, nil, optim.FitConfig{}) })
	fitPanics(t, "no LogPDFVJP", func() {
		optim.Fit(flows.NewKey(1), flows.Distribution{LogPDF: d.LogPDF}, p, x, nil, optim.FitConfig{})
	})
	fitPanics(t, "no LogPDF with validation", func() {
		optim.Fit(flows.NewKey(1), flows.Distribution{LogPDFVJP: d.LogPDFVJP}, p, x, nil, optim.FitConfig{})
	})
	// Without validation rows LogPDF is not needed.
	if _, err := optim.Fit(flows.NewKey(1), flows.Distribution{LogPDFVJP: d.LogPDFVJP}, p, x, nil, optim.FitConfig{Epochs: 1, ValFraction: -1}); err != nil {
		t.Errorf("no LogPDF, no validation: %v", err)
	}
}

// ExampleFit fits a RealNVP to a banana-shaped 2-D data set with a cosine
// learning-rate schedule and early stopping, and compares its NLL on fresh
// test rows with that of the best Gaussian (the sample mean and covariance).
func ExampleFit() {
	keys := flows.NewKey(0).Split(4)
	x, test := banana(keys[0], 2000), banana(keys[1], 1000)

	p, model, err := flows.Flow(flows.Serial(
		flows.ActNorm(),
		flows.AffineCoupling(flows.MLP([]int{32, 32}, flows.Tanh)),
		flows.Reverse(),
		flows.AffineCoupling(flows.MLP([]int{32, 32}, flows.Tanh)),
		flows.Reverse(),
		flows.AffineCoupling(flows.MLP([]int{32, 32}, flows.Tanh)),
	), flows.Normal())(keys[2], 2, 0)
	if err != nil {
		panic(err)
	}
	flows.InitFromData(model, p, x, nil) // once, before fitting: Fit does not

	res, err := optim.Fit(keys[3], model, p, x, nil, optim.FitConfig{
		Epochs:    30,
		BatchSize: 128,
		Schedule:  optim.Cosine(3e-3, 1e-4),
	})
	if err != nil {
		panic(err)
	}
	flowNLL, _ := optim.NLLValue(model, p, test, nil)
	fmt.Println("validation rows:", len(res.ValRows))
	fmt.Println("at most 30 epochs:", res.Epochs <= 30)
	fmt.Println("beats the Gaussian by half a nat:", flowNLL < gaussianNLL(x, test)-0.5)
	// Output:
	// validation rows: 200
	// at most 30 epochs: true
	// beats the Gaussian by half a nat: true
}

// TestDefaults checks the rules Fit and the command line share: a tenth of
// the rows held out (at least one), and a batch of a tenth of the training
// rows from 16 to 256.
func TestDefaults(t *testing.T) {
	for _, tc := range []struct{ n, val, batch int }{{400, 40, 36}, {100, 10, 16}, {100000, 10000, 256}, {3, 1, 16}} {
		val := optim.ValidationRows(tc.n, 0)
		if val != tc.val {
			t.Errorf("ValidationRows(%d, 0) = %d, want %d", tc.n, val, tc.val)
		}
		if b := optim.DefaultBatchSize(tc.n - val); b != tc.batch {
			t.Errorf("DefaultBatchSize(%d) = %d, want %d", tc.n-val, b, tc.batch)
		}
	}
	if v := optim.ValidationRows(10, -1); v != 0 {
		t.Errorf("ValidationRows with a negative fraction = %d, want 0", v)
	}
}

// TestFitAugment checks FitConfig.Augment: once on the validation rows,
// then on every minibatch with a key of its own, on copies (x is left as
// it was), deterministically; noise that moves the data moves the fit.
func TestFitAugment(t *testing.T) {
	keys := flows.NewKey(8).Split(3)
	x := banana(keys[0], 400)
	orig := mat.DenseCopyOf(x)
	p0, d, err := realNVPFlow(2, 16, flows.ReLU, false)(keys[1], 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	type call struct {
		key  [2]uint64
		rows int
	}
	run := func(augment bool) (flows.Params, optim.FitResult, []call) {
		var calls []call
		cfg := optim.FitConfig{Epochs: 2, BatchSize: 60}
		if augment {
			cfg.Augment = func(key flows.Key, b *mat.Dense) {
				hi, lo := key.Uint64s()
				r, _ := b.Dims()
				calls = append(calls, call{[2]uint64{hi, lo}, r})
				rng := key.Rand()
				for i := range r {
					b.Set(i, 0, b.At(i, 0)+rng.Float64())
				}
			}
		}
		p := slices.Clone(p0)
		res, err := optim.Fit(keys[2], d, p, x, nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return p, res, calls
	}
	plain, _, _ := run(false)
	p1, res1, calls1 := run(true)
	p2, res2, calls2 := run(true)
	if !mat.Equal(x, orig) {
		t.Fatal("Augment changed x")
	}
	if len(calls1) != 1+res1.Steps || calls1[0].rows != 40 {
		t.Fatalf("%d calls (first of %d rows) for %d steps, want the 40 validation rows and then one per step", len(calls1), calls1[0].rows, res1.Steps)
	}
	seen := map[[2]uint64]bool{}
	for _, c := range calls1 {
		if seen[c.key] {
			t.Fatalf("key %x given twice", c.key)
		}
		seen[c.key] = true
	}
	if !sameBits(p1, p2) || !slices.Equal(calls1, calls2) || !sameBits(res1.ValNLL, res2.ValNLL) {
		t.Error("two fits with the same Augment differ")
	}
	if sameBits(p1, plain) {
		t.Error("Augment did not change the fit")
	}
}
