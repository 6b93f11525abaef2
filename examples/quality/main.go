// Command quality measures held-out log-likelihood on real tables: for each
// of scikit-learn's wine, diabetes, breast-cancer and digits tables (export
// them first with export.py), it fits ready-made flows exactly as
// `flows fit` does with the given settings (model.New, then
// Model.Fit) on the training and validation rows, scores the test
// rows, and prints the mean negative log-likelihood per row (nats, in the
// data's units; lower is better), median over seeds, beside a
// full-covariance Gaussian fitted to the same rows. QUALITY.md holds its
// results.
//
//	/usr/bin/python3 examples/quality/export.py /tmp/tables
//	go run ./examples/quality -tables /tmp/tables [-seeds 1,2,3,4,5] [-kinds default,maf,nsf-coupling]
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/prep"
	"github.com/gonormflows/flows/table"
)

// The fit's flags: -valtrim, -batch and -patience.
var (
	valTrim  *float64
	batch    *int
	patience *int
)

func main() {
	dir := flag.String("tables", "tables", "the folder export.py wrote")
	seedList := flag.String("seeds", "1,2,3,4,5", "the seeds, comma-separated")
	kindList := flag.String("kinds", "default", "the kinds to fit, comma-separated (default: the CLI's default)")
	names := flag.String("names", "wine,diabetes,breast_cancer,digits", "the tables")
	epochs := flag.Int("epochs", 0, "the most epochs (0: the default)")
	initName := flag.String("init", "", "the conditioners' init: he or torch (default the Config's)")
	linear := flag.String("linear", "", "the linear layers' start: orthogonal or permutation (default the Config's)")
	bound := flag.Float64("logscale", 0, "the affine kinds' log-scale bound (0: the Config's)")
	scaling := flag.String("scaling", "", "the standardisation: robust or moments (default the Config's)")
	trace := flag.String("trace", "", "the cnf kind's log-determinant: auto, exact or hutchinson (default the Config's)")
	batch = flag.Int("batch", 0, "the rows per step (0: Fit's default)")
	layers := flag.Int("layers", 0, "the blocks (0: the Config's default)")
	hidden := flag.String("hidden", "", "the conditioners' hidden widths, comma-separated (default the Config's)")
	patience = flag.Int("patience", 0, "the epochs without improvement before stopping (0: Fit's default)")
	valTrim = flag.Float64("valtrim", 0, "the fraction of validation rows the early-stopping score leaves out (0: Fit's default, negative: none)")
	flag.Parse()
	var seeds []uint64
	for _, s := range strings.Split(*seedList, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			log.Fatalf("-seeds: %v", err)
		}
		seeds = append(seeds, v)
	}
	fmt.Printf("| table (columns) | full Gaussian |")
	kinds := strings.Split(*kindList, ",")
	for _, k := range kinds {
		fmt.Printf(" %s |", k)
	}
	fmt.Println()
	base := model.Config{LogScaleBound: *bound, Layers: *layers}
	for _, h := range strings.Split(*hidden, ",") {
		if h = strings.TrimSpace(h); h != "" {
			v, err := strconv.Atoi(h)
			if err != nil || v < 1 {
				log.Fatalf("-hidden %q: want positive widths", *hidden)
			}
			base.Hidden = append(base.Hidden, v)
		}
	}
	if *initName != "" {
		if err := base.Init.UnmarshalText([]byte(*initName)); err != nil {
			log.Fatal(err)
		}
	}
	if *scaling != "" {
		if err := base.Scaling.UnmarshalText([]byte(*scaling)); err != nil {
			log.Fatal(err)
		}
	}
	if *trace != "" {
		if err := base.ODE.Trace.UnmarshalText([]byte(*trace)); err != nil {
			log.Fatal(err)
		}
	}
	if *linear != "" {
		if err := base.Linear.UnmarshalText([]byte(*linear)); err != nil {
			log.Fatal(err)
		}
	}
	for _, name := range strings.Split(*names, ",") {
		if err := run(*dir, name, base, kinds, seeds, *epochs); err != nil {
			log.Fatal(err)
		}
	}
}

// read reads one part of a table.
func read(dir, name, part string) *table.Table {
	t, err := table.ReadFile(filepath.Join(dir, name+"_"+part+".csv"), table.Options{})
	if err != nil {
		log.Fatal(err)
	}
	return t
}

// stack returns the rows of a and then b.
func stack(a, b *mat.Dense) *mat.Dense {
	var s mat.Dense
	s.Stack(a, b)
	return &s
}

// meanNLL returns −mean(lp), or +Inf when a log density is not finite.
func meanNLL(lp []float64) float64 {
	s := 0.0
	for _, v := range lp {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.Inf(1)
		}
		s -= v
	}
	return s / float64(len(lp))
}

// run prints one table's row.
func run(dir, name string, base model.Config, kinds []string, seeds []uint64, epochs int) error {
	train, val, test := read(dir, name, "train"), read(dir, name, "val"), read(dir, name, "test")
	x := stack(train.X, val.X)
	_, d := x.Dims()
	fmt.Printf("| %s (%d) | %.2f |", name, d, prep.GaussianNLL(x, test.X))
	for _, kind := range kinds {
		var nlls []float64
		start := time.Now()
		for _, seed := range seeds {
			cfg := base
			cfg.Seed = seed
			if kind != "default" {
				cfg.Kind = model.Kind(kind)
			}
			m, err := model.New(cfg, x, nil)
			if err != nil {
				return fmt.Errorf("%s %s: %w", name, kind, err)
			}
			if _, err := m.Fit(x, nil, optim.FitConfig{Epochs: epochs, ValTrim: *valTrim, BatchSize: *batch, Patience: *patience}); err != nil {
				fmt.Fprintf(os.Stderr, "%s %s seed %d: %v\n", name, kind, seed, err)
			}
			nlls = append(nlls, meanNLL(m.LogPDF(test.X, nil)))
		}
		sorted := slices.Sorted(slices.Values(nlls))
		fmt.Printf(" %.2f |", sorted[len(sorted)/2])
		fmt.Fprintf(os.Stderr, "%s %s: %v (%.0fs)\n", name, kind, nlls, time.Since(start).Seconds())
	}
	fmt.Println()
	return nil
}
