package model

// Model.Fit: optim.Fit on a model's distribution and parameters, with the
// model's data checks, dequantisation noise and training summary.

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/prep"
)

// fitTag is folded into a model's seed to make the key of Fit's validation
// split and shuffles, apart from the keys that drew the initial parameters.
const fitTag = 0x666974 // "fit"

// Fit fits the model to the rows of x, given their contexts c for a
// conditional model (nil otherwise), in one call: optim.Fit on m.Dist and
// m.Params with the key NewKey(m.Config.Seed).Fold("fit"), so that the
// library and the command line (flows fit) give the same model for the same
// data, configuration and seed. cfg's zero fields take optim.Fit's
// defaults, which suit the data's size (a batch of a tenth of the training
// rows, from 16 to 256). m.Params ends at the best epoch's parameters.
//
// After a fit, Fit records its summary in m.Training (which Save keeps):
// the rows, the epochs, the best epoch's training and validation NLL, and
// the validation NLL of a full-covariance Gaussian of the training rows
// (prep.GaussianNLL; not for a conditional model).
//
// For a model with dequantised columns, Fit adds fresh uniform noise to them
// on every minibatch (cfg.Augment becomes m.Dequantize, after cfg's own
// Augment when it has one). It first checks the data with m.CheckData, and
// returns its error (naming the row and column) for a value outside its
// bounds or a dequantised value that is not an integer; a NaN or ±Inf is an
// error wrapping optim.ErrNonFinite, as from optim.Fit.
func (m *Model) Fit(x, c *mat.Dense, cfg optim.FitConfig) (optim.FitResult, error) {
	// optim.Fit's own check first, for its typed error (ErrNonFinite).
	for _, err := range []error{optim.FirstNonFinite(x, "x"), optim.FirstNonFinite(c, "c"), m.CheckData(x, c)} {
		if err != nil {
			return optim.FitResult{BestValNLL: math.NaN(), BestValScore: math.NaN()}, fmt.Errorf("flows: Model.Fit: %w", err)
		}
	}
	if len(m.Config.Dequantize) > 0 {
		own := cfg.Augment
		cfg.Augment = func(key flows.Key, x *mat.Dense) {
			if own != nil {
				own(key, x)
			}
			m.Dequantize(key.Fold(dequantizeTag), x)
		}
	}
	res, err := optim.Fit(flows.NewKey(m.Config.Seed).Fold(fitTag), m.Dist, m.Params, x, c, cfg)
	if err == nil {
		m.Training = summary(m, x, c, res)
	}
	return res, err
}

// summary returns the training summary of a fit of m to x (given c).
func summary(m *Model, x, c *mat.Dense, res optim.FitResult) *Training {
	n, _ := x.Dims()
	t := &Training{Rows: n - len(res.ValRows), ValidationRows: len(res.ValRows), Epochs: res.Epochs, BestEpoch: res.BestEpoch,
		TrainNLL: math.NaN(), ValNLL: res.BestValNLL, GaussianValNLL: math.NaN(), Stopped: res.Stopped, Recoveries: len(res.Recoveries)}
	if res.BestEpoch > 0 {
		t.TrainNLL = res.TrainNLL[res.BestEpoch-1]
	}
	if len(res.ValRows) > 0 && c == nil {
		// The baseline, on the same rows; where the flow saw them with
		// dequantisation noise, so does the Gaussian (other draws of it).
		train, val := splitRows(x, res.ValRows)
		key := flows.NewKey(m.Config.Seed).Fold(gaussianTag)
		m.Dequantize(key.Fold(1), train)
		m.Dequantize(key.Fold(2), val)
		t.GaussianValNLL = prep.GaussianNLL(train, val)
	}
	return t
}

// gaussianTag is folded into a model's seed for the noise of the Gaussian
// baseline's rows.
const gaussianTag = 0x6761757373 // "gauss"

// splitRows returns copies of the rows of x not in val, in order, and of
// those in val, in val's order.
func splitRows(x *mat.Dense, val []int) (train, held *mat.Dense) {
	n, d := x.Dims()
	isVal := make([]bool, n)
	held = mat.NewDense(len(val), d, nil)
	for k, r := range val {
		isVal[r] = true
		copy(held.RawRowView(k), x.RawRowView(r))
	}
	train = mat.NewDense(n-len(val), d, nil)
	k := 0
	for i := range n {
		if !isVal[i] {
			copy(train.RawRowView(k), x.RawRowView(i))
			k++
		}
	}
	return train, held
}

// dequantizeTag is folded into optim.FitConfig.Augment's key for Fit's
// dequantisation noise, apart from the key the caller's Augment gets.
const dequantizeTag = 0x6465712e // "deq."
