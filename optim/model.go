package optim

import (
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
func FitModel(m *flows.Model, x, c *mat.Dense, cfg FitConfig) (FitResult, error) {
	return Fit(flows.NewKey(m.Config.Seed).Fold(fitTag), m.Dist, m.Params, x, c, cfg)
}
