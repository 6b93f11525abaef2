package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/plot/vg"

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
	curve      string
	dropConst  bool
	dequantize dequantizeFlag
	bounds     boundsFlag
	scaling    string
	init       string
	precision  string
	linear     string
	logScale   float64
	trace      string
	rnode      model.RNODE
	rows       rowsFlags
	image      imageFlags
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
in a file by name (a file without a header row: x0, x1, … by position).
With --context, the model is conditional: it models the data columns given
the context columns, p(x | c).

Tables as they come: without --columns, a column of text with at most 32
levels (each seen twice on average) is a category, and --categorical names
more (a column of codes, say). The model's density of a row is then
p(categories) · p(numbers | categories): the flow is conditioned on the
categories' one-hot code, and their combinations are counted, with one
pseudo-row spread over all combinations (log densities are in nats of the
numbers' units plus the categories' log probability). Other text columns
(names, ids) and R's or pandas' row numbers are left out with a note.
Cells that are NA, empty, NaN or null (--na changes the list) are missing
values: a row with one is an error, or, with --missing skip, left out,
counted and listed in the --rejects file (file,line,reason).

On a terminal a progress bar shows the epochs, the training and validation
negative log-likelihood (nats per row) and the time left; elsewhere (a pipe,
a log file) each epoch is one line on standard error. --log writes the
epochs as a CSV table, --curve as a picture. --quiet prints nothing on
success, warnings included. At the end, fit
gives the validation NLL of a full-covariance Gaussian of the same rows,
and says plainly when the flow does not beat it.

Messy data: before fitting, fit audits the table. A constant column has no
density and is refused (--drop-constant drops it instead). It warns of
columns of integers or of few distinct values, of rows more than 50 robust
scales from a column's median (naming them), of duplicated rows, and of a
column that is a linear function of others up to rounding (a total, a
difference: the rows lie on a hyperplane, which has no density).
--dequantize fits integer columns as integers: the flow models x + u, u
uniform on (0, 1), with fresh noise for every minibatch; score then gives
the log probability of a row's integers (the density at the middle of
their unit cell) and sample gives integers. --bounds col=lo:hi declares a
column that cannot leave an interval (a proportion, a price: price=0:); a
fixed logit (or log, for one side) layer maps it onto the real line, so
the model gives no density outside and samples stay inside. The model file
records both, and the standardisation is robust: values far out do not
stretch it (--scaling moments turns that off).

Images: --kind image-glow --shape C,H,W fits a multi-scale Glow to images,
one per row of the CSV file, C·H·W pixel values 0 to 255 in channel-major
order (channel, then row, then column), or to an IDX file of unsigned bytes
(as MNIST's, found by its magic number; --shape is then 1,H,W). Pixels are
dequantised and mapped through a fixed logit; --steps and --channels size
the flow; --batch is 32 unless given. It reports the bits/dim of the
validation images.

Kinds: ` + kindList() + `.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &fitFlags{hidden: intsFlag{64, 64}}
		f.csv.add(fs)
		f.rows.add(fs, "fit")
		fs.StringVar(&f.out, "o", "", "the model `file` to write (required)")
		fs.StringVar(&f.kind, "kind", "", "the flow architecture: "+kindList()+"\n(default nsf-coupling, or nsf-autoregressive for one column)")
		fs.IntVar(&f.layers, "layers", 5, "the number of blocks of the architecture (cnf: 1 unless given)")
		fs.Var(&f.hidden, "hidden", "the hidden `widths` of each conditioner network")
		fs.StringVar(&f.activation, "activation", "relu", "the conditioners' nonlinearity: "+activationList()+"\n(cnf: tanh unless given; tanh or silu)")
		fs.StringVar(&f.trace, "trace", "auto", "cnf only: the log-determinant, exact, hutchinson (an unbiased estimate)\nor auto (exact up to 8 columns)")
		fs.Float64Var(&f.rnode.Kinetic, "kinetic", 0, "cnf only: the weight of RNODE's kinetic-energy regulariser of the dynamics\n(0: off; RNODE used 0.01); a training setting, not in the model file")
		fs.Float64Var(&f.rnode.Jacobian, "jacobian", 0, "cnf only: the weight of RNODE's Jacobian-norm regulariser (0: off)")
		fs.IntVar(&f.rnode.Steps, "penalty-steps", 0, "cnf only: RK4 steps of the regulariser's own solve (0: DOPRI5, as the\nmodel's)")
		fs.IntVar(&f.bins, "bins", 8, "the spline bins ("+splineKinds()+" only)")
		fs.Float64Var(&f.bound, "bound", 3, "the spline interval [-bound, bound] of the standardised data\n("+splineKinds()+" only)")
		fs.IntVar(&f.epochs, "epochs", 0, "the most passes over the training rows (default: until the validation\nNLL stops improving, at most 1000; 100 with --val 0 or --patience 0)")
		fs.IntVar(&f.batch, "batch", 0, "the rows per optimiser step (default a tenth of the training rows,\nfrom 16 to 256; 32 for --kind image-glow)")
		fs.Float64Var(&f.lr, "lr", 1e-3, "the learning rate of Adam")
		fs.Uint64Var(&f.seed, "seed", 0, "the seed of the initial parameters, the validation split and the shuffles")
		fs.Float64Var(&f.val, "val", 0.1, "the fraction of rows held out for validation and early stopping\n(0: none, and the last epoch's parameters are kept)")
		fs.IntVar(&f.patience, "patience", 10, "stop after this many epochs without a better validation NLL (0: never)")
		fs.BoolVar(&f.quiet, "quiet", false, "print nothing on success: no progress, no summary")
		fs.StringVar(&f.log, "log", "", "write one CSV row per epoch (epoch, step, lr, train and validation NLL,\nseconds, best) to this `file`")
		fs.StringVar(&f.curve, "curve", "", "draw the learning curve (training and validation NLL per epoch) to this\npicture `file`: .png, .svg or .pdf")
		fs.BoolVar(&f.dropConst, "drop-constant", false, "drop constant columns (with a note) instead of refusing the file")
		fs.Var(&f.dequantize, "dequantize", "fit integer columns as integers: --dequantize for every column of\nintegers, --dequantize=a,b for those named (see 'Messy data')")
		fs.Var(&f.bounds, "bounds", "`col=lo:hi,...`: columns that cannot leave an interval (an empty side is\nopen, as in price=0:); the model gives no density outside")
		fs.StringVar(&f.scaling, "scaling", "robust", "`robust|moments`: standardise by the mean and standard deviation\nwithout the values far out (robust), or of all values")
		fs.StringVar(&f.init, "init", "torch", "`torch|he`: the conditioners' initial weights, uniform on ±1/√fan-in\n(torch) or on ±√(6/fan-in) (he)")
		fs.StringVar(&f.precision, "precision", "float64", "`float64|float32`: the arithmetic of the conditioners' matrix products\nand hidden layers (float32: a training step at hidden width 512 takes\n1/1.2–1/1.6 of float64's CPU time, at 128 1/1.05–1/1.6, measured in\nBENCHMARKS.md; the rest stays float64; not bnaf)")
		fs.StringVar(&f.linear, "linear", "permutation", "`permutation|orthogonal`: how the linear layers of glow and nsf-coupling\nstart")
		fs.Float64Var(&f.logScale, "log-scale-bound", 3, "the bound on the log-scales of maf, realnvp and glow")
		f.image.add(fs)
		return func(e *env, args []string) error {
			if isImage, err := f.image.check(fs, f.kind); isImage || err != nil {
				if err != nil {
					return err
				}
				return f.runImage(e, args[0])
			}
			return f.run(e, fs, args[0])
		}
	},
}

// kindLabel names cfg's kind for the fit summary, with its precision
// when that is not the default float64.
func kindLabel(cfg model.Config) string {
	if cfg.Precision == flows.Float64 {
		return string(cfg.Kind)
	}
	return string(cfg.Kind) + " (" + cfg.Precision.String() + " products)"
}

// kindList lists the kinds for help and errors, as the library lists them.
func kindList() string {
	var s []string
	for _, k := range model.Kinds() {
		s = append(s, string(k.Kind))
	}
	return strings.Join(s, ", ")
}

// splineKinds lists the kinds that use splines.
func splineKinds() string {
	var s []string
	for _, k := range model.Kinds() {
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
func (f *fitFlags) config(fs *flag.FlagSet) (model.Config, optim.FitConfig, error) {
	usage := func(format string, args ...any) (model.Config, optim.FitConfig, error) {
		return model.Config{}, optim.FitConfig{}, usagef("fit", format, args...)
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	cfg := model.Config{Kind: model.Kind(f.kind), Layers: f.layers, Hidden: f.hidden, Seed: f.seed}
	info, ok := model.KindInfo{Splines: true}, true // the default kinds use splines
	if f.kind != "" {
		info, ok = cfg.Kind.Info()
	}
	if !ok {
		return usage("--kind %q: want one of %s", f.kind, kindList())
	}
	for _, setting := range []struct {
		flag, value string
		into        interface{ UnmarshalText([]byte) error }
	}{{"scaling", f.scaling, &cfg.Scaling}, {"init", f.init, &cfg.Init}, {"linear", f.linear, &cfg.Linear}, {"precision", f.precision, &cfg.Precision}} {
		if err := setting.into.UnmarshalText([]byte(setting.value)); err != nil {
			return usage("--%s %q: %s", setting.flag, setting.value, strings.TrimPrefix(err.Error(), "flows: "))
		}
	}
	cfg.LogScaleBound = f.logScale
	if err := cfg.Activation.UnmarshalText([]byte(f.activation)); err != nil {
		return usage("--activation %q: want one of %s", f.activation, activationList())
	}
	if f.layers < 1 {
		return usage("--layers %d: want at least 1", f.layers)
	}
	if cfg.Kind == model.KindCNF {
		// The kind's own defaults (see model.KindCNF), unless given.
		if !set["layers"] {
			cfg.Layers = 0
		}
		if set["activation"] && cfg.Activation != flows.Tanh && cfg.Activation != flows.SiLU {
			return usage("--activation %s: cnf's dynamics nets need a smooth one: tanh or silu", f.activation)
		}
		if err := cfg.ODE.Trace.UnmarshalText([]byte(f.trace)); err != nil {
			return usage("--trace %q: want exact, hutchinson or auto", f.trace)
		}
		if err := f.checkRNODE(cfg.Layers); err != nil {
			return usage("%s", err)
		}
	} else {
		for _, name := range []string{"trace", "kinetic", "jacobian", "penalty-steps"} {
			if set[name] {
				return usage("--%s applies to the cnf kind only, not %s", name, cmp.Or(f.kind, "the default"))
			}
		}
	}
	if cfg.Kind == model.KindBNAF && cfg.Precision != flows.Float64 {
		return usage("--precision %s: bnaf has no conditioner nets and computes in float64", f.precision)
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

	fc, err := f.fitConfig()
	return cfg, fc, err
}

// checkRNODE checks the flags of RNODE's regulariser for a cnf model of
// the given blocks (0: the default, one).
func (f *fitFlags) checkRNODE(layers int) error {
	r := f.rnode
	switch {
	case !(r.Kinetic >= 0) || math.IsInf(r.Kinetic, 0):
		return fmt.Errorf("--kinetic %v: want a weight of 0 (off) or more", r.Kinetic)
	case !(r.Jacobian >= 0) || math.IsInf(r.Jacobian, 0):
		return fmt.Errorf("--jacobian %v: want a weight of 0 (off) or more", r.Jacobian)
	case r.Steps < 0:
		return fmt.Errorf("--penalty-steps %d: want at least 1 (or 0 for DOPRI5)", r.Steps)
	case r.Kinetic == 0 && r.Jacobian == 0 && r.Steps > 0:
		return fmt.Errorf("--penalty-steps needs --kinetic or --jacobian")
	case (r.Kinetic > 0 || r.Jacobian > 0) && layers > 1:
		return fmt.Errorf("--kinetic and --jacobian: RNODE's regulariser is available for one block, not --layers %d", layers)
	}
	return nil
}

// fitConfig checks the training flags and returns the fit configuration.
func (f *fitFlags) fitConfig() (optim.FitConfig, error) {
	fc := optim.FitConfig{Epochs: f.epochs, BatchSize: f.batch, LR: f.lr, ValFraction: f.val, Patience: f.patience}
	var err error
	switch {
	case f.epochs < 0:
		err = usagef("fit", "--epochs %d: want at least 1 (or 0 for the default)", f.epochs)
	case f.batch < 0:
		err = usagef("fit", "--batch %d: want at least 1 (or 0 for the default)", f.batch)
	case !(f.lr > 0) || math.IsInf(f.lr, 0):
		err = usagef("fit", "--lr %v: want a positive number", f.lr)
	case !(f.val >= 0 && f.val < 1):
		err = usagef("fit", "--val %v: want a fraction in [0, 1)", f.val)
	case f.patience < 0:
		err = usagef("fit", "--patience %d: want 0 (never stop early) or more", f.patience)
	}
	if f.val == 0 {
		fc.ValFraction = -1 // optim's "none"; its 0 is the default 0.1
	}
	if f.patience == 0 {
		fc.Patience = -1
	}
	return fc, err
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
	if err := limitFitSizes(path, cfg, &opt); err != nil {
		return err
	}
	if err := f.rows.apply("fit", &opt); err != nil {
		return err
	}
	opt.Detect = true // text columns: categories or identifiers
	curveFormat, err := f.checkOutputs(path)
	if err != nil {
		return err
	}
	t, err := f.read(e, path, opt)
	if err != nil {
		return err
	}
	if err := f.prepare(e, path, t, &cfg); err != nil {
		return err
	}
	cfg.Columns, cfg.Context = t.Names, t.ContextNames
	n := t.Rows()
	if err := checkFitSizes(path, cfg, t); err != nil {
		return err
	}
	var m *model.Model
	if len(t.CatNames) > 0 {
		m, err = model.NewMixed(cfg, t.X, t.CatNames, t.Cats, t.C)
	} else {
		m, err = model.New(cfg, t.X, t.C)
	}
	if de := (*model.DataError)(nil); errors.As(err, &de) {
		// The file's line, as the table's errors give it.
		return fmt.Errorf("%s:%d: column %q: %v %s", path, t.Lines[de.Row], t.Names[de.Column], de.Value, de.Reason)
	}
	if err != nil {
		return fmt.Errorf("%s: %d %s (%s): %v", path, len(t.Names), plural(len(t.Names), "column"),
			joinNames(t.Names), strings.TrimPrefix(err.Error(), "flows: "))
	}

	if err := checkRows(path, "--batch", m, min(f.batch, n), true); err != nil {
		return err
	}
	nfe := newNFEMeter(m)
	report, done, err := f.reporter(e, nfe)
	if err != nil {
		return err
	}
	fc.Progress = report
	if f.rnode.Kinetic > 0 || f.rnode.Jacobian > 0 {
		if fc.Penalty, err = m.CNFPenalty(f.rnode); err != nil {
			return err
		}
	}
	res, err := m.FitMixed(t.X, t.Cats, t.C, fc)
	if err := done(err); err != nil {
		return err
	}
	if err != nil {
		switch {
		case errors.Is(err, optim.ErrTooFewRows):
			return fmt.Errorf("%s: %d data %s: too few to hold out a validation fraction; add rows or use --val 0", path, n, plural(n, "row"))
		case errors.Is(err, optim.ErrDiverged):
			return fmt.Errorf("%s: the fit failed: %s; try a smaller --lr, or another --seed", path, trimFit(err))
		}
		return fmt.Errorf("%s: the fit failed: %s", path, trimFit(err))
	}
	if err := m.Save(f.out); err != nil {
		return err
	}
	if f.curve != "" {
		p, err := learningCurve(fmt.Sprintf("%s: %s on %s", filepath.Base(f.out), m.Config.Kind, filepath.Base(path)), res)
		if err == nil {
			err = writePicture(e, f.curve, curveFormat, p, 7*vg.Inch, 4.5*vg.Inch)
		}
		if err != nil {
			return err
		}
	}
	f.summary(e, path, t, m, res, nfe)
	return nil
}

// checkOutputs checks the output files of a fit of the file at path before
// it starts: -o is given, no output is the input, each can be written; it
// returns the --curve picture's format.
func (f *fitFlags) checkOutputs(path string) (string, error) {
	if f.out == "" || f.out == "-" {
		return "", usagef("fit", "no model file: give one with -o model.flow")
	}
	curveFormat := ""
	var err error
	if f.curve != "" {
		if curveFormat, err = pictureFormat("fit", "--curve", f.curve); err != nil {
			return "", err
		}
	}
	for _, out := range []string{f.out, f.log, f.curve, f.rows.rejects} {
		if out == "" {
			continue
		}
		if err := checkNotInput(out, path); err != nil {
			return "", err
		}
		if err := atomicfile.CheckWritable(out); err != nil {
			return "", err
		}
	}
	return curveFormat, nil
}

// summary writes what the fit of t gave on standard error (nothing but
// the Gaussian's warning with --quiet): the model's columns and kind, the
// epochs and NLLs, the categories' part, recoveries, the small-table
// warnings and the comparison with a full-covariance Gaussian.
func (f *fitFlags) summary(e *env, path string, t *table.Table, m *model.Model, res optim.FitResult, nfe *nfeMeter) {
	n := t.Rows()
	if !f.quiet {
		what := fmt.Sprintf("%d %s in this order: %s", len(t.Names), plural(len(t.Names), "column"), joinNames(t.Names))
		if len(t.ContextNames) > 0 {
			what += fmt.Sprintf("; given %d context %s: %s", len(t.ContextNames), plural(len(t.ContextNames), "column"), joinNames(t.ContextNames))
		}
		if c := m.Categories; c != nil {
			var lv []string
			for j, name := range c.Names {
				lv = append(lv, fmt.Sprintf("%s (%d %s)", name, len(c.Levels[j]), plural(len(c.Levels[j]), "level")))
			}
			what += fmt.Sprintf("; categorical: %s", joinNames(lv))
		}
		fmt.Fprintf(e.stderr, "wrote %s: %s, %s\n", f.out, kindLabel(m.Config), what)
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
		fmt.Fprint(e.stderr, nfe.summary())
		if m.Categories != nil {
			nll, _ := m.CategoriesNLL(t.Cats)
			fmt.Fprintf(e.stderr, "the NLLs are of the numbers given the categories; the categories' own: %.4f nats per row (%d %s of levels seen)\n",
				nll, len(m.Categories.Counts), plural(len(m.Categories.Counts), "combination"))
		}
		if r := res.Recoveries; len(r) > 0 {
			fmt.Fprintf(e.stderr, "recovered %d %s from a blow-up (first at epoch %d: %s); each restored the epoch's start and halved the learning rate, to %g of --lr\n",
				len(r), plural(len(r), "time"), r[0].Epoch, r[0].Reason, r[len(r)-1].LRScale)
		}
	}
	if !f.quiet {
		smallTable(e, path, n, len(t.Names), len(m.Params), len(res.ValRows))
	}
	// The baseline: a full-covariance Gaussian of the same training rows,
	// on the same validation rows (Model.Fit computes it).
	if g := m.Training.GaussianValNLL; !math.IsNaN(g) {
		switch {
		case !(res.BestValNLL < g):
			fmt.Fprintf(e.stderr, "warning: the flow does not beat a full-covariance Gaussian on the validation rows (validation NLL %.4f, the Gaussian's %.4f): for these data the Gaussian is the better model; try another --kind or more rows\n", res.BestValNLL, g)
		case !f.quiet:
			fmt.Fprintf(e.stderr, "a full-covariance Gaussian of the same rows: validation NLL %.4f (the flow is %.4f nats per row better)\n", g, g-res.BestValNLL)
		}
	}
}

// trimFit returns the message of a fit's error without optim's prefix.
func trimFit(err error) string {
	msg := strings.TrimPrefix(err.Error(), "optim: Fit: ")
	return strings.TrimPrefix(msg, "flows: Model.Fit: ")
}

// reporter returns the fit's Progress callback: the bar on a terminal, a
// line per epoch elsewhere, nothing with --quiet, and the --log table; and
// done, to call with the fit's error when it returns, which ends the bar
// and commits the log (it returns the log's error).
func (f *fitFlags) reporter(e *env, nfe *nfeMeter) (func(optim.Progress), func(error) error, error) {
	var report []func(optim.Progress)
	if nfe != nil {
		report = append(report, nfe.update)
	}
	var bar *progress
	switch {
	case f.quiet:
	case e.stderrTTY:
		bar = newProgress(e.stderr, f.epochs)
		report = append(report, bar.update)
	default:
		report = append(report, func(p optim.Progress) { fmt.Fprintln(e.stderr, epochLine(p)+nfe.epoch()) })
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
