package optim

// The steps of Fit (see fit.go's file comment for what each does): the
// split and the batches (newFitRun), an epoch's steps (train, each with
// its regulariser, penalise, in penalty.go), its
// validation and early-stopping score (validate), the best parameters kept
// (record), the progress report (progress) and the stopping rule
// (patienceRunOut), with the recovery from a blow-up (recoverFrom, fail)
// that train and validate share.

import (
	"fmt"
	"math"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// fitRun is the state of one Fit.
type fitRun struct {
	d     flows.Distribution
	p     flows.Params
	x, c  *mat.Dense
	fc    FitConfig
	sched Schedule
	start time.Time

	// The split and the batches.
	nVal, batchSize, perEpoch, total int
	trainRows                        []int
	valX, valC                       *mat.Dense
	epochKey, augKey                 flows.Key
	batch, cbatch                    *mat.Dense
	order                            []int

	// The optimiser, the parameters kept, early stopping and recovery.
	grad, best, start0 flows.Params // start0: the parameters at the epoch's start
	opt                *Adam
	bestVal            float64
	fruitless          int
	lrScale            float64
	lastTypical        float64   // the last healthy epoch's median minibatch loss
	losses             []float64 // the epoch's minibatch losses

	res FitResult
}

// epochStats is what one epoch measured.
type epochStats struct {
	epoch            int
	lr, trainNLL     float64
	penaltySum       float64 // the sum of the epoch's counted steps' penalties
	trainPenalty     float64 // their mean
	valNLL, valScore float64
	improved         bool
}

// newFitRun checks Fit's arguments (panicking for misuse), resolves cfg,
// checks the data, splits the rows and allocates the batches.
func newFitRun(key flows.Key, d flows.Distribution, p flows.Params, x, c *mat.Dense, cfg FitConfig) (*fitRun, error) {
	start := time.Now()
	n, dim, cdim := checkFitArgs(d, x, c)
	fc, sched, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	if err := FirstNonFinite(x, "x"); err != nil {
		return nil, fmt.Errorf("optim: Fit: %w", err)
	}
	if err := FirstNonFinite(c, "c"); err != nil {
		return nil, fmt.Errorf("optim: Fit: %w", err)
	}
	nVal := ValidationRows(n, fc.ValFraction)
	if nVal > 0 && d.LogPDF == nil {
		panic("optim: Fit: distribution has no LogPDF to evaluate the validation rows")
	}
	nTrain := n - nVal
	if nTrain < 1 {
		return nil, fmt.Errorf("optim: Fit: %d rows of data leave no training row after holding out %d for validation: %w", n, nVal, ErrTooFewRows)
	}
	batchSize := fc.BatchSize
	if batchSize == 0 {
		batchSize = DefaultBatchSize(nTrain)
	}
	batchSize = min(batchSize, nTrain)
	r := &fitRun{
		d: d, p: p, x: x, c: c, fc: fc, sched: sched, start: start,
		nVal: nVal, batchSize: batchSize, perEpoch: nTrain / batchSize,
		batch: mat.NewDense(batchSize, dim, nil), order: make([]int, nTrain),
		grad: make(flows.Params, len(p)), best: append(flows.Params(nil), p...), start0: append(flows.Params(nil), p...),
		opt: NewAdam(len(p)), bestVal: math.Inf(1), lrScale: 1, lastTypical: math.NaN(),
		res: FitResult{BestValNLL: math.NaN(), BestValScore: math.NaN()},
	}
	r.total = fc.Epochs * r.perEpoch
	r.losses = make([]float64, 0, r.perEpoch)
	if c != nil {
		r.cbatch = mat.NewDense(batchSize, cdim, nil)
	}
	r.split(key, n, dim, cdim)
	return r, nil
}

// checkFitArgs panics for Fit's misuse and returns the widths of x and c.
func checkFitArgs(d flows.Distribution, x, c *mat.Dense) (n, dim, cdim int) {
	if x == nil {
		panic("optim: Fit: nil data")
	}
	if x.IsEmpty() {
		panic("optim: Fit: empty data")
	}
	if d.LogPDFVJP == nil {
		panic("optim: Fit: distribution has no LogPDFVJP")
	}
	n, dim = x.Dims()
	if c != nil {
		var cn int
		cn, cdim = c.Dims()
		if cn != n {
			panic(fmt.Sprintf("optim: Fit: %d context rows for %d data rows", cn, n))
		}
	}
	return n, dim, cdim
}

// split draws the permutation of the n rows whose last nVal are the
// validation rows, gathers those (augmented once, with a fixed key), and
// makes the keys of the epochs' shuffles and the batches' augmentation.
func (r *fitRun) split(key flows.Key, n, dim, cdim int) {
	splitKey, epochKey := key.Split2()
	r.epochKey, r.augKey = epochKey, key.Fold(augmentTag) // augKey only used with Augment
	perm := splitKey.Rand().Perm(n)
	nTrain := n - r.nVal
	r.trainRows = perm[:nTrain:nTrain]
	if r.nVal > 0 {
		r.res.ValRows = perm[nTrain:]
		r.valX = gatherRows(r.x, r.res.ValRows, dim)
		r.valC = gatherRows(r.c, r.res.ValRows, cdim)
		if r.fc.Augment != nil {
			r.fc.Augment(r.augKey.Fold(0), r.valX)
		}
	}
}

// fail restores the best parameters and returns a divergence error.
func (r *fitRun) fail(epoch, step int, why string) error {
	copy(r.p, r.best)
	return fmt.Errorf("optim: Fit: epoch %d, step %d: %w", epoch, step,
		diverged("%s; gave up after %d recoveries (each restores the epoch's start and halves the learning rate)", why, len(r.res.Recoveries)-1))
}

// recoverFrom restores the epoch's start, clears Adam's moments and halves
// the rate; it returns fail's error when the fit should give up, else nil.
func (r *fitRun) recoverFrom(epoch, step int, why string) error {
	copy(r.p, r.start0)
	r.opt.Reset()
	r.lrScale /= 2
	r.res.Recoveries = append(r.res.Recoveries, Recovery{Epoch: epoch, Step: step, Reason: why, LRScale: r.lrScale})
	if len(r.res.Recoveries) < maxRecoveries {
		return nil
	}
	return r.fail(epoch, step, why)
}

// train runs an epoch's steps over a fresh shuffle of the training rows and
// sets e's learning rate and training NLL; a step or an epoch that blows
// up is recovered from.
func (r *fitRun) train(e *epochStats) error {
	copy(r.start0, r.p)
	copy(r.order, r.trainRows)
	rng := r.epochKey.Fold(uint64(e.epoch)).Rand()
	rng.Shuffle(len(r.order), func(i, j int) { r.order[i], r.order[j] = r.order[j], r.order[i] })
	var lossSum float64
	r.losses = r.losses[:0]
	for b := range r.perEpoch {
		loss, ok, err := r.step(e, r.order[b*r.batchSize:(b+1)*r.batchSize])
		if err != nil {
			return err
		}
		if ok {
			lossSum += loss
			r.losses = append(r.losses, loss)
		}
	}
	counted := len(r.losses)
	e.trainNLL = lossSum / float64(counted) // NaN when every step failed
	if r.fc.Penalty != nil {
		e.trainPenalty = e.penaltySum / float64(counted)
	}
	// A blow-up moves the typical minibatch, not just a few: the median is
	// blind to rare rows in the tails whose loss is huge (a sharp model's
	// honest verdict on them, not a divergence).
	typical := median(r.losses)
	last := r.lastTypical
	switch {
	case counted > 0 && !math.IsNaN(last) && typical > last+explodeAbs && typical > last+explodeRel*math.Abs(last):
		return r.recoverFrom(e.epoch, r.res.Steps, fmt.Sprintf("the median minibatch NLL jumped from %.4g to %.4g", last, typical))
	case counted > 0:
		r.lastTypical = typical
	}
	return nil
}

// step takes one optimiser step on the given training rows and returns its
// loss, ok false for a step that blew up and was recovered from, and an
// error when the fit must end.
func (r *fitRun) step(e *epochStats, rows []int) (loss float64, ok bool, err error) {
	for i, row := range rows {
		copy(r.batch.RawRowView(i), r.x.RawRowView(row))
		if r.c != nil {
			copy(r.cbatch.RawRowView(i), r.c.RawRowView(row))
		}
	}
	r.res.Steps++
	step := r.res.Steps
	if r.fc.Augment != nil {
		r.fc.Augment(r.augKey.Fold(uint64(step)), r.batch)
	}
	loss, err = NLL(r.d, r.p, r.batch, r.cbatch, r.grad)
	why, penalty := "", 0.0
	if err != nil {
		why = "the training loss is not finite: " + strings.TrimPrefix(err.Error(), "optim: ")
	} else {
		penalty, why = r.penalise()
	}
	if why == "" {
		if norm := ClipGlobalNorm(r.grad, r.fc.ClipNorm); math.IsNaN(norm) || math.IsInf(norm, 0) {
			why = fmt.Sprintf("the gradient is not finite (norm %v)", norm)
		}
	}
	if why != "" {
		return 0, false, r.recoverFrom(e.epoch, step, why)
	}
	lr := r.sched(step-1, r.total)
	if math.IsNaN(lr) || math.IsInf(lr, 0) || lr < 0 {
		copy(r.p, r.best)
		return 0, false, fmt.Errorf("optim: Fit: epoch %d, step %d: the schedule gave learning rate %v", e.epoch, step, lr)
	}
	e.lr = lr * r.lrScale
	r.opt.StepLR(r.p, r.grad, e.lr)
	flows.UpdateState(r.d, r.p, r.batch, r.cbatch)
	e.penaltySum += penalty
	return loss, true, nil
}

// validate scores the validation rows at the end of the epoch (a score
// that is not a number is a blow-up, recovered from once) and says whether
// the score is the best so far; without validation rows every epoch is.
func (r *fitRun) validate(e *epochStats) error {
	e.improved = true
	if r.nVal == 0 {
		return nil
	}
	var err error
	e.valNLL, e.valScore, err = validation(r.d, r.p, r.valX, r.valC, r.res.ValRows, r.fc.ValTrim)
	if err != nil {
		if err := r.recoverFrom(e.epoch, r.res.Steps, err.Error()); err != nil {
			return err
		}
		e.valNLL, e.valScore, err = validation(r.d, r.p, r.valX, r.valC, r.res.ValRows, r.fc.ValTrim)
		if err != nil { // the epoch's start itself scores badly
			return r.fail(e.epoch, r.res.Steps, err.Error())
		}
	}
	e.improved = e.valScore < r.bestVal
	return nil
}

// record adds the epoch to the result and keeps its parameters when they
// are the best so far.
func (r *fitRun) record(e *epochStats) {
	r.res.Epochs = e.epoch
	r.res.TrainNLL = append(r.res.TrainNLL, e.trainNLL)
	if r.nVal > 0 {
		r.res.ValNLL = append(r.res.ValNLL, e.valNLL)
		r.res.ValScore = append(r.res.ValScore, e.valScore)
	}
	if !e.improved {
		r.fruitless++
		return
	}
	copy(r.best, r.p)
	r.bestVal = e.valScore
	r.res.BestEpoch, r.res.BestValNLL, r.res.BestValScore = e.epoch, e.valNLL, e.valScore
	r.fruitless = 0
}

// progress calls FitConfig.Progress, if set, with the epoch's report.
func (r *fitRun) progress(e *epochStats) {
	if r.fc.Progress == nil {
		return
	}
	r.fc.Progress(Progress{
		Epoch:        e.epoch,
		Epochs:       r.fc.Epochs,
		Step:         r.res.Steps,
		Steps:        r.total,
		LR:           e.lr,
		TrainNLL:     e.trainNLL,
		TrainPenalty: e.trainPenalty,
		ValNLL:       e.valNLL,
		ValScore:     e.valScore,
		Elapsed:      time.Since(r.start),
		Best:         e.improved,
		Recoveries:   len(r.res.Recoveries),
	})
}

// patienceRunOut reports that Patience epochs in a row brought no better
// validation score (never without validation rows or with Patience < 0).
func (r *fitRun) patienceRunOut() bool {
	return r.nVal > 0 && r.fc.Patience >= 0 && r.fruitless >= r.fc.Patience
}
