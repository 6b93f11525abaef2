// Command precision fits the same flows in float64 and float32 compute
// modes (flows.Precision) and prints their held-out NLL side by side: toy
// densities in 2-D (a ring of eight Gaussians, "ring", and the FFJORD
// paper's, examples/internal/toy) and scikit-learn tables as
// examples/quality/export.py writes them (train, val and test CSVs).
//
//	go run ./examples/precision -tables /tmp/tables -names wine,diabetes -seeds 1,2,3 [-toys ring,moons] [-kinds nsf,maf,default] [-fixed -epochs 30] [-folds 5]
//	go run ./examples/precision -merge run1.err,run2.err
//
// Each flow is a standardisation followed by either eight rational-quadratic
// spline couplings with MLP [64, 64] conditioners ("nsf") or five MAF layers
// with MADE [64, 64] ("maf"), or the ready-made model's defaults, what
// flows fit fits ("default": model.Config{}, five blocks of an LU linear
// map and a spline coupling, robust standardisation); both precisions start from the same key, draw
// the same parameters and hold out the same validation rows, so the only
// difference is the rounding of the nets' products. A third fit per seed,
// float64 from initial parameters perturbed by float32's rounding (relative
// 2⁻²⁴), is the control: how far a fit moves from a perturbation of that
// size alone. The NLL is in nats per row of the test rows, in the data's own
// units. Each row of the table gives the medians over the seeds and the
// paired differences from the float64 fit of the same seed (float32 and
// control), and float32's from the mean of the seed's two float64 fits
// (both estimate the same float64 expectation, and their mean is the
// less noisy reference), as a mean ± its standard error and as a median;
// each seed's figures go to stderr, and -merge prints the table of such
// lines from several runs (split by data, flow or seeds across processes).
//
// By default each fit runs at most -epochs epochs at a constant learning
// rate with early stopping on a tenth of the rows. Early stopping branches:
// a perturbation as small as float32's rounding can move the epoch it stops
// at, and with it the held-out NLL by up to a nat. -fixed is the protocol
// without branching points of its own: exactly -epochs epochs on all the
// rows, no validation, the learning rate decaying from -lr to -lr/100
// along optim.Cosine, the same shuffles from the same key in all three
// fits. The training itself may still branch: a spline flow on a small
// table does, once it fits 1 to 3 nats better than a Gaussian, whatever
// the learning rate (BENCHMARKS.md, issue 21); -trace shows where.
//
// A table's test split is small (18 to 180 rows), and the held-out mean of
// a fit rests on a few of them. -folds k cross-fits instead: the table's
// rows (train, val and test) are cut into k folds, a fit per fold learns
// from the others, and a seed's held-out NLL is the mean over every row of
// the table, each scored by the fit that did not see it (fold j's fits
// draw from the key NewKey(seed).Fold(100+j)). The table also gives the
// full-covariance Gaussian of the same training rows, the baseline a fit
// must beat, and the paired differences' 95% confidence interval
// (Student's t over the seeds).
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
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distmv"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/model"
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
	kindList := flag.String("kinds", "nsf,maf", "the flows, comma-separated: nsf, maf, default (the ready-made model's defaults, model.Config{})")
	batch := flag.Int("batch", 0, "the rows per step (0: optim.DefaultBatchSize, a tenth of the training rows)")
	wd := flag.Float64("wd", 0, "weight decay: the penalty wd/2·‖p‖² added to every step's mean NLL (0: none)")
	folds := flag.Int("folds", 0, "cross-fitting on a table: pool its train, val and test rows, cut them into this many folds and fit once per fold on the others, so that every row is held out once (0: the table's own test split)")
	trace := flag.Bool("trace", false, "print each fit's held-out NLL after every epoch to stderr (of the first fold with -folds)")
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
	cfg.BatchSize = *batch
	pr := protocol{cfg: cfg, wd: *wd, trace: *trace}
	kinds := strings.Split(*kindList, ",")
	for _, k := range kinds {
		if k != "nsf" && k != "maf" && k != "default" {
			check(fmt.Errorf("-kinds: unknown flow %q; want nsf, maf or default", k))
		}
	}
	fmt.Println("| data | flow | seeds | float64, median (mean) | float32, median | control, median | float32 − float64: mean ± s.e. [95% CI] (median) | control − float64: mean ± s.e. [95% CI] (median) | float32 − (float64 + control)/2: mean ± s.e. [95% CI] (median) | Gaussian | time f64 / f32 |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|")
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
		compare(name+" (2)", []split{{train, test}}, kinds, pr, seeds)
	}
	if *dir == "" {
		return
	}
	for _, name := range strings.Split(*names, ",") {
		tr, va, te := read(*dir, name, "train"), read(*dir, name, "val"), read(*dir, name, "test")
		var x mat.Dense
		x.Stack(tr, va)
		_, d := x.Dims()
		what, parts := fmt.Sprintf("%s (%d)", name, d), []split{{&x, te}}
		if *folds > 1 {
			var all mat.Dense
			all.Stack(&x, te)
			what, parts = fmt.Sprintf("%s (%d), %d folds", name, d, *folds), crossFolds(&all, *folds)
		}
		compare(what, parts, kinds, pr, seeds)
	}
}

// protocol is how compare fits: the fit's configuration, the weight decay
// (0: none) and whether to trace each fit's held-out NLL by epoch.
type protocol struct {
	cfg   optim.FitConfig
	wd    float64
	trace bool
}

// split is a table's training and held-out rows.
type split struct{ train, test *mat.Dense }

// crossFolds cuts the rows of x into k contiguous folds (the tables are
// shuffled once when exported) and returns, for each, the other rows to
// fit on and the fold to hold out.
func crossFolds(x *mat.Dense, k int) []split {
	n, _ := x.Dims()
	if k > n {
		check(fmt.Errorf("-folds %d: more folds than the table's %d rows", k, n))
	}
	parts := make([]split, k)
	for j := range k {
		lo, hi := j*n/k, (j+1)*n/k
		var train mat.Dense
		switch {
		case lo == 0:
			train.CloneFrom(x.Slice(hi, n, 0, x.RawMatrix().Cols))
		case hi == n:
			train.CloneFrom(x.Slice(0, lo, 0, x.RawMatrix().Cols))
		default:
			train.Stack(x.Slice(0, lo, 0, x.RawMatrix().Cols), x.Slice(hi, n, 0, x.RawMatrix().Cols))
		}
		var test mat.Dense
		test.CloneFrom(x.Slice(lo, hi, 0, x.RawMatrix().Cols))
		parts[j] = split{&train, &test}
	}
	return parts
}

// gaussianNLL returns the mean NLL of the held-out rows of parts under the
// Gaussian with each split's training rows' mean and (unbiased) full
// covariance: the baseline a flow must beat.
func gaussianNLL(parts []split) float64 {
	s, n := 0.0, 0
	for _, sp := range parts {
		_, d := sp.train.Dims()
		mu := make([]float64, d)
		for j := range d {
			mu[j] = stat.Mean(mat.Col(nil, j, sp.train), nil)
		}
		cov := mat.NewSymDense(d, nil)
		stat.CovarianceMatrix(cov, sp.train, nil)
		g, ok := distmv.NewNormal(mu, cov, nil)
		if !ok {
			check(fmt.Errorf("the Gaussian baseline: the covariance is not positive definite"))
		}
		r, _ := sp.test.Dims()
		for i := range r {
			s -= g.LogProb(sp.test.RawRowView(i))
		}
		n += r
	}
	return s / float64(n)
}

// compare fits each flow in both precisions, and the float64 control, from
// each seed and prints a row per flow. The held-out NLL of a fit is the
// mean over the held-out rows of all the splits (one fit per split).
func compare(what string, parts []split, kinds []string, pr protocol, seeds []uint64) {
	gauss := gaussianNLL(parts)
	fmt.Fprintf(os.Stderr, "%s gaussian %.6f\n", what, gauss)
	for _, kind := range kinds {
		r := result{gauss: gauss}
		for _, seed := range seeds {
			var nll [3]float64
			var t [3]time.Duration
			for i, prec := range []flows.Precision{flows.Float64, flows.Float32, flows.Float64} {
				start := time.Now()
				sum, rows := 0.0, 0
				for j, sp := range parts {
					key := flows.NewKey(seed)
					if len(parts) > 1 {
						key = key.Fold(uint64(100 + j))
					}
					tr := ""
					if pr.trace && j == 0 {
						tr = fmt.Sprintf("%s %s seed %d %s", what, kind, seed, [3]string{"float64", "float32", "control"}[i])
					}
					lp := fitOnce(key, sp, kind, prec, i == 2, pr, tr)
					for _, v := range lp {
						sum -= v
					}
					rows += len(lp)
				}
				nll[i] = sum / float64(rows)
				t[i] = time.Since(start)
			}
			r.add(nll, t)
			fmt.Fprintf(os.Stderr, "%s %s seed %d: float64 %.6f, float32 %.6f, control %.6f (%.1fs, %.1fs, %.1fs)\n", what, kind, seed, nll[0], nll[1], nll[2], t[0].Seconds(), t[1].Seconds(), t[2].Seconds())
		}
		r.print(what, kind)
	}
}

// fitOnce fits one flow on sp.train from key, its initial parameters
// perturbed by float32's rounding when perturb is set, and returns the log
// densities of sp.test. With trace not empty it prints the held-out NLL
// after every epoch to stderr, after trace.
func fitOnce(key flows.Key, sp split, kind string, prec flows.Precision, perturb bool, pr protocol, trace string) []float64 {
	p, d := build(key, sp.train, kind, prec)
	if perturb {
		rng := key.Fold(3).Rand()
		for j := range p {
			p[j] *= 1 + 0x1p-24*rng.NormFloat64()
		}
	}
	cfg := pr.cfg
	if pr.wd > 0 {
		wd := pr.wd
		cfg.Penalty = func(p flows.Params, _, _ *mat.Dense, grad flows.Params) float64 {
			s := 0.0
			for j, v := range p {
				s += v * v
				grad[j] += wd * v
			}
			return wd / 2 * s
		}
	}
	if trace != "" {
		cfg.Progress = func(g optim.Progress) {
			fmt.Fprintf(os.Stderr, "trace %s epoch %d: train %.4f, held-out %.4f\n", trace, g.Epoch, g.TrainNLL, meanNLL(d.LogPDF(p, sp.test, nil)))
		}
	}
	_, err := optim.Fit(key.Fold(2), d, p, sp.train, nil, cfg)
	check(err)
	return d.LogPDF(p, sp.test, nil)
}

// result holds one flow's figures on one data set, over the seeds.
type result struct {
	nll   [3][]float64 // float64, float32, control
	took  [3]time.Duration
	gauss float64 // the Gaussian baseline's held-out NLL (NaN: not known)
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
	both := make([]float64, len(f32)) // float32 − the mean of the seed's two float64 fits
	for i := range both {
		both[i] = r.nll[1][i] - (r.nll[0][i]+r.nll[2][i])/2
	}
	fmt.Printf("| %s | %s | %d | %.4f (%.4f) | %.4f | %.4f | %s | %s | %s | %.4f | %.1fs / %.1fs |\n", what, kind, len(f32),
		median(r.nll[0]), mean(r.nll[0]), median(r.nll[1]), median(r.nll[2]), paired(f32), paired(ctl), paired(both),
		r.gauss, r.took[0].Seconds(), r.took[1].Seconds())
}

// gaussLine matches the Gaussian baseline's line compare writes to stderr.
var gaussLine = regexp.MustCompile(`^(.+) gaussian (\S+)$`)

// seedLine matches a line compare writes to stderr for each seed.
var seedLine = regexp.MustCompile(`^(.+) (nsf|maf|default) seed (\d+): float64 (\S+), float32 (\S+), control (\S+) \((\S+)s, (\S+)s, (\S+)s\)$`)

// merge prints the table of the per-seed lines in the files (what compare
// writes to stderr), in the order the rows first appear; a seed met twice
// for a row counts once.
func merge(files []string) {
	type rowKey struct{ what, kind string }
	var order []rowKey
	rows := map[rowKey]*result{}
	seen := map[string]bool{}
	gauss := map[string]float64{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		check(err)
		for _, line := range strings.Split(string(b), "\n") {
			if g := gaussLine.FindStringSubmatch(strings.TrimSpace(line)); g != nil {
				gauss[g[1]], err = strconv.ParseFloat(g[2], 64)
				check(err)
				continue
			}
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
		rows[k].gauss = math.NaN()
		if g, ok := gauss[k.what]; ok {
			rows[k].gauss = g
		}
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

// paired formats paired differences as "mean ± standard error [the mean's
// 95% confidence interval, Student's t] (median)".
func paired(d []float64) string {
	n := float64(len(d))
	m := mean(d)
	ss := 0.0
	for _, v := range d {
		ss += (v - m) * (v - m)
	}
	se, half := math.NaN(), math.NaN()
	if len(d) > 1 {
		se = math.Sqrt(ss / (n - 1) / n)
		half = distuv.StudentsT{Mu: 0, Sigma: 1, Nu: n - 1}.Quantile(0.975) * se
	}
	return fmt.Sprintf("%+.4f ± %.4f [%+.4f, %+.4f] (%+.4f)", m, se, m-half, m+half, median(d))
}

// mean returns the mean of v.
func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

// build returns the initial parameters and the flow of kind for the
// training rows x: for nsf and maf a standardisation followed by stack,
// drawn from key.Fold(1); for "default" the ready-made model's defaults
// (model.Config{}: what flows fit fits), drawn from its own seed, the
// exclusive or of key's two words.
func build(key flows.Key, x *mat.Dense, kind string, prec flows.Precision) (flows.Params, flows.Distribution) {
	if kind == "default" {
		hi, lo := key.Uint64s()
		m, err := model.New(model.Config{Seed: hi ^ lo, Precision: prec}, x, nil)
		check(err)
		return m.Params, m.Dist
	}
	mean, scale, err := prep.StandardizeFrom(x)
	check(err)
	init := flows.Flow(flows.Serial(flows.Standardize(mean, scale), stack(kind, prec)), flows.Normal())
	_, dim := x.Dims()
	p, d, err := init(key.Fold(1), dim, 0)
	check(err)
	return p, d
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
