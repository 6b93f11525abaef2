package optim

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// fitTag is folded into a model's seed to make the key of FitModel's
// validation split and shuffles, apart from the keys that drew the initial
// parameters.
const fitTag = 0x666974 // "fit"

// FitModel fits the ready-made model m to the rows of x, given their
// contexts c for a conditional model (nil otherwise), in one call: Fit on
// m.Dist and m.Params with the key NewKey(m.Config.Seed).Fold("fit"), so
// that the library and the command line (flows fit) give the same model
// for the same data, configuration and seed. cfg's zero fields take Fit's
// defaults, which suit the data's size (a batch of a tenth of the training
// rows, from 16 to 256). m.Params ends at the best epoch's parameters.
//
// For a model with dequantised columns, FitModel adds fresh uniform noise
// to them on every minibatch (cfg.Augment becomes m.Dequantize, after
// cfg's own Augment when it has one). It first checks the data with
// m.CheckData, and returns its error (naming the row and column) for a
// value outside its bounds or a dequantised value that is not an integer.
func FitModel(m *flows.Model, x, c *mat.Dense, cfg FitConfig) (FitResult, error) {
	// Fit's own check first, for its typed error (ErrNonFinite).
	for _, err := range []error{firstNonFinite(x, "x"), firstNonFinite(c, "c"), m.CheckData(x, c)} {
		if err != nil {
			return FitResult{BestValNLL: math.NaN(), BestValScore: math.NaN()}, fmt.Errorf("optim: FitModel: %w", err)
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
	return Fit(flows.NewKey(m.Config.Seed).Fold(fitTag), m.Dist, m.Params, x, c, cfg)
}

// dequantizeTag is folded into FitConfig.Augment's key for FitModel's
// dequantisation noise, apart from the key the caller's Augment gets.
const dequantizeTag = 0x6465712e // "deq."
