package model

// A model's training summary, which a model file keeps in its header.

import (
	"encoding/json"
	"fmt"
	"math"
)

// Training summarises the fit that gave a Model its parameters:
// Model.Fit records it in Model.Training, Save writes it into the
// file's header and Load reads it back, so a served model can say how well
// it fitted. Its fields are what the fit computed, deterministically (no
// clock time), so the same data and seed give the same file.
type Training struct {
	// Rows and ValidationRows are the rows the fit trained and validated
	// on.
	Rows, ValidationRows int
	// Epochs is the number of epochs run, BestEpoch the one whose
	// parameters the model holds (see optim.FitResult).
	Epochs, BestEpoch int
	// TrainNLL is BestEpoch's mean minibatch loss and ValNLL its
	// validation NLL, in nats per row in the data's units; ValNLL is NaN
	// without validation rows.
	TrainNLL, ValNLL float64
	// GaussianValNLL is the validation NLL of a full-covariance Gaussian
	// of the training rows (prep.GaussianNLL), the baseline a flow should beat;
	// NaN when it was not computed (a conditional model, no validation
	// rows).
	GaussianValNLL float64
	// Stopped reports that early stopping ended the fit; Recoveries counts
	// its recoveries from blow-ups.
	Stopped    bool
	Recoveries int
}

// trainingJSON is Training in a model file: NaN, which JSON cannot hold,
// is left out.
type trainingJSON struct {
	Rows           int      `json:"rows"`
	ValidationRows int      `json:"validationRows"`
	Epochs         int      `json:"epochs"`
	BestEpoch      int      `json:"bestEpoch"`
	TrainNLL       *float64 `json:"trainNLL,omitempty"`
	ValNLL         *float64 `json:"valNLL,omitempty"`
	GaussianValNLL *float64 `json:"gaussianValNLL,omitempty"`
	Stopped        bool     `json:"stopped,omitempty"`
	Recoveries     int      `json:"recoveries,omitempty"`
}

// MarshalJSON writes t with the JSON names of a model file's "training"
// object, leaving out NaN values.
func (t Training) MarshalJSON() ([]byte, error) {
	finite := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(trainingJSON{Rows: t.Rows, ValidationRows: t.ValidationRows, Epochs: t.Epochs, BestEpoch: t.BestEpoch,
		TrainNLL: finite(t.TrainNLL), ValNLL: finite(t.ValNLL), GaussianValNLL: finite(t.GaussianValNLL),
		Stopped: t.Stopped, Recoveries: t.Recoveries})
}

// UnmarshalJSON reads what MarshalJSON writes; a value left out is NaN.
func (t *Training) UnmarshalJSON(data []byte) error {
	var j trainingJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	value := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	*t = Training{Rows: j.Rows, ValidationRows: j.ValidationRows, Epochs: j.Epochs, BestEpoch: j.BestEpoch,
		TrainNLL: value(j.TrainNLL), ValNLL: value(j.ValNLL), GaussianValNLL: value(j.GaussianValNLL),
		Stopped: j.Stopped, Recoveries: j.Recoveries}
	return t.check()
}

// check returns an error for counts that cannot be a fit's.
func (t Training) check() error {
	switch {
	case t.Rows < 0 || t.ValidationRows < 0 || t.Epochs < 0 || t.Recoveries < 0:
		return fmt.Errorf("training: negative count in %+v", t)
	case t.BestEpoch < 0 || t.BestEpoch > t.Epochs:
		return fmt.Errorf("training: best epoch %d of %d", t.BestEpoch, t.Epochs)
	}
	return nil
}
