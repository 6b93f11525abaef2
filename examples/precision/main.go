// Command precision fits the same flows in float64 and float32 compute
// modes (flows.Precision) and prints their held-out NLL side by side: toy
// densities in 2-D (a ring of eight Gaussians, "ring", and the FFJORD
// paper's, examples/internal/toy) and scikit-learn tables as
// examples/quality/export.py writes them (train, val and test CSVs).
//
//	go run ./examples/precision -tables /tmp/tables -names wine,diabetes -seeds 1,2,3 [-toys ring,moons] [-kinds nsf,maf] [-fixed -epochs 30]
//	go run ./examples/precision -merge run1.err,run2.err
//
// Each flow is a standardisation followed by either eight rational-quadratic
// spline couplings with MLP [64, 64] conditioners ("nsf") or five MAF layers
// with MADE [64, 64] ("maf"); both precisions start from the same key, draw
// the same parameters and hold out the same validation rows, so the only
// difference is the rounding of the nets' products. A third fit per seed,
// float64 from initial parameters perturbed by float32's rounding (relative
// 2⁻²⁴), is the control: how far a fit moves from a perturbation of that
// size alone. The NLL is in nats per row of the test rows, in the data's own
// units. Each row of the table gives the medians over the seeds and the
// paired differences from the float64 fit of the same seed (float32 and
// control), as a mean ± its standard error and as a median; each seed's
// figures go to stderr, and -merge prints the table of such lines from
// several runs (split by data, flow or seeds across processes).
//
// By default each fit runs at most -epochs epochs at a constant learning
// rate with early stopping on a tenth of the rows. Early stopping branches:
// a perturbation as small as float32's rounding can move the epoch it stops
// at, and with it the held-out NLL by up to a nat. -fixed is the protocol
// that does not branch: exactly -epochs epochs on all the rows, no
// validation, the learning rate decaying from -lr to -lr/100 along
// optim.Cosine, the same shuffles from the same key in all three fits.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/prep"
	"github.com/gonormflows/flows/table"
)

func main() {
	dir := flag.String("tables", "", "the folder examples/quality/export.py wrote (none: the toy densities only)")
	names := flag.String("names", "wine,diabetes", "the tables")
	epochs := flag.Int("epochs", 60, "the most epochs (with -fixed: the epochs)")
	fixed := flag.Bool("fixed", false, "the fixed protocol: -epochs epochs on all the rows, no validation and no early stopping, a cosine decay of the learning rate from -lr to -lr/100")
	lr := flag.Float64("lr", 1e-3, "the (first) learning rate")
	mergeList := flag.String("merge", "", "fit nothing: print the table of the per-seed lines that runs wrote to stderr in these files, comma-separated")
	seedList := flag.String("seeds", "1,2,3", "the seeds, comma-separated")
	toys := flag.String("toys", "ring", "the toy densities, comma-separated: ring or a name of examples/internal/toy (empty: none)")
	rows := flag.Int("rows", 4000, "the training rows of a toy density (half as many test rows)")
	kindList := flag.String("kinds", "nsf,maf", "the flows, comma-separated: nsf, maf")
	flag.Parse()
	var seeds []uint64
	for _, f := range strings.Split(*seedList, ",") {
		v, err := strconv.ParseUint(f, 10, 64)
		check(err)
		seeds = append(seeds, v)
	}
	cfg := optim.FitConfig{Epochs: *epochs, LR: *lr, ValFraction: 0.1}
	if *fixed {
		cfg = optim.FitConfig{Epochs: *epochs, Schedule: optim.Cosine(*lr, *lr/100), ValFraction: -1}
	}
	kinds := strings.Split(*kindList, ",")
	for _, k := range kinds {
		if k != "nsf" && k != "maf" {
			check(fmt.Errorf("-kinds: unknown flow %q; want nsf or maf", k))
		}
	}
	fmt.Println("| data | flow | seeds | float64, median | float32, median | control, median | float32 − float64: mean ± s.e. (median) | control − float64: mean ± s.e. (median) | time f64 / f32 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	if *mergeList != "" {
		merge(strings.Split(*mergeList, ","))
		return
	}
	for _, name := range strings.Split(*toys, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		sample := ring
		if name != "ring" {
			d, err := toy.Lookup(name)
			check(err)
			sample = d.Sample
		}
		train, test := sample(flows.NewKey(100), *rows), sample(flows.NewKey(101), *rows/2)
		compare(name+" (2)", train, test, kinds, cfg, seeds)
	}
	if *dir == "" {
		return
	}
	for _, name := range strings.Split(*names, ",") {
		tr, va, te := read(*dir, name, "train"), read(*dir, name, "val"), read(*dir, name, "test")
		var x mat.Dense
		x.Stack(tr, va)
		_, d := x.Dims()
		compare(fmt.Sprintf("%s (%d)", name, d), &x, te, kinds, cfg, seeds)
	}
}

// compare fits each flow in both precisions, and the float64 control, from
// each seed and prints a row per flow.
func compare(what string, x, test *mat.Dense, kinds []string, cfg optim.FitConfig, seeds []uint64) {
	mean, scale, err := prep.StandardizeFrom(x)
	check(err)
	for _, kind := range kinds {
		var r result
		for _, seed := range seeds {
			var nll [3]float64
			var t [3]time.Duration
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
				_, err = optim.Fit(key.Fold(2), d, p, x, nil, cfg)
				check(err)
				nll[i] = meanNLL(d.LogPDF(p, test, nil))
				t[i] = time.Since(start)
			}
			r.add(nll, t)
			fmt.Fprintf(os.Stderr, "%s %s seed %d: float64 %.6f, float32 %.6f, control %.6f (%.1fs, %.1fs, %.1fs)\n", what, kind, seed, nll[0], nll[1], nll[2], t[0].Seconds(), t[1].Seconds(), t[2].Seconds())
		}
		r.print(what, kind)
	}
}

// result holds one flow's figures on one data set, over the seeds.
type result struct {
	nll  [3][]float64 // float64, float32, control
	took [3]time.Duration
}

// add adds one seed's figures.
func (r *result) add(nll [3]float64, took [3]time.Duration) {
	for i := range nll {
		r.nll[i] = append(r.nll[i], nll[i])
		r.took[i] += took[i]
	}
}

// print prints r as a row of the table.
func (r *result) print(what, kind string) {
	f32, ctl := minus(r.nll[1], r.nll[0]), minus(r.nll[2], r.nll[0])
	fmt.Printf("| %s | %s | %d | %.4f | %.4f | %.4f | %s | %s | %.1fs / %.1fs |\n", what, kind, len(f32),
		median(r.nll[0]), median(r.nll[1]), median(r.nll[2]), paired(f32), paired(ctl),
		r.took[0].Seconds(), r.took[1].Seconds())
}

// seedLine matches a line compare writes to stderr.
var seedLine = regexp.MustCompile(`^(.+) (nsf|maf) seed (\d+): float64 (\S+), float32 (\S+), control (\S+) \((\S+)s, (\S+)s, (\S+)s\)$`)

// merge prints the table of the per-seed lines in the files (what compare
// writes to stderr), in the order the rows first appear; a seed met twice
// for a row counts once.
func merge(files []string) {
	type rowKey struct{ what, kind string }
	var order []rowKey
	rows := map[rowKey]*result{}
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		check(err)
		for _, line := range strings.Split(string(b), "\n") {
			m := seedLine.FindStringSubmatch(strings.TrimSpace(line))
			if m == nil || seen[m[1]+" "+m[2]+" "+m[3]] {
				continue
			}
			seen[m[1]+" "+m[2]+" "+m[3]] = true
			var v [6]float64
			for i := range v {
				v[i], err = strconv.ParseFloat(m[4+i], 64)
				check(err)
			}
			k := rowKey{m[1], m[2]}
			if rows[k] == nil {
				rows[k] = &result{}
				order = append(order, k)
			}
			sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
			rows[k].add([3]float64{v[0], v[1], v[2]}, [3]time.Duration{sec(v[3]), sec(v[4]), sec(v[5])})
		}
	}
	for _, k := range order {
		rows[k].print(k.what, k.kind)
	}
}

// minus returns a − b elementwise.
func minus(a, b []float64) []float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = a[i] - b[i]
	}
	return d
}

// paired formats paired differences as "mean ± standard error (median)".
func paired(d []float64) string {
	n := float64(len(d))
	m := 0.0
	for _, v := range d {
		m += v
	}
	m /= n
	ss := 0.0
	for _, v := range d {
		ss += (v - m) * (v - m)
	}
	se := math.NaN()
	if len(d) > 1 {
		se = math.Sqrt(ss / (n - 1) / n)
	}
	return fmt.Sprintf("%+.4f ± %.4f (%+.4f)", m, se, median(d))
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

// ring draws n rows of a ring of eight Gaussians (radius 2, σ 0.2) in 2-D.
func ring(key flows.Key, n int) *mat.Dense {
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
