package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// kinds are the ready-made architectures, in the order help lists them.
var kinds = []flows.Kind{flows.KindMAF, flows.KindRealNVP, flows.KindGlow, flows.KindNSFCoupling, flows.KindNSFAutoregressive}

// activations are the conditioner nonlinearities --activation accepts.
var activations = []flows.Activation{flows.ReLU, flows.Tanh, flows.ELU, flows.LeakyReLU, flows.SiLU}

// fitKey is folded into the seed's key to make the key of the training
// split and shuffles, apart from the keys that draw the initial parameters.
const fitKey = 0x666974 // "fit"

// fitFlags are the flags of flows fit.
type fitFlags struct {
	csv        csvFlags
	out        string
	kind       string
	layers     int
	hidden     intsFlag
	activation string
	bins       int
	bound      float64
	epochs     int
	batch      int
	lr         float64
	seed       uint64
	val        float64
	patience   int
	quiet      bool
}

var fitCommand = &command{
	name:  "fit",
	args:  "data.csv -o model.flow",
	short: "fit a flow to the rows of a CSV file and save it",
	long: `Fit reads the rows of a CSV file (a header row is optional), fits a
ready-made normalizing flow to them by maximum likelihood (Adam on
minibatches, with a held-out validation fraction for early stopping) and
writes the model with the parameters of its best validation epoch to the -o
file, atomically: the file is replaced only once the model is complete.

The model's columns are the selected columns in the order --columns gives
(all columns, in the file's order, by default). The model file does not record
their names, so give score and plot the same columns in the same order;
fit prints them when it is done.

A progress bar with the training and validation negative log-likelihood
(nats per row) is drawn on standard error when it is a terminal and
--quiet is not set.

Kinds: ` + kindList() + `.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &fitFlags{hidden: intsFlag{64, 64}}
		f.csv.add(fs)
		fs.StringVar(&f.out, "o", "", "the model `file` to write (required)")
		fs.StringVar(&f.kind, "kind", string(flows.KindMAF), "the flow architecture: "+kindList())
		fs.IntVar(&f.layers, "layers", 5, "the number of blocks of the architecture")
		fs.Var(&f.hidden, "hidden", "the hidden `widths` of each conditioner network")
		fs.StringVar(&f.activation, "activation", "relu", "the conditioners' nonlinearity: "+activationList())
		fs.IntVar(&f.bins, "bins", 8, "the spline bins (nsf-coupling and nsf-autoregressive only)")
		fs.Float64Var(&f.bound, "bound", 3, "the spline interval [-bound, bound] of the standardised data\n(nsf-coupling and nsf-autoregressive only)")
		fs.IntVar(&f.epochs, "epochs", 100, "the most passes over the training rows")
		fs.IntVar(&f.batch, "batch", 0, "the rows per optimiser step (default a tenth of the training rows,\nfrom 16 to 256)")
		fs.Float64Var(&f.lr, "lr", 1e-3, "the learning rate of Adam")
		fs.Uint64Var(&f.seed, "seed", 0, "the seed of the initial parameters, the validation split and the shuffles")
		fs.Float64Var(&f.val, "val", 0.1, "the fraction of rows held out for validation and early stopping\n(0: none, and the last epoch's parameters are kept)")
		fs.IntVar(&f.patience, "patience", 10, "stop after this many epochs without a better validation NLL (0: never)")
		fs.BoolVar(&f.quiet, "quiet", false, "print nothing on success: no progress bar, no summary")
		return func(e *env, args []string) error { return f.run(e, fs, args[0]) }
	},
}

// kindList lists the kinds for help and errors.
func kindList() string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// activationList lists the activations for help.
func activationList() string {
	s := make([]string, len(activations))
	for i, a := range activations {
		s[i] = strings.ToLower(a.String())
	}
	return strings.Join(s, ", ")
}

// config checks the flags and returns the model and fit configurations.
func (f *fitFlags) config(fs *flag.FlagSet) (flows.Config, optim.FitConfig, error) {
	usage := func(format string, args ...any) (flows.Config, optim.FitConfig, error) {
		return flows.Config{}, optim.FitConfig{}, usagef("fit", format, args...)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	cfg := flows.Config{Kind: flows.Kind(f.kind), Layers: f.layers, Hidden: f.hidden, Seed: f.seed}
	known, spline := false, false
	for _, k := range kinds {
		if k == cfg.Kind {
			known = true
			spline = k == flows.KindNSFCoupling || k == flows.KindNSFAutoregressive
		}
	}
	if !known {
		return usage("--kind %q: want one of %s", f.kind, kindList())
	}
	act := -1
	for _, a := range activations {
		if strings.EqualFold(a.String(), f.activation) {
			act = int(a)
		}
	}
	if act < 0 {
		return usage("--activation %q: want one of %s", f.activation, activationList())
	}
	cfg.Activation = flows.Activation(act)
	if f.layers < 1 {
		return usage("--layers %d: want at least 1", f.layers)
	}
	if spline {
		if f.bins < 1 {
			return usage("--bins %d: want at least 1", f.bins)
		}
		if !(f.bound > 0) || math.IsInf(f.bound, 0) {
			return usage("--bound %v: want a positive number", f.bound)
		}
		cfg.Bins, cfg.Bound = f.bins, f.bound
	} else if set["bins"] || set["bound"] {
		return usage("--bins and --bound apply to the spline kinds only (nsf-coupling, nsf-autoregressive), not %s", f.kind)
	}

	fc := optim.FitConfig{Epochs: f.epochs, BatchSize: f.batch, LR: f.lr, ValFraction: f.val, Patience: f.patience}
	switch {
	case f.epochs < 1:
		return usage("--epochs %d: want at least 1", f.epochs)
	case f.batch < 0:
		return usage("--batch %d: want at least 1 (or 0 for the default)", f.batch)
	case !(f.lr > 0) || math.IsInf(f.lr, 0):
		return usage("--lr %v: want a positive number", f.lr)
	case !(f.val >= 0 && f.val < 1):
		return usage("--val %v: want a fraction in [0, 1)", f.val)
	case f.patience < 0:
		return usage("--patience %d: want 0 (never stop early) or more", f.patience)
	}
	if f.val == 0 {
		fc.ValFraction = -1 // optim's "none"; its 0 is the default 0.1
	}
	if f.patience == 0 {
		fc.Patience = -1
	}
	return cfg, fc, nil
}

// run fits the model to the CSV file at path and saves it.
func (f *fitFlags) run(e *env, fs *flag.FlagSet, path string) error {
	cfg, fc, err := f.config(fs)
	if err != nil {
		return err
	}
	opt, err := f.csv.options("fit")
	if err != nil {
		return err
	}
	if f.out == "" || f.out == "-" {
		return usagef("fit", "no model file: give one with -o model.flow")
	}
	if err := checkNotInput(f.out, path); err != nil {
		return err
	}
	if err := checkWritable(f.out); err != nil {
		return err
	}
	t, err := readTable(e, path, opt)
	if err != nil {
		return err
	}
	m, err := flows.NewModel(cfg, t.x, nil)
	if err != nil {
		return fmt.Errorf("%s: %d %s (%s): %v", t.name, len(t.cols), plural(len(t.cols), "column"),
			strings.Join(t.names, ", "), strings.TrimPrefix(err.Error(), "flows: "))
	}

	n := t.x.RawMatrix().Rows
	if f.val > 0 && n-max(1, int(math.Round(f.val*float64(n)))) < 1 {
		return fmt.Errorf("%s: %d data %s: too few to hold out a validation fraction; add rows or use --val 0",
			t.name, n, plural(n, "row"))
	}
	if fc.BatchSize == 0 {
		fc.BatchSize = autoBatch(n, f.val)
	}
	var bar *progress // nil: no bar, and finish does nothing
	if e.stderrTTY && !f.quiet {
		bar = newProgress(e.stderr, f.epochs)
		fc.Progress = bar.update
	}
	res, err := optim.Fit(flows.NewKey(f.seed).Fold(fitKey), m.Dist, m.Params, t.x, nil, fc)
	bar.finish(err == nil)
	if err != nil {
		msg := fmt.Sprintf("%s: the fit failed: %s", t.name, strings.TrimPrefix(err.Error(), "optim: Fit: "))
		if strings.Contains(msg, "not finite") {
			msg += "; try a smaller --lr, or another --seed"
		}
		return errors.New(msg)
	}
	if err := m.Save(f.out); err != nil {
		return err
	}
	if !f.quiet {
		fmt.Fprintf(e.stderr, "wrote %s: %s, %d %s in this order: %s\n", f.out, cfg.Kind,
			len(t.names), plural(len(t.names), "column"), strings.Join(t.names, ", "))
		fmt.Fprintf(e.stderr, "%d %s, %d %s", n, plural(n, "row"), res.Epochs, plural(res.Epochs, "epoch"))
		if res.Stopped {
			fmt.Fprint(e.stderr, " (stopped early)")
		}
		if res.BestEpoch > 0 {
			fmt.Fprintf(e.stderr, "; kept epoch %d: train NLL %.4f", res.BestEpoch, res.TrainNLL[res.BestEpoch-1])
			if res.ValNLL != nil {
				fmt.Fprintf(e.stderr, ", validation NLL %.4f", res.BestValNLL)
			}
		}
		fmt.Fprintln(e.stderr)
	}
	return nil
}

// autoBatch is the default batch size for n rows of which the fraction val
// is held out: a tenth of the training rows, from 16 to 256, so that a
// small file still gets about ten steps an epoch (optim.Fit caps it at the
// number of training rows).
func autoBatch(n int, val float64) int {
	train := n
	if val > 0 {
		train -= max(1, int(math.Round(val*float64(n))))
	}
	return min(256, max(16, train/10))
}
