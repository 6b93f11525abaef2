package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/gonormflows/flows/model"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/beam/flowsbeam"
)

var sweepCommand = &command{
	name:  "sweep",
	args:  "train-glob... --validation glob -o best.flow",
	short: "fit a grid of configurations and keep the best on a validation set",
	long: `Sweep fits every configuration of a grid to the rows of the training files
(read whole, as 'flows fit' reads one, in the order of their paths), each
configuration on a worker, exactly as 'flows fit' would with the same flags
and seed; scores the rows of the --validation files under every fitted
model; and writes the model with the highest mean validation log-likelihood
to the model file -o (the first of equals). --report writes one CSV row per
configuration: its settings, the epochs, the training NLL, the validation
rows and mean log density, whether it was chosen, and why a fit failed.

The grid is every combination of the lists given to --kind, --layers,
--hidden, --activation, --bins, --bound (for the spline kinds), --lr and
--seed; --epochs, --batch, --val and --patience are the same for all, with
the meanings and defaults of 'flows fit'. A fit that diverges is reported
and not chosen.`,
	nArgs: [2]int{1, -1},
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var (
			c          csvFlags
			validation listFlag
			out        string
			report     string
			kinds      = listFlag{string(model.KindMAF)}
			layers     = intsFlag{v: []int{5}, min: 1}
			hidden     = hiddenFlag{{64, 64}}
			acts       = listFlag{"relu"}
			bins       = intsFlag{v: []int{8}, min: 1}
			bounds     = floatsFlag{3}
			lrs        = floatsFlag{1e-3}
			seeds      seedsFlag
			epochs     int
			batch      int
			val        float64
			patience   int
		)
		c.add(fs, false)
		fs.Var(&validation, "validation", "the `globs` of the validation files, comma-separated (required)")
		fs.StringVar(&out, "o", "", "the model `file` to write, the chosen configuration's (required)")
		fs.StringVar(&report, "report", "", "write one CSV row per configuration to this `file`")
		fs.Var(&kinds, "kind", "the architectures, a `list` of "+kindList())
		fs.Var(&layers, "layers", "the numbers of blocks, a `list`")
		fs.Var(&hidden, "hidden", "the hidden widths of the conditioners, a `list` of lists separated by\nsemicolons: 32,32;64,64")
		fs.Var(&acts, "activation", "the conditioners' nonlinearities, a `list` of "+activationList())
		fs.Var(&bins, "bins", "the spline bins (spline kinds only), a `list`")
		fs.Var(&bounds, "bound", "the spline intervals [-bound, bound] (spline kinds only), a `list`")
		fs.Var(&lrs, "lr", "the learning rates of Adam, a `list`")
		fs.Var(&seeds, "seed", "the seeds, a `list` (default 0)")
		fs.IntVar(&epochs, "epochs", 100, "the most passes over the training rows")
		fs.IntVar(&batch, "batch", 0, "the rows per optimiser step (default a tenth of the training rows,\nfrom 16 to 256)")
		fs.Float64Var(&val, "val", 0.1, "the fraction of training rows held out for early stopping (0: none)")
		fs.IntVar(&patience, "patience", 10, "stop after this many epochs without a better held-out NLL (0: never)")
		return func(ctx context.Context, e *env, args []string) error {
			switch {
			case out == "":
				return usagef("sweep", "no model file: give one with -o best.flow")
			case len(validation) == 0:
				return usagef("sweep", "no validation files: give their glob with --validation")
			case epochs < 1:
				return usagef("sweep", "--epochs %d: want at least 1", epochs)
			case batch < 0:
				return usagef("sweep", "--batch %d: want at least 1 (or 0 for the default)", batch)
			case !(val >= 0 && val < 1):
				return usagef("sweep", "--val %v: want a fraction in [0, 1)", val)
			case patience < 0:
				return usagef("sweep", "--patience %d: want 0 (never stop early) or more", patience)
			}
			fit := flowsbeam.FitSettings{Epochs: epochs, BatchSize: batch, ValFraction: val, Patience: patience}
			if val == 0 {
				fit.ValFraction = -1 // optim's "none"
			}
			if patience == 0 {
				fit.Patience = -1
			}
			if seeds == nil {
				seeds = seedsFlag{0}
			}
			configs, err := grid(kinds, layers.v, hidden, acts, bins.v, bounds, lrs, seeds, fit)
			if err != nil {
				return err
			}
			opt, err := c.options("sweep")
			if err != nil {
				return err
			}
			trainFiles, err := matchAll(ctx, args)
			if err != nil {
				return err
			}
			valFiles, err := matchAll(ctx, validation)
			if err != nil {
				return err
			}
			tn, tc, err := checkHeader(ctx, trainFiles, opt)
			if err != nil {
				return err
			}
			vn, vc, err := checkHeader(ctx, valFiles, opt)
			if err != nil {
				return err
			}
			if !slices.Equal(tn, vn) || !slices.Equal(tc, vc) {
				return fmt.Errorf("%s has columns %q (context %q), but %s has %q (context %q)", trainFiles[0], tn, tc, valFiles[0], vn, vc)
			}
			fmt.Fprintf(e.stderr, "fitting %d %s to %s\n", len(configs), plural(int64(len(configs)), "configuration"), strings.Join(args, " "))
			p, s := beam.NewPipelineWithRoot()
			rows, _ := flowsbeam.ReadCSV(s, flowsbeam.ReadConfig{Options: opt}, validation...)
			result := flowsbeam.Sweep(s, flowsbeam.SweepData{Globs: args, Options: opt}, configs, rows)
			flowsbeam.WriteSweep(s, out, report, result)
			counts, err := execute(ctx, e, p, nil)
			if err != nil || counts == nil {
				return err
			}
			if report != "" {
				printReport(ctx, e, report)
			}
			b, err := readBack(ctx, out)
			if err != nil {
				return err
			}
			m, err := model.Read(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s: %v", out, err)
			}
			fmt.Fprintf(e.stderr, "wrote %s: %s\n", out, describe(m.Config))
			return nil
		}
	},
}

// grid returns every combination of the settings, in the order of the
// lists (the last varying fastest), without duplicates (a non-spline kind
// ignores bins and bound), each checked by the library.
func grid(kinds []string, layers []int, hidden [][]int, acts []string, bins []int, bounds, lrs []float64, seeds []uint64, fit flowsbeam.FitSettings) ([]flowsbeam.SweepConfig, error) {
	var out []flowsbeam.SweepConfig
	seen := map[string]bool{}
	for _, lr := range lrs {
		if !(lr > 0) || math.IsInf(lr, 0) {
			return nil, usagef("sweep", "--lr %v: want positive numbers", lr)
		}
	}
	for _, k := range kinds {
		info, ok := model.Kind(k).Info()
		if !ok {
			return nil, usagef("sweep", "--kind %q: want some of %s", k, kindList())
		}
		for _, l := range layers {
			for _, h := range hidden {
				for _, a := range acts {
					var act flows.Activation
					if err := act.UnmarshalText([]byte(a)); err != nil {
						return nil, usagef("sweep", "--activation %q: want some of %s", a, activationList())
					}
					for _, b := range bins {
						for _, bd := range bounds {
							for _, lr := range lrs {
								for _, seed := range seeds {
									cfg := model.Config{Kind: info.Kind, Layers: l, Hidden: h, Activation: act, Seed: seed}
									if info.Splines {
										cfg.Bins, cfg.Bound = b, bd
									}
									if err := cfg.Validate(); err != nil {
										return nil, usagef("sweep", "%s", strings.TrimPrefix(err.Error(), "flows: Config: "))
									}
									if err := sweepSizes(cfg); err != nil {
										return nil, err
									}
									f := fit
									f.LR = lr
									c := flowsbeam.SweepConfig{Model: cfg, Fit: f}
									if key := fmt.Sprintf("%#v", c); !seen[key] {
										seen[key] = true
										out = append(out, c)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	return out, nil
}

// printReport prints the report's rows, one line per configuration.
func printReport(ctx context.Context, e *env, path string) {
	b, err := readBack(ctx, path)
	if err != nil {
		return
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) < 2 {
		return
	}
	for _, r := range recs[1:] {
		if len(r) < 17 {
			return
		}
		line := fmt.Sprintf("%3s %s, %s layers, hidden %s, %s", r[0], r[1], r[2], r[3], r[4])
		if r[5] != "0" {
			line += ", " + r[5] + " bins, bound " + r[6]
		}
		line += ", seed " + r[7] + ", lr " + r[9] + ": "
		switch {
		case r[16] != "":
			line += "failed: " + r[16]
		default:
			line += "validation mean log density " + r[14] + " (" + r[13] + " rows), epoch " + r[11] + " of " + r[10]
		}
		if r[15] == "1" {
			line += "  <- chosen"
		}
		fmt.Fprintln(e.stderr, line)
	}
}

// describe describes a model configuration in one line.
func describe(c model.Config) string {
	h := make([]string, len(c.Hidden))
	for i, v := range c.Hidden {
		h[i] = strconv.Itoa(v)
	}
	s := fmt.Sprintf("%s, %d layers, hidden %s, %s", c.Kind, c.Layers, strings.Join(h, ","), strings.ToLower(c.Activation.String()))
	if c.Bins > 0 {
		s += fmt.Sprintf(", %d bins, bound %g", c.Bins, c.Bound)
	}
	return s + fmt.Sprintf(", seed %d", c.Seed)
}

// hiddenFlag is a flag holding lists of widths separated by semicolons.
type hiddenFlag [][]int

func (h *hiddenFlag) String() string {
	if h == nil {
		return ""
	}
	var parts []string
	for _, l := range *h {
		s := make([]string, len(l))
		for i, v := range l {
			s[i] = strconv.Itoa(v)
		}
		parts = append(parts, strings.Join(s, ","))
	}
	return strings.Join(parts, ";")
}

func (h *hiddenFlag) Set(s string) error {
	var out [][]int
	for part := range strings.SplitSeq(s, ";") {
		l := intsFlag{min: 1}
		if err := l.Set(part); err != nil {
			return fmt.Errorf("%q is not lists of positive widths separated by semicolons", s)
		}
		out = append(out, l.v)
	}
	*h = out
	return nil
}

// seedsFlag is a flag holding a comma-separated list of seeds.
type seedsFlag []uint64

func (l *seedsFlag) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.FormatUint(v, 10)
	}
	return strings.Join(s, ",")
}

func (l *seedsFlag) Set(s string) error {
	var out []uint64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a list of seeds (integers from 0)", s)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// kindList lists the kinds, as the library lists them.
func kindList() string {
	var s []string
	for _, k := range model.Kinds() {
		s = append(s, string(k.Kind))
	}
	return strings.Join(s, ", ")
}

// activationList lists the activations.
func activationList() string {
	var s []string
	for _, a := range flows.Activations() {
		s = append(s, strings.ToLower(a.String()))
	}
	return strings.Join(s, ", ")
}
