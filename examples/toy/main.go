// Command toy fits two ready-made flows, a masked autoregressive flow (MAF)
// and a rational-quadratic neural spline flow with coupling layers
// (RQ-NSF (C)), to each of the eight two-dimensional toy densities of the
// FFJORD paper's code (swissroll, circles, rings, moons, 8gaussians,
// pinwheel, 2spirals, checkerboard), with optim.Fit, and prints for each the
// held-out negative log-likelihood on a separate test set and its gap to
// the density's true entropy, the lowest mean NLL any model can reach.
//
// It writes into -out one density picture per density and model
// (NAME_maf.png, NAME_nsf.png), a histogram of the test data per density
// (NAME_data.png), and toy_grid.png, a grid of 8 rows (densities) by 3
// columns (data, MAF, NSF).
//
//	go run ./examples/toy [-epochs 30] [-ntrain 65536] [-seed 1] [-out .] [-only checkerboard]
//	                      [-init he|torch] [-linear orthogonal|permutation]
//
// -init and -linear override the ready-made flows' defaults (QUALITY.md
// compares them). The fits run concurrently, one per CPU. The whole run (16
// fits of at most 30 epochs of 65536 rows) took from 4 to 8½ minutes on two
// shared cores, 22 minutes with a load average near 15; -only NAME fits one
// density, in about a minute.
package main

import (
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot/vg"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/optim"
)

func main() {
	epochs := flag.Int("epochs", 30, "most passes over the training set (early stopping may end a fit sooner)")
	nTrain := flag.Int("ntrain", 65536, "training rows per density (10% of them held out for early stopping)")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	out := flag.String("out", ".", "folder for the PNG pictures")
	only := flag.String("only", "", "fit only the density of this name")
	initName := flag.String("init", "", "the conditioners' init, he or torch (default the Config's)")
	linear := flag.String("linear", "", "how the NSF's linear layers start, orthogonal or permutation (default the Config's)")
	flag.Parse()
	for i := range models {
		if *initName != "" {
			if err := models[i].cfg.Init.UnmarshalText([]byte(*initName)); err != nil {
				log.Fatal(err)
			}
		}
		if *linear != "" && models[i].cfg.Kind == model.KindNSFCoupling {
			if err := models[i].cfg.Linear.UnmarshalText([]byte(*linear)); err != nil {
				log.Fatal(err)
			}
		}
	}
	if err := run(*epochs, *nTrain, *seed, *out, *only); err != nil {
		log.Fatal(err)
	}
}

// nTest is the number of rows of each density's separate test set.
const nTest = 8192

// modelSpec is one of the two flows fitted to every density.
type modelSpec struct {
	name  string // short name, used in file names
	label string
	cfg   model.Config
	lr    float64
}

// models are the two flows. The data are standardised first (model.New), so
// the splines' bound of 4 standard units holds essentially all of it.
var models = []modelSpec{
	{name: "maf", label: "MAF", cfg: model.Config{Kind: model.KindMAF, Layers: 6, Hidden: []int{64, 64}}, lr: 1e-3},
	{name: "nsf", label: "RQ-NSF (C)", cfg: model.Config{Kind: model.KindNSFCoupling, Layers: 5, Hidden: []int{64, 64}, Bins: 12, Bound: 4}, lr: 1e-3},
}

// job is one fit: a density and a model.
type job struct {
	d   int // index into the densities fitted
	m   int // index into models
	res result
}

type result struct {
	nll, trainNLL float64
	epochs, best  int
	recoveries    int
	stopped       bool
	secs          float64
	err           error
	model         *model.Model
}

func run(epochs, nTrain int, seed uint64, out, only string) error {
	dens := toy.Densities
	if only != "" {
		d, err := toy.Lookup(only)
		if err != nil {
			return err
		}
		dens = []toy.Density{d}
	}
	root := flows.NewKey(seed)

	// Each density's training and test sets come from keys folded from its
	// name's position in the full list, so -only gives the same data.
	type data struct{ train, test *mat.Dense }
	sets := make([]data, len(dens))
	for i, d := range dens {
		k := root.Fold(uint64(indexOf(d.Name))).Split(2)
		sets[i] = data{d.Sample(k[0], nTrain), d.Sample(k[1], nTest)}
	}

	jobs := make([]*job, 0, len(dens)*len(models))
	for i := range dens {
		for j := range models {
			jobs = append(jobs, &job{d: i, m: j})
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	fmt.Printf("fitting %d densities × %d models, %d training and %d test rows each, at most %d epochs, %d at a time\n",
		len(dens), len(models), nTrain, nTest, epochs, workers)
	start := time.Now()
	var mu sync.Mutex
	queue := make(chan *job)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for jb := range queue {
				jb.res = fit(root, dens[jb.d], jb.m, sets[jb.d].train, sets[jb.d].test, epochs)
				mu.Lock()
				if jb.res.err != nil {
					fmt.Printf("  %-12s %-10s error: %v\n", dens[jb.d].Name, models[jb.m].label, jb.res.err)
				} else {
					fmt.Printf("  %-12s %-10s held-out NLL %.4f (gap %.4f), %d epochs (best %d), %d recoveries, %.0fs\n",
						dens[jb.d].Name, models[jb.m].label, jb.res.nll, jb.res.nll-dens[jb.d].Entropy,
						jb.res.epochs, jb.res.best, jb.res.recoveries, jb.res.secs)
				}
				mu.Unlock()
			}
		}()
	}
	for _, jb := range jobs {
		queue <- jb
	}
	close(queue)
	wg.Wait()
	fmt.Printf("all fits done in %.0fs\n", time.Since(start).Seconds())

	// Pictures: one density per (density, model), a data histogram per
	// density, and the grid of them all.
	const res = 160
	grid := make([][]*figs.Panel, len(dens))
	for i, d := range dens {
		// Each density's own extent, which fits its data.
		box := figs.Box{XMin: -d.Extent, XMax: d.Extent, YMin: -d.Extent, YMax: d.Extent}
		grid[i] = make([]*figs.Panel, 1+len(models))
		grid[i][0] = figs.HistPanel(figs.Labels{Title: d.Name + ": held-out data", X: "x₁", Y: "x₂"}, box, res, figs.Linear, sets[i].test)
		if err := grid[i][0].Save(filepath.Join(out, d.Name+"_data.png")); err != nil {
			return err
		}
		for j, m := range models {
			jb := jobs[i*len(models)+j]
			if jb.res.err != nil {
				continue
			}
			title := fmt.Sprintf("%s: %s", d.Name, m.label)
			path := filepath.Join(out, d.Name+"_"+m.name+".png")
			labels := figs.Labels{Title: title, X: "x₁", Y: "x₂"}
			if err := figs.Density(path, labels, box, 200, figs.Linear, func(x *mat.Dense) []float64 { return jb.res.model.LogPDF(x, nil) }); err != nil {
				return err
			}
			grid[i][1+j] = figs.DensityPanel(labels, box, res, figs.Linear, func(x *mat.Dense) []float64 { return jb.res.model.LogPDF(x, nil) })
		}
	}
	gridPath := filepath.Join(out, "toy_grid.png")
	if err := figs.Grid(gridPath, grid, 2.5*vg.Inch); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(out, "NAME_{data,maf,nsf}.png"), "and", gridPath)

	// The table.
	fmt.Println()
	fmt.Println("held-out NLL (nats) on", nTest, "test rows; gap = NLL − true entropy")
	fmt.Printf("%-12s %8s", "density", "entropy")
	for _, m := range models {
		fmt.Printf("  %10s %7s", m.label, "gap")
	}
	fmt.Println()
	for i, d := range dens {
		fmt.Printf("%-12s %8.4f", d.Name, d.Entropy)
		for j := range models {
			r := jobs[i*len(models)+j].res
			if r.err != nil {
				fmt.Printf("  %10s %7s", "failed", "")
				continue
			}
			fmt.Printf("  %10.4f %7.4f", r.nll, r.nll-d.Entropy)
		}
		fmt.Println()
	}
	for _, jb := range jobs {
		if jb.res.err != nil {
			return fmt.Errorf("%s with %s: %w", dens[jb.d].Name, models[jb.m].label, jb.res.err)
		}
	}
	return nil
}

// fit trains models[mi] on train and measures its NLL on test.
// Its key depends only on the density's and the model's positions in
// toy.Densities and models.
func fit(root flows.Key, d toy.Density, mi int, train, test *mat.Dense, epochs int) result {
	t0 := time.Now()
	ms := models[mi]
	cfg := ms.cfg
	k := root.Fold(uint64(100 + 10*indexOf(d.Name) + mi))
	cfg.Seed, _ = k.Uint64s()
	m, err := model.New(cfg, train, nil)
	if err != nil {
		return result{err: err}
	}
	fr, err := optim.Fit(k.Fold(1), m.Dist, m.Params, train, nil, optim.FitConfig{
		Epochs:    epochs,
		BatchSize: 256,
		Schedule:  optim.Cosine(ms.lr, ms.lr/50),
		Patience:  6,
	})
	if err != nil {
		return result{err: err}
	}
	nll, err := optim.NLLValue(m.Dist, m.Params, test, nil)
	if err != nil {
		return result{err: err}
	}
	return result{nll: nll, trainNLL: fr.TrainNLL[len(fr.TrainNLL)-1], epochs: fr.Epochs, best: fr.BestEpoch,
		recoveries: len(fr.Recoveries), stopped: fr.Stopped, secs: time.Since(t0).Seconds(), model: m}
}

// indexOf returns the position of the named density in toy.Densities.
func indexOf(name string) int {
	for i, d := range toy.Densities {
		if d.Name == name {
			return i
		}
	}
	return -1
}
