package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/table"
)

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
	log        string
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
(all columns but the context ones, in the file's order, by default). The
model file records their names, so that score, sample and plot find them
in a file by name. With --context, the model is conditional: it models the
data columns given the context columns, p(x | c).

On a terminal a progress bar shows the epochs, the training and validation
negative log-likelihood (nats per row) and the time left; elsewhere (a pipe,
a log file) each epoch is one line on standard error. --log writes the
epochs as a CSV table. --quiet prints nothing on success.

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
		fs.IntVar(&f.bins, "bins", 8, "the spline bins ("+splineKinds()+" only)")
		fs.Float64Var(&f.bound, "bound", 3, "the spline interval [-bound, bound] of the standardised data\n("+splineKinds()+" only)")
		fs.IntVar(&f.epochs, "epochs", 100, "the most passes over the training rows")
		fs.IntVar(&f.batch, "batch", 0, "the rows per optimiser step (default a tenth of the training rows,\nfrom 16 to 256)")
		fs.Float64Var(&f.lr, "lr", 1e-3, "the learning rate of Adam")
		fs.Uint64Var(&f.seed, "seed", 0, "the seed of the initial parameters, the validation split and the shuffles")
		fs.Float64Var(&f.val, "val", 0.1, "the fraction of rows held out for validation and early stopping\n(0: none, and the last epoch's parameters are kept)")
		fs.IntVar(&f.patience, "patience", 10, "stop after this many epochs without a better validation NLL (0: never)")
		fs.BoolVar(&f.quiet, "quiet", false, "print nothing on success: no progress, no summary")
		fs.StringVar(&f.log, "log", "", "write one CSV row per epoch (epoch, step, lr, train and validation NLL,\nseconds, best) to this `file`")
		return func(e *env, args []string) error { return f.run(e, fs, args[0]) }
	},
}

// kindList lists the kinds for help and errors, as the library lists them.
func kindList() string {
	var s []string
	for _, k := range flows.Kinds() {
		s = append(s, string(k.Kind))
	}
	return strings.Join(s, ", ")
}

// splineKinds lists the kinds that use splines.
func splineKinds() string {
	var s []string
	for _, k := range flows.Kinds() {
		if k.Splines {
			s = append(s, string(k.Kind))
		}
	}
	return strings.Join(s, " and ")
}

// activationList lists the activations for help.
func activationList() string {
	var s []string
	for _, a := range flows.Activations() {
		s = append(s, strings.ToLower(a.String()))
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
	var info *flows.KindInfo
	for _, k := range flows.Kinds() {
		if k.Kind == cfg.Kind {
			info = &k
		}
	}
	if info == nil {
		return usage("--kind %q: want one of %s", f.kind, kindList())
	}
	if err := cfg.Activation.UnmarshalText([]byte(f.activation)); err != nil {
		return usage("--activation %q: want one of %s", f.activation, activationList())
	}
	if f.layers < 1 {
		return usage("--layers %d: want at least 1", f.layers)
	}
	if info.Splines {
		cfg.Bins, cfg.Bound = f.bins, f.bound
	} else if set["bins"] || set["bound"] {
		return usage("--bins and --bound apply to the spline kinds only (%s), not %s", splineKinds(), f.kind)
	}
	if err := cfg.Validate(); err != nil {
		// The library's checks, in the flags' words.
		msg := strings.TrimPrefix(err.Error(), "flows: Config: ")
		msg = strings.Replace(msg, "kind \""+f.kind+"\": flows: spline: ", "", 1)
		return usage("%s", msg)
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
	for _, out := range []string{f.out, f.log} {
		if out == "" {
			continue
		}
		if err := checkNotInput(out, path); err != nil {
			return err
		}
		if err := atomicfile.CheckWritable(out); err != nil {
			return err
		}
	}
	t, err := readTable(e, path, opt)
	if err != nil {
		return err
	}
	cfg.Columns, cfg.Context = t.Names, t.ContextNames
	n := t.Rows()
	m, err := flows.NewModel(cfg, t.X, t.C)
	if err != nil {
		return fmt.Errorf("%s: %d %s (%s): %v", path, len(t.Names), plural(len(t.Names), "column"),
			joinNames(t.Names), strings.TrimPrefix(err.Error(), "flows: "))
	}

	report, done, err := f.reporter(e)
	if err != nil {
		return err
	}
	fc.Progress = report
	res, err := optim.FitModel(m, t.X, t.C, fc)
	if err := done(err); err != nil {
		return err
	}
	if err != nil {
		switch {
		case errors.Is(err, optim.ErrTooFewRows):
			return fmt.Errorf("%s: %d data %s: too few to hold out a validation fraction; add rows or use --val 0", path, n, plural(n, "row"))
		case errors.Is(err, optim.ErrDiverged):
			return fmt.Errorf("%s: the fit failed: %s; try a smaller --lr, or another --seed", path, strings.TrimPrefix(err.Error(), "optim: Fit: "))
		}
		return fmt.Errorf("%s: the fit failed: %s", path, strings.TrimPrefix(err.Error(), "optim: Fit: "))
	}
	if err := m.Save(f.out); err != nil {
		return err
	}
	if !f.quiet {
		what := fmt.Sprintf("%d %s in this order: %s", len(t.Names), plural(len(t.Names), "column"), joinNames(t.Names))
		if len(t.ContextNames) > 0 {
			what += fmt.Sprintf("; given %d context %s: %s", len(t.ContextNames), plural(len(t.ContextNames), "column"), joinNames(t.ContextNames))
		}
		fmt.Fprintf(e.stderr, "wrote %s: %s, %s\n", f.out, cfg.Kind, what)
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

// reporter returns the fit's Progress callback: the bar on a terminal, a
// line per epoch elsewhere, nothing with --quiet, and the --log table; and
// done, to call with the fit's error when it returns, which ends the bar
// and commits the log (it returns the log's error).
func (f *fitFlags) reporter(e *env) (func(optim.Progress), func(error) error, error) {
	var report []func(optim.Progress)
	var bar *progress
	switch {
	case f.quiet:
	case e.stderrTTY:
		bar = newProgress(e.stderr, f.epochs)
		report = append(report, bar.update)
	default:
		report = append(report, func(p optim.Progress) { fmt.Fprintln(e.stderr, epochLine(p)) })
	}
	var log *output
	var tw *table.Writer
	if f.log != "" {
		var err error
		if log, err = openOutput(e, f.log); err != nil {
			return nil, nil, err
		}
		if tw, err = table.NewWriter(log.w, []string{"epoch", "step", "lr", "train_nll", "val_nll", "seconds", "best"}); err != nil {
			log.finish(err)
			return nil, nil, err
		}
		report = append(report, func(p optim.Progress) {
			best := 0.0
			if p.Best {
				best = 1
			}
			tw.WriteRow([]float64{float64(p.Epoch), float64(p.Step), p.LR, p.TrainNLL, p.ValNLL, p.Elapsed.Seconds(), best})
		})
	}
	done := func(err error) error {
		bar.finish(err == nil)
		if log == nil {
			return nil
		}
		if err := tw.Flush(); err != nil {
			return log.finish(err)
		}
		// The log of a failed fit is kept too: it shows how it failed.
		return log.finish(nil)
	}
	return func(p optim.Progress) {
		for _, r := range report {
			r(p)
		}
	}, done, nil
}

// epochLine is the log line of one epoch, for standard error when it is not
// a terminal:
//
//	epoch 12/100: train NLL 1.2345, validation NLL 1.3012 (best), lr 0.001, 3.2s, at most 24s left
//
// (at most: early stopping may end the fit sooner).
func epochLine(p optim.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d: train NLL %.4f", p.Epoch, p.Epochs, p.TrainNLL)
	if !math.IsNaN(p.ValNLL) {
		fmt.Fprintf(&b, ", validation NLL %.4f", p.ValNLL)
		if p.Best {
			b.WriteString(" (best)")
		}
	}
	fmt.Fprintf(&b, ", lr %.3g, %s", p.LR, p.Elapsed.Round(100*time.Millisecond))
	if p.Step > 0 && p.Step < p.Steps {
		left := time.Duration(float64(p.Elapsed) * float64(p.Steps-p.Step) / float64(p.Step))
		fmt.Fprintf(&b, ", at most %s left", left.Round(time.Second))
	}
	return b.String()
}
