package optim

// Fit: shuffled minibatches from a key, a validation split, early stopping
// with the best parameters restored, schedules, clipping and a progress
// callback.
//
// The data. A NaN or Inf anywhere in x (or c) is an error wrapping
// ErrNonFinite that names its row and column, returned before any step. The
// rows are split once, by a random permutation: the last
// round(ValFraction·n) rows of the permutation (at least one, unless
// ValFraction is negative) are held out for validation (FitResult.ValRows)
// and the others are the training rows; their contexts go with them.
//
// Epochs and steps. Each epoch shuffles the training rows anew and walks
// through them in minibatches of BatchSize consecutive rows of that order; a
// last, partial minibatch is dropped (its rows are seen in other epochs'
// orders), so every step sees BatchSize rows and an epoch takes
// ⌊training rows / BatchSize⌋ steps. The rows are copied into one batch
// matrix reused by every step. A step is
//
//	loss, err := NLL(d, p, batch, cbatch, grad)
//	penalty := Penalty(p, batch, cbatch, grad) // when FitConfig.Penalty is set
//	ClipGlobalNorm(grad, ClipNorm)
//	adam.StepLR(p, grad, Schedule(step, totalSteps))
//	flows.UpdateState(d, p, batch, cbatch) // BatchNorm's running statistics, if any
//
// with an Adam from NewAdam, its default moments and ε. After each epoch,
// Fit evaluates the validation NLL (with d.LogPDF, in chunks of at most 4096
// rows, averaged with weights proportional to the chunks' sizes) and calls
// Progress.
//
// Early stopping. After each epoch Fit scores the validation rows: the mean
// NLL of the rows after leaving out the ValTrim fraction (default a tenth)
// with the lowest log densities. A few validation rows unlike the training
// rows (outliers, a rare kind of row) can dominate the plain mean: as the
// model sharpens, their density falls while every other row's rises, and
// the plain mean then stops a fit early that the held-out data as a whole
// would have it continue (on breast cancer a MAF stopped at epoch 9 by the
// plain mean reached −16.7 nats on the test rows, −35 by epoch 50 as the
// trimmed mean had it). Fit keeps a copy of the parameters of the epoch
// with the lowest score so far. When Patience consecutive epochs bring no
// lower score, the fit stops (FitResult.Stopped). Whether it stops early or
// runs all its epochs, Fit copies the best epoch's parameters back into p
// before it returns. Without validation rows there is no early stopping
// and p keeps the parameters of the last epoch.
//
// Divergence. A step whose loss, penalty or gradient is not finite, an epoch whose
// median minibatch loss jumps (by more than 10 nats per row and half its
// size; the median, since a few rows far in the tails can lift the mean of
// a healthy epoch by tens of nats, as on the 8gaussians toy density), and
// validation log densities that are NaN or +Inf, are the signs of a fit
// blowing up. Fit then recovers: it restores the parameters of the start
// of the epoch (the last ones known good), clears Adam's moments, halves
// the learning rate for the rest of the fit, records the recovery
// (FitResult.Recoveries) and goes on. After maxRecoveries of them the fit
// ends with an error wrapping ErrDiverged that names the epoch and step
// (counting from 1; the step over the whole fit), p restored to the best
// parameters so far: those of the best epoch completed (the last one
// without validation rows), or the initial parameters.
//
// Determinism. The key alone decides the split and the shuffles: the same
// key, d, p, x, c and configuration give the same parameters, bit for bit,
// on every GOMAXPROCS. Fit runs nothing concurrently of its own.

import (
	"fmt"
	"math"
	"slices"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// Defaults of FitConfig, used for fields left at zero.
const (
	defaultEpochs = 100
	// plateauEpochs bounds a fit that early stopping ends (Epochs left at
	// zero, with validation rows, Patience and no Schedule).
	plateauEpochs      = 1000
	defaultLR          = 1e-3
	defaultClipNorm    = 5
	defaultValFraction = 0.1
	defaultPatience    = 10

	// The default batch is a tenth of the training rows, from
	// minDefaultBatch to maxDefaultBatch: about ten steps an epoch for a
	// small table, and full-sized batches for a large one.
	minDefaultBatch = 16
	maxDefaultBatch = 256

	// valChunk is the most validation rows evaluated in one LogPDF call.
	valChunk = 4096

	// defaultValTrim is the default of FitConfig.ValTrim.
	defaultValTrim = 0.1

	// maxRecoveries is how many times Fit recovers from a blow-up before
	// it gives up; the learning rate is then 2⁻⁸ of the schedule's.
	maxRecoveries = 8

	// An epoch's median minibatch loss that exceeds the previous epoch's
	// by more than explodeAbs nats per row and by more than explodeRel of
	// its size is a blow-up (see the file comment).
	explodeAbs = 10
	// augmentTag is folded into Fit's key for FitConfig.Augment's keys.
	augmentTag = 0x61756720 // "aug "
	explodeRel = 0.5
)

// FitConfig configures Fit. The zero value is a usable configuration: every
// field left at zero takes the default given in its comment, in the manner of
// FlowJAX's fit_to_data. For ClipNorm, ValFraction and Patience a negative
// value turns the feature off.
type FitConfig struct {
	// Epochs is the most passes over the training rows. Early stopping
	// may end the fit sooner. The default follows the data: with early
	// stopping on (validation rows and Patience) and no Schedule, the fit
	// runs until the validation score plateaus, for at most 1000 epochs;
	// otherwise (no validation, no early stopping, or a Schedule, which
	// needs the fit's length) it is 100. It must not be negative.
	Epochs int

	// BatchSize is the number of rows per step (default: a tenth of the
	// training rows, from 16 to 256; see DefaultBatchSize). It is capped at
	// the number of training rows. It must not be negative.
	BatchSize int

	// LR is the constant learning rate used when Schedule is nil
	// (default 1e-3). It must be finite and not negative, and must be left
	// at zero when Schedule is set.
	LR float64

	// Schedule, when not nil, gives the learning rate of each step, called
	// as Schedule(step, totalSteps) with step counting from 0 over the whole
	// fit and totalSteps = Epochs × steps per epoch (the length of the fit
	// if it is not stopped early). For example optim.Cosine(1e-3, 0), or
	// optim.WarmupCosine(1e-3, 1e-5, 100). Nil means Constant(LR).
	Schedule Schedule

	// ClipNorm is the bound on the global Euclidean norm of each step's
	// gradient (default 5, as in FlowJAX). A negative value or +Inf turns
	// clipping off; NaN is an error.
	ClipNorm float64

	// ValFraction is the fraction of the rows of x held out for validation
	// and early stopping (default 0.1): round(ValFraction·n) rows, at least
	// one. It must be below 1. A negative value holds out no rows: then
	// there is no early stopping and Fit keeps the last parameters.
	ValFraction float64

	// ValTrim is the fraction of the validation rows, those with the
	// lowest log densities, that the early-stopping score leaves out
	// (default 0.1: ⌊0.1·rows⌋ of them; see the file comment). It must be
	// below 0.5; a negative value leaves none out, so that the score is
	// the plain mean NLL.
	ValTrim float64

	// Patience is the number of consecutive epochs without a new lowest
	// validation score after which the fit stops (default 10). A negative
	// value turns early stopping off; the parameters of the best epoch are
	// still the ones kept.
	Patience int

	// Augment, when not nil, perturbs the rows the fit sees, in place:
	// Fit calls it on every minibatch (a copy of the rows) with a key of
	// its own for each step, and once on the validation rows with a fixed
	// key, so that the validation score of every epoch is of the same
	// rows. It must change only the values it is given, deterministically
	// from the key. The ready-made model's Fit (package model) sets it to
	// its dequantisation noise for a model with dequantised columns.
	Augment func(key flows.Key, x *mat.Dense)

	// Penalty, when not nil, is a regulariser added to every step's loss
	// (see Penalty): Fit minimises NLL + Penalty on each minibatch, while
	// the training and validation NLL it reports, and early stopping,
	// leave the penalty out.
	Penalty Penalty

	// Progress, when not nil, is called after every epoch, once the epoch's
	// validation NLL is known and before the stopping decision. While it
	// runs, p holds the parameters at the end of that epoch; it must not
	// change them.
	Progress func(Progress)
}

// Progress reports the state of a Fit after an epoch, to FitConfig.Progress.
type Progress struct {
	// Epoch is the epoch just completed, counting from 1, of at most
	// Epochs (FitConfig.Epochs; early stopping may end the fit sooner).
	Epoch, Epochs int
	// Step is the number of optimiser steps taken so far, over all epochs.
	Step int
	// Steps is the number of steps a fit of FitConfig.Epochs epochs takes.
	Steps int
	// LR is the learning rate of the epoch's last step.
	LR float64
	// TrainNLL is the mean of the epoch's minibatch losses.
	TrainNLL float64
	// TrainPenalty is the mean of the epoch's minibatch penalties
	// (FitConfig.Penalty), or 0 without one.
	TrainPenalty float64
	// ValNLL is the mean NLL of the validation rows at the end of the
	// epoch, or NaN when there are none; ValScore is the early-stopping
	// score, their mean NLL after trimming (see FitConfig.ValTrim).
	ValNLL, ValScore float64
	// Elapsed is the wall-clock time since Fit was called.
	Elapsed time.Duration
	// Best reports that the parameters at the end of this epoch are now
	// the ones Fit will keep: the validation score is the lowest so far
	// (strictly), or, without validation rows, always.
	Best bool
	// Recoveries is how many times the fit has recovered from a blow-up so
	// far (see FitResult.Recoveries).
	Recoveries int
}

// Recovery records one recovery of a fit from a blow-up: Fit restored the
// parameters of the epoch's start and halved the learning rate.
type Recovery struct {
	// Epoch and Step (counting from 1, the step over the whole fit) say
	// where it happened.
	Epoch, Step int
	// Reason says what blew up.
	Reason string
	// LRScale is the factor the schedule's rates are multiplied by from
	// then on.
	LRScale float64
}

// FitResult summarises a Fit. After an error it describes the epochs that
// completed before it.
type FitResult struct {
	// Epochs is the number of epochs completed.
	Epochs int
	// Steps is the number of optimiser steps taken.
	Steps int
	// BestEpoch is the epoch (counting from 1) whose final parameters p
	// holds when Fit returns, or 0 when p holds the initial parameters
	// (after an error in the first epoch). Without validation rows it is
	// the last epoch completed.
	BestEpoch int
	// BestValNLL is the validation NLL of BestEpoch's parameters, exactly
	// as NLLValue computes it on the validation rows taken in the order of
	// ValRows (in chunks of at most 4096 rows, when there are more), and
	// BestValScore their early-stopping score. Both are NaN without
	// validation rows, or when BestEpoch is 0.
	BestValNLL, BestValScore float64
	// TrainNLL holds the mean minibatch loss of each epoch: TrainNLL[i] is
	// epoch i+1's.
	TrainNLL []float64
	// ValNLL and ValScore hold the validation NLL and score at the end of
	// each epoch, or are nil without validation rows.
	ValNLL, ValScore []float64
	// Recoveries lists the blow-ups the fit recovered from, in order.
	Recoveries []Recovery
	// Stopped reports that the fit ended early because Patience ran out.
	Stopped bool
	// ValRows lists the rows of x held out for validation, in the order in
	// which they were evaluated; nil when there are none. The other rows
	// were the training rows.
	ValRows []int
}

// Fit trains the distribution d with parameters p on the rows of x, given
// their contexts c (one row per row of x; nil for an unconditional d), by
// minimising the mean negative log-likelihood with Adam, in the spirit of
// FlowJAX's fit_to_data, and updates p in place: shuffled minibatches from
// key, a validation split for early stopping, the best epoch's parameters
// kept (the details are in fit.go's file comment). It returns a summary of
// the fit, and an error for a bad configuration, for bad data (wrapping
// ErrNonFinite or ErrTooFewRows), or for a fit that diverged (wrapping
// ErrDiverged, with p restored to the best parameters so far). The same
// key, data and configuration give the same parameters, bit for bit, on
// every GOMAXPROCS.
//
// Fit does not run the data-dependent initialisation of d (ActNorm's). Run
// it once before the first Fit, with a representative batch (package
// model's New does, before its Model.Fit calls Fit):
//
//	p, d, err := flows.Flow(bijection, flows.Normal())(flows.NewKey(0), dim, 0)
//	if err != nil { ... }
//	flows.InitFromData(d, p, x, nil)
//	res, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{})
//
// Misuse panics with an "optim:" message: a nil or empty x, a c whose rows
// differ from x's, or a d without LogPDFVJP (or without LogPDF when rows
// are held out for validation). Fit cannot check that len(p) matches d; d's
// own functions panic when it does not.
func Fit(key flows.Key, d flows.Distribution, p flows.Params, x, c *mat.Dense, cfg FitConfig) (FitResult, error) {
	r, err := newFitRun(key, d, p, x, c, cfg)
	if err != nil {
		return FitResult{BestValNLL: math.NaN(), BestValScore: math.NaN()}, err
	}
	for epoch := 1; epoch <= r.fc.Epochs; epoch++ {
		e := epochStats{epoch: epoch, valNLL: math.NaN(), valScore: math.NaN()}
		if err := r.train(&e); err != nil {
			return r.res, err
		}
		if err := r.validate(&e); err != nil {
			return r.res, err
		}
		r.record(&e)
		r.progress(&e)
		if r.patienceRunOut() {
			r.res.Stopped = epoch < r.fc.Epochs
			break
		}
	}
	copy(p, r.best)
	return r.res, nil
}

// median returns the median of v (NaN for none), reordering v.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	h := len(v) / 2
	if len(v)%2 == 1 {
		return v[h]
	}
	return (v[h-1] + v[h]) / 2
}

// ValidationRows returns how many of n rows Fit holds out for validation at
// the given ValFraction (0 for the default): round(ValFraction·n), at least
// one, or none for a negative fraction.
func ValidationRows(n int, valFraction float64) int {
	switch {
	case valFraction == 0:
		valFraction = defaultValFraction
	case valFraction < 0:
		return 0
	}
	return max(1, int(math.Round(valFraction*float64(n))))
}

// DefaultBatchSize returns Fit's default batch for nTrain training rows: a
// tenth of them, from 16 to 256 (Fit caps it at nTrain).
func DefaultBatchSize(nTrain int) int {
	return min(maxDefaultBatch, max(minDefaultBatch, nTrain/10))
}

// gatherRows returns the rows of m listed in rows as a new matrix of w
// columns, or nil when m is nil.
func gatherRows(m *mat.Dense, rows []int, w int) *mat.Dense {
	if m == nil {
		return nil
	}
	out := mat.NewDense(len(rows), w, nil)
	for i, r := range rows {
		copy(out.RawRowView(i), m.RawRowView(r))
	}
	return out
}

// resolve returns cfg with its defaults filled in and the schedule to use, or
// an error naming the first field out of range.
func (cfg FitConfig) resolve() (FitConfig, Schedule, error) {
	c := cfg
	switch {
	case c.Epochs < 0:
		return c, nil, fmt.Errorf("optim: Fit: Epochs is %d, want ≥ 0", c.Epochs)
	case c.Epochs == 0 && c.Schedule == nil && c.ValFraction >= 0 && c.Patience >= 0:
		// Early stopping ends the fit when the validation score plateaus:
		// the data, not a count, decides how long it runs.
		c.Epochs = plateauEpochs
	case c.Epochs == 0:
		c.Epochs = defaultEpochs
	}
	if c.BatchSize < 0 {
		return c, nil, fmt.Errorf("optim: Fit: BatchSize is %d, want ≥ 0", c.BatchSize)
	}
	sched, err := resolveRate("Fit", &c.LR, c.Schedule, &c.ClipNorm, defaultClipNorm)
	if err != nil {
		return c, nil, err
	}
	switch {
	case math.IsNaN(c.ValFraction) || c.ValFraction >= 1:
		return c, nil, fmt.Errorf("optim: Fit: ValFraction is %v, want < 1 (negative for no validation)", c.ValFraction)
	case c.ValFraction == 0:
		c.ValFraction = defaultValFraction
	}
	if c.Patience == 0 {
		c.Patience = defaultPatience
	}
	switch {
	case math.IsNaN(c.ValTrim) || c.ValTrim >= 0.5:
		return c, nil, fmt.Errorf("optim: Fit: ValTrim is %v, want < 0.5 (negative for none)", c.ValTrim)
	case c.ValTrim == 0:
		c.ValTrim = defaultValTrim
	}
	return c, sched, nil
}

// validation returns the mean NLL of the rows of valX under d, and their
// early-stopping score: the mean NLL after leaving out the ⌊trim·n⌋ rows of
// lowest log density (none when trim is negative). The rows are evaluated
// in chunks of at most valChunk, and the plain mean weighs the chunks by
// their sizes, so that a single chunk gives exactly NLLValue's result.
// rows maps the rows of valX to those of x, for the error naming a row
// whose log density is NaN or +Inf (a model broken, not a row unlikely:
// −Inf is allowed, and makes the plain mean +Inf); the error has no
// "optim:" prefix, which the caller adds.
func validation(d flows.Distribution, p flows.Params, valX, valC *mat.Dense, rows []int, trim float64) (nll, score float64, err error) {
	n, dim := valX.Dims()
	all := make([]float64, 0, n)
	for lo := 0; lo < n; lo += valChunk {
		hi := min(lo+valChunk, n)
		var c *mat.Dense
		if valC != nil {
			_, cdim := valC.Dims()
			c = valC.Slice(lo, hi, 0, cdim).(*mat.Dense)
		}
		logp := d.LogPDF(p, valX.Slice(lo, hi, 0, dim).(*mat.Dense), c)
		if len(logp) != hi-lo {
			panic("optim: Fit: LogPDF returned a log density count different from the batch's row count")
		}
		for i, v := range logp {
			if math.IsNaN(v) || math.IsInf(v, 1) {
				return math.NaN(), math.NaN(), fmt.Errorf("the validation NLL is not finite: the log density of row %d of x is %v", rows[lo+i], v)
			}
		}
		chunk := math.Inf(1)
		if !slices.Contains(logp, math.Inf(-1)) {
			chunk, err = meanNLL(logp)
			if err != nil {
				return math.NaN(), math.NaN(), fmt.Errorf("the validation NLL is not finite: %w", err)
			}
		}
		nll += chunk * (float64(hi-lo) / float64(n))
		all = append(all, logp...)
	}
	k := 0
	if trim > 0 {
		k = int(trim * float64(n))
	}
	if k == 0 {
		return nll, nll, nil
	}
	slices.Sort(all)
	kept := all[k:]
	if kept[0] == math.Inf(-1) {
		return nll, math.Inf(1), nil
	}
	score, err = meanNLL(kept)
	if err != nil {
		return math.NaN(), math.NaN(), fmt.Errorf("the validation NLL is not finite: %w", err)
	}
	return nll, score, nil
}

// resolveRate fills in the learning-rate and clipping settings shared by Fit
// and FitVI: the schedule to use (Constant(*lr) when sched is nil, *lr
// defaulting to defaultLR), and *clip (0 → defaultClip, negative → no
// clipping). It returns an error naming who when a setting is out of range.
func resolveRate(who string, lr *float64, sched Schedule, clip *float64, defaultClip float64) (Schedule, error) {
	if math.IsNaN(*lr) || math.IsInf(*lr, 0) || *lr < 0 {
		return nil, fmt.Errorf("optim: %s: LR is %v, want a finite rate ≥ 0", who, *lr)
	}
	switch {
	case sched != nil && *lr != 0:
		return nil, fmt.Errorf("optim: %s: both LR (%v) and Schedule are set; the schedule gives the rates, so leave LR at 0", who, *lr)
	case sched == nil:
		if *lr == 0 {
			*lr = defaultLR
		}
		sched = Constant(*lr)
	}
	switch {
	case math.IsNaN(*clip):
		return nil, fmt.Errorf("optim: %s: ClipNorm is NaN", who)
	case *clip == 0:
		*clip = defaultClip
	case *clip < 0:
		*clip = math.Inf(1) // no clipping
	}
	return sched, nil
}
