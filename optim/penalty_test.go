package optim_test

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// TestFitPenalty checks FitConfig.Penalty: it is called once per step,
// after the step's NLL and on the same rows; its gradient moves the
// parameters (a strong weight decay keeps them near zero); Progress
// reports the mean of the epoch's penalties, bit for bit; and a penalty
// that is not finite is a blow-up Fit recovers from.
func TestFitPenalty(t *testing.T) {
	x := banana(flows.NewKey(1), 400)
	fit := func(pen optim.Penalty, progress func(optim.Progress)) (flows.Params, optim.FitResult, [][]float64) {
		p, d, err := realNVPFlow(2, 8, flows.Tanh, false)(flows.NewKey(2), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		var seen [][]float64 // the first row of each NLL batch
		inner := d.LogPDFVJP
		d.LogPDFVJP = func(p flows.Params, x, c *mat.Dense) ([]float64, flows.DistPullback) {
			seen = append(seen, slices.Clone(x.RawRowView(0)))
			return inner(p, x, c)
		}
		res, err := optim.Fit(flows.NewKey(3), d, p, x, nil, optim.FitConfig{
			Epochs: 20, BatchSize: 60, LR: 0.02, ValFraction: -1, Penalty: pen, Progress: progress,
		})
		if err != nil && !strings.Contains(err.Error(), "penalty") {
			t.Fatal(err)
		}
		return p, res, seen
	}
	plain, _, _ := fit(nil, nil)

	const lambda = 10.0
	var rows [][]float64
	var values []float64
	calls := 0
	decay := func(p flows.Params, x, c *mat.Dense, grad flows.Params) float64 {
		calls++
		rows = append(rows, slices.Clone(x.RawRowView(0)))
		floats.AddScaled(grad, lambda, p)
		v := lambda / 2 * floats.Dot(p, p)
		values = append(values, v)
		return v
	}
	var reported []float64
	var epochMeans []float64
	done := 0
	decayed, res, seen := fit(decay, func(pr optim.Progress) {
		reported = append(reported, pr.TrainPenalty)
		var s float64
		for _, v := range values[done:] {
			s += v
		}
		epochMeans = append(epochMeans, s/float64(len(values)-done))
		done = len(values)
	})
	if calls != res.Steps || calls != 20*6 {
		t.Errorf("penalty called %d times in %d steps, want once per step (120)", calls, res.Steps)
	}
	if !slices.EqualFunc(rows, seen, func(a, b []float64) bool { return sameBits(a, b) }) {
		t.Errorf("the penalty saw other rows than the NLL")
	}
	if !sameBits(reported, epochMeans) {
		t.Errorf("Progress.TrainPenalty %v, want the epochs' mean penalties %v", reported, epochMeans)
	}
	if a, b := floats.Norm(decayed, 2), floats.Norm(plain, 2); !(a < b/2) {
		t.Errorf("weight decay λ = %v: ‖p‖ = %.3g, without it %.3g; want less than half", lambda, a, b)
	}

	// A penalty that is NaN at step 5 is recovered from.
	step := 0
	nan := func(p flows.Params, x, c *mat.Dense, grad flows.Params) float64 {
		step++
		if step == 5 {
			return math.NaN()
		}
		return 0
	}
	_, res, _ = fit(nan, nil)
	if len(res.Recoveries) != 1 || res.Recoveries[0].Step != 5 || !strings.Contains(res.Recoveries[0].Reason, "penalty is not finite") {
		t.Errorf("recoveries %+v, want one at step 5 naming the penalty", res.Recoveries)
	}
}
