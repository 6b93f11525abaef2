// Command precision fits the same flows in float64 and float32 compute
// modes (flows.Precision) and prints their held-out NLL side by side: a toy
// density (a ring of eight Gaussians in 2-D) and scikit-learn tables as
// examples/quality/export.py writes them (train, val and test CSVs).
//
//	go run ./examples/precision -tables /tmp/tables -names wine,diabetes -seeds 1,2,3
//
// Each flow is a standardisation followed by either eight rational-quadratic
// spline couplings with MLP [64, 64] conditioners ("nsf") or five MAF layers
// with MADE [64, 64] ("maf"); both precisions start from the same key, draw
// the same parameters and hold out the same validation rows, so the only
// difference is the rounding of the nets' products. The NLL is in nats per
// row of the test rows, in the data's own units.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/prep"
	"github.com/gonormflows/flows/table"
)

func main() {
	dir := flag.String("tables", "", "the folder examples/quality/export.py wrote (none: the toy density only)")
	names := flag.String("names", "wine,diabetes", "the tables")
	epochs := flag.Int("epochs", 60, "the most epochs")
	seedList := flag.String("seeds", "1,2,3", "the seeds, comma-separated")
	withToy := flag.Bool("toy", true, "fit the toy density too")
	flag.Parse()
	var seeds []uint64
	for _, f := range strings.Split(*seedList, ",") {
		v, err := strconv.ParseUint(f, 10, 64)
		check(err)
		seeds = append(seeds, v)
	}
	fmt.Println("| data | flow | float64 NLL, median (per seed) | float32 NLL, median (per seed) | float32 − float64, median | float64, init × (1 + 2⁻²⁴·N(0,1)) (per seed) | time f64 / f32 |")
	fmt.Println("|---|---|---|---|---|---|---|")
	seed := seeds
	if *withToy {
		train, test := toy(flows.NewKey(100), 4000), toy(flows.NewKey(101), 2000)
		compare("toy ring (2)", train, test, *epochs, seed)
	}
	if *dir == "" {
		return
	}
	for _, name := range strings.Split(*names, ",") {
		tr, va, te := read(*dir, name, "train"), read(*dir, name, "val"), read(*dir, name, "test")
		var x mat.Dense
		x.Stack(tr, va)
		_, d := x.Dims()
		compare(fmt.Sprintf("%s (%d)", name, d), &x, te, *epochs, seed)
	}
}

// compare fits each flow in both precisions from each seed and prints a
// row per flow: the medians over the seeds, each seed's NLL, and the median
// of the per-seed differences. A third fit per seed, float64 from initial
// parameters perturbed by float32's rounding (relative 2⁻²⁴), is the
// control: how far a fit moves from a perturbation of that size alone.
func compare(what string, x, test *mat.Dense, epochs int, seeds []uint64) {
	mean, scale, err := prep.StandardizeFrom(x)
	check(err)
	for _, kind := range []string{"nsf", "maf"} {
		var nll [3][]float64
		var diff []float64
		var took [3]time.Duration
		for _, seed := range seeds {
			for i, pr := range []flows.Precision{flows.Float64, flows.Float32, flows.Float64} {
				start := time.Now()
				init := flows.Flow(flows.Serial(flows.Standardize(mean, scale), stack(kind, pr)), flows.Normal())
				key := flows.NewKey(seed)
				_, dim := x.Dims()
				p, d, err := init(key.Fold(1), dim, 0)
				check(err)
				if i == 2 {
					rng := key.Fold(3).Rand()
					for j := range p {
						p[j] *= 1 + 0x1p-24*rng.NormFloat64()
					}
				}
				_, err = optim.Fit(key.Fold(2), d, p, x, nil, optim.FitConfig{Epochs: epochs, ValFraction: 0.1})
				check(err)
				nll[i] = append(nll[i], meanNLL(d.LogPDF(p, test, nil)))
				took[i] += time.Since(start)
			}
			diff = append(diff, nll[1][len(nll[1])-1]-nll[0][len(nll[0])-1])
		}
		fmt.Printf("| %s | %s | %.4f (%s) | %.4f (%s) | %+.4f | %.4f (%s) | %.1fs / %.1fs |\n", what, kind,
			median(nll[0]), list(nll[0]), median(nll[1]), list(nll[1]), median(diff), median(nll[2]), list(nll[2]),
			took[0].Seconds(), took[1].Seconds())
	}
}

// stack returns the flow's layers after the standardisation.
func stack(kind string, pr flows.Precision) flows.InitFunc {
	var layers []flows.InitFunc
	if kind == "maf" {
		for l := range 5 {
			if l > 0 {
				layers = append(layers, flows.Reverse())
			}
			layers = append(layers, flows.MAF(flows.MADEConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Init: flows.InitTorch, Precision: pr}))
		}
		return flows.Serial(layers...)
	}
	for l := range 8 {
		if l > 0 {
			layers = append(layers, flows.Reverse())
		}
		net := flows.MLPWith(flows.MLPConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Init: flows.InitTorch, Precision: pr})
		layers = append(layers, flows.NeuralSplineCoupling(net, flows.SplineConfig{Bins: 8, Bound: 4}))
	}
	return flows.Serial(layers...)
}

// toy draws n rows of a ring of eight Gaussians (radius 2, σ 0.2) in 2-D.
func toy(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		a := float64(rng.IntN(8)) * math.Pi / 4
		x.SetRow(i, []float64{2*math.Cos(a) + 0.2*rng.NormFloat64(), 2*math.Sin(a) + 0.2*rng.NormFloat64()})
	}
	return x
}

// read reads one part of a table.
func read(dir, name, part string) *mat.Dense {
	t, err := table.ReadFile(filepath.Join(dir, name+"_"+part+".csv"), table.Options{})
	check(err)
	return t.X
}

// median returns the median of v.
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// list formats v to two decimals, separated by spaces.
func list(v []float64) string {
	f := make([]string, len(v))
	for i, x := range v {
		f[i] = strconv.FormatFloat(x, 'f', 2, 64)
	}
	return strings.Join(f, " ")
}

// meanNLL returns −mean(lp).
func meanNLL(lp []float64) float64 {
	s := 0.0
	for _, v := range lp {
		s -= v
	}
	return s / float64(len(lp))
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "precision:", err)
		os.Exit(1)
	}
}
