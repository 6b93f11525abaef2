// Command cnf fits a continuous normalizing flow (FFJORD: flows.CNF with
// the exact trace and the adjoint method) to one of the FFJORD toy
// densities with optim.Fit, and prints per epoch the training and
// validation NLL and the number of function evaluations (NFE) of the
// dynamics per training step, forwards and backwards (counted by the
// layer's Stats hook; optim.NLL solves a batch of more than 128 rows in
// chunks, each its own solve), then the held-out NLL on a separate test
// set (at -evaltol) and its gap to the density's entropy.
//
// It writes into -out NAME_cnf.png (the fitted density) and
// NAME_cnf_trajectories.png (samples moving from the prior at t = 0 to the
// data at t = T).
//
//	go run ./examples/cnf [-density 8gaussians] [-ntrain 8192] [-epochs 10] [-batch 256] [-lr 3e-3] [-hidden 64,64] [-out .]
//
// The recipe of QUALITY.md's toy table (2,760 steps of 128 rows, DOPRI5 at
// 1e-4 for training and 1e-5 for the test NLL; -bias starts the net's
// biases at random, which took circles off the best Gaussian's plateau):
//
//	go run ./examples/cnf -density NAME -ntrain 65536 -epochs 6 -batch 128 -lr 5e-3 -tol 1e-4 -evaltol 1e-5 [-bias]
//
// and the longer schedule that took 2spirals and rings within 0.05 nats of the
// spline flow (5,520 steps: -epochs 12 -bias, the rest as above), and
// checkerboard with a wider net as well (-hidden 128,128).
//
// With -kinetic and -jacobian it adds RNODE's regularisers (flows.CNFPenalty,
// through optim.FitConfig.Penalty), solved by -pensteps RK4 steps (or by
// the layer's DOPRI5), and reports their NFE and mean value per epoch:
//
//	go run ./examples/cnf -density 8gaussians -ntrain 16384 -epochs 12 -lr 5e-3 -kinetic 0.01 -jacobian 0.01 -pensteps 4
//
// With -timing N it instead runs N training steps of the loop that
// zuko_timing.py runs for zuko's CNF (a fresh batch from the density each
// step, Adam at the constant rate -lr, DOPRI5 at -tol and -atol, the
// gradient by -grad adjoint or backprop) and prints the steps per second
// the CPU seconds per step (all threads) and the NFE per step:
//
//	go run ./examples/cnf -timing 300 -lr 1e-3 -atol 1e-6 -grad backprop
package main

import (
	"flag"
	"fmt"
	"image/color"
	"log"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/optim"
)

// settings are the command's flags for a fit.
type settings struct {
	density                string
	nTrain, nTest, epochs  int
	batch, patience        int
	lr, tol, evalTol, time float64
	hidden                 []int
	kinetic, jacobian      float64
	penSteps               int
	seed                   uint64
	out                    string
	pictures, bias, std    bool
}

func main() {
	var s settings
	flag.StringVar(&s.density, "density", "8gaussians", "the toy density")
	flag.IntVar(&s.nTrain, "ntrain", 8192, "training rows (10% held out for early stopping)")
	flag.IntVar(&s.nTest, "ntest", 8192, "test rows")
	flag.IntVar(&s.epochs, "epochs", 10, "most passes over the training rows")
	flag.IntVar(&s.batch, "batch", 256, "rows per step")
	flag.IntVar(&s.patience, "patience", -1, "early stopping's patience in epochs (-1: none, keep the best epoch)")
	flag.Float64Var(&s.lr, "lr", 3e-3, "peak learning rate (cosine schedule)")
	flag.Float64Var(&s.tol, "tol", 1e-5, "DOPRI5's relative and absolute tolerance")
	flag.Float64Var(&s.evalTol, "evaltol", 0, "DOPRI5's tolerance for the test NLL and the pictures (default -tol)")
	flag.Float64Var(&s.time, "T", 1, "the integration time")
	hidden := flag.String("hidden", "64,64", "the dynamics net's hidden widths")
	flag.Float64Var(&s.kinetic, "kinetic", 0, "RNODE's weight of the kinetic energy ∫‖f‖² dt (0: off)")
	flag.Float64Var(&s.jacobian, "jacobian", 0, "RNODE's weight of the Jacobian norm ∫‖∂f/∂z‖²_F dt (0: off)")
	flag.IntVar(&s.penSteps, "pensteps", 0, "RK4 steps of the regulariser's solve (0: DOPRI5 at -tol, as the layer)")
	flag.Uint64Var(&s.seed, "seed", 1, "seed of every random choice")
	flag.StringVar(&s.out, "out", ".", "folder for the pictures")
	flag.BoolVar(&s.pictures, "pictures", true, "write the pictures")
	flag.BoolVar(&s.bias, "bias", false, "start the net's hidden biases at random (CNFConfig.RandomBias)")
	flag.BoolVar(&s.std, "std", false, "standardise the columns (by the training rows' mean and deviation) before the CNF")
	timing := flag.Int("timing", 0, "run this many steps of the timing loop instead of a fit")
	atol := flag.Float64("atol", 0, "DOPRI5's absolute tolerance in the timing loop (default -tol)")
	grad := flag.String("grad", "adjoint", "the gradient in the timing loop: adjoint or backprop")
	flag.Parse()
	if *timing > 0 {
		if err := timingLoop(*timing, s.batch, s.lr, s.tol, *atol, *grad, s.seed); err != nil {
			log.Fatal(err)
		}
		return
	}
	for _, f := range strings.Split(*hidden, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			log.Fatalf("-hidden %q: %v", *hidden, err)
		}
		s.hidden = append(s.hidden, w)
	}
	if s.evalTol == 0 {
		s.evalTol = s.tol
	}
	if err := run(s); err != nil {
		log.Fatal(err)
	}
}

// counter sums the Stats of the layer's solves.
type counter struct {
	mu                sync.Mutex
	forward, backward int // NFE
	backSolves        int
	forwardAtBack     int // forward NFE when the last backward solve ended
	penalty           int // NFE of the regulariser's solves, forward and backward
}

func (c *counter) hook(s flows.CNFStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case s.Penalty:
		c.penalty += s.NFE
	case s.Pass == flows.CNFBackward:
		c.backward += s.NFE
		c.backSolves++
		c.forwardAtBack = c.forward
	default:
		c.forward += s.NFE
	}
}

// penalty returns FitConfig.Penalty for RNODE's regulariser of the flow's
// CNF layer (whose parameters come first in Flow's layout, after
// Standardize's none), whose input is std(x), or nil when both weights are
// zero.
func penalty(s settings, cfg flows.CNFConfig, key flows.Key, nb int, std flows.Bijection) (optim.Penalty, error) {
	if s.kinetic == 0 && s.jacobian == 0 {
		return nil, nil
	}
	cfg.Kinetic, cfg.Jacobian = s.kinetic, s.jacobian
	if s.penSteps > 0 {
		cfg.Solver = flows.ODESolver{Method: flows.RK4, Steps: s.penSteps}
	}
	pen, err := flows.CNFPenalty(key, cfg, 2, 0)
	if err != nil {
		return nil, err
	}
	return func(p flows.Params, x, c *mat.Dense, grad flows.Params) float64 {
		u, _ := std.Direct(nil, x, nil)
		return pen(p[:nb], u, c, grad[:nb])
	}, nil
}

func run(s settings) error {
	dens, err := toy.Lookup(s.density)
	if err != nil {
		return err
	}
	root := flows.NewKey(s.seed)
	// The data keys of examples/toy: the same test rows as its table, and
	// its first nTrain training rows.
	idx := 0
	for i, o := range toy.Densities {
		if o.Name == s.density {
			idx = i
		}
	}
	dk := root.Fold(uint64(idx)).Split(2)
	train, test := dens.Sample(dk[0], s.nTrain), dens.Sample(dk[1], s.nTest)
	k := root.Fold(100).Split(4)

	mean, scale := []float64{0, 0}, []float64{1, 1}
	if s.std {
		for j := 0; j < 2; j++ {
			col := mat.Col(nil, j, train)
			mean[j], scale[j] = stat.MeanStdDev(col, nil)
		}
	}
	_, std, err := flows.Standardize(mean, scale)(k[2], 2, 0)
	if err != nil {
		return err
	}
	flow := func(c flows.CNFConfig) flows.DistInitFunc {
		if !s.std {
			return flows.Flow(flows.CNF(c), flows.Normal())
		}
		return flows.Flow(flows.Serial(flows.Standardize(mean, scale), flows.CNF(c)), flows.Normal())
	}
	var cnt counter
	cfg := flows.CNFConfig{Hidden: s.hidden, Time: s.time, RandomBias: s.bias, Solver: flows.ODESolver{RTol: s.tol, ATol: s.tol}, Trace: flows.TraceExact, Stats: cnt.hook}
	p, d, err := flow(cfg)(k[2], 2, 0)
	if err != nil {
		return err
	}
	pc, _, err := flows.CNF(cfg)(k[2], 2, 0)
	if err != nil {
		return err
	}
	kb, _ := k[2].Split2() // Flow's key of its bijection
	if s.std {
		kb = kb.Split(2)[1] // Serial's key of its layer 1
	}
	pen, err := penalty(s, cfg, kb, len(pc), std)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d training rows, %d test rows, %d parameters, hidden %v, random biases %v, T %g, DOPRI5 at %g, RNODE weights %g, %g\n",
		s.density, s.nTrain, s.nTest, len(p), s.hidden, s.bias, s.time, s.tol, s.kinetic, s.jacobian)
	var prevB, prevSolves, prevAtBack, prevPen, prevStep int
	start := time.Now()
	res, err := optim.Fit(k[3], d, p, train, nil, optim.FitConfig{
		Epochs: s.epochs, BatchSize: s.batch, Schedule: optim.Cosine(s.lr, 0), Patience: s.patience, Penalty: pen,
		Progress: func(pr optim.Progress) {
			cnt.mu.Lock()
			// optim.NLL evaluates a batch of more than 128 rows in chunks,
			// each its own solve: per step, the NFE of all of them.
			steps, solves := pr.Step-prevStep, cnt.backSolves-prevSolves
			fwd := cnt.forwardAtBack - prevAtBack // the training steps' forward solves
			bwd := cnt.backward - prevB
			val := cnt.forward - cnt.forwardAtBack
			pn := cnt.penalty - prevPen
			prevB, prevSolves, prevAtBack, prevPen, prevStep = cnt.backward, cnt.backSolves, cnt.forward, cnt.penalty, pr.Step
			cnt.mu.Unlock()
			fmt.Printf("  epoch %2d: train NLL %.4f, val NLL %.4f, NFE per step %.0f forward + %.0f backward in %.0f solves (+ %.0f regulariser, penalty %.4f), validation NFE %d, %.2f steps/s\n",
				pr.Epoch, pr.TrainNLL, pr.ValNLL, float64(fwd)/float64(steps), float64(bwd)/float64(steps), float64(solves)/float64(steps),
				float64(pn)/float64(steps), pr.TrainPenalty, val, float64(pr.Step)/pr.Elapsed.Seconds())
		},
	})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	ecfg := cfg
	ecfg.Solver = flows.ODESolver{RTol: s.evalTol, ATol: s.evalTol}
	_, ed, err := flow(ecfg)(k[2], 2, 0)
	if err != nil {
		return err
	}
	nfe0 := cnt.forward
	nll, err := optim.NLLValue(ed, p, test, nil)
	if err != nil {
		return err
	}
	fmt.Printf("%s: held-out NLL %.4f at tolerance %g (entropy %.4f, gap %.4f; %d NFE), best epoch %d, %d steps in %.0fs (%.2f steps/s), mean NFE per step %.1f + %.1f regulariser\n",
		s.density, nll, s.evalTol, dens.Entropy, nll-dens.Entropy, cnt.forward-nfe0, res.BestEpoch, res.Steps, secs, float64(res.Steps)/secs,
		float64(cnt.forwardAtBack+cnt.backward)/float64(max(1, res.Steps)), float64(cnt.penalty)/float64(max(1, res.Steps)))
	if !s.pictures {
		return nil
	}
	ecfg.Stats = nil
	return pictures(dens, ed, p, ecfg, std, root.Fold(9), s.out)
}

// pictures draws the fitted density and trajectories of samples from the
// prior (t = 0) to the data side (t = 1): the flow's Inverse with the
// integration time set to t gives the state at t.
func pictures(dens toy.Density, d flows.Distribution, p flows.Params, cfg flows.CNFConfig, std flows.Bijection, key flows.Key, out string) error {
	e := dens.Extent
	box := figs.Box{XMin: -e, XMax: e, YMin: -e, YMax: e}
	path := filepath.Join(out, dens.Name+"_cnf.png")
	labels := figs.Labels{Title: dens.Name + ": CNF", X: "x₁", Y: "x₂"}
	if err := figs.Density(path, labels, box, 160, figs.Linear, func(x *mat.Dense) []float64 { return d.LogPDF(p, x, nil) }); err != nil {
		return err
	}
	const n, frames = 300, 21
	z0 := d.Sample(key, p, n, nil) // only for its shape
	rng := key.Fold(1).Rand()
	for i := 0; i < n; i++ {
		z0.Set(i, 0, rng.NormFloat64())
		z0.Set(i, 1, rng.NormFloat64())
	}
	cfg.Stats = nil
	paths := make([]plotter.XYs, n)
	pc, _, err := flows.CNF(cfg)(flows.NewKey(0), 2, 0)
	if err != nil {
		return err
	}
	flowParams := p[:len(pc)] // the CNF's parameters come first in Flow's layout
	for f := 0; f < frames; f++ {
		t := float64(f) / (frames - 1)
		x := z0
		if t > 0 {
			c := cfg
			c.Time = t * cfg.Time
			_, bj, err := flows.CNF(c)(flows.NewKey(0), 2, 0)
			if err != nil {
				return err
			}
			x, _ = bj.Inverse(flowParams, z0, nil)
		}
		x, _ = std.Inverse(nil, x, nil)
		for i := 0; i < n; i++ {
			paths[i] = append(paths[i], plotter.XY{X: x.At(i, 0), Y: x.At(i, 1)})
		}
	}
	pl := plotter.XYs{}
	pl0 := plotter.XYs{}
	pt := figs.Labels{Title: dens.Name + ": from the prior (t = 0, blue) to the data (t = 1, red)", X: "x₁", Y: "x₂"}
	plt := plot.New()
	plt.Title.Text, plt.X.Label.Text, plt.Y.Label.Text = pt.Title, pt.X, pt.Y
	plt.X.Min, plt.X.Max, plt.Y.Min, plt.Y.Max = box.XMin, box.XMax, box.YMin, box.YMax
	for _, xy := range paths {
		line, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		line.Color = color.NRGBA{R: 90, G: 90, B: 90, A: 70}
		line.Width = vg.Points(0.5)
		plt.Add(line)
		pl0 = append(pl0, xy[0])
		pl = append(pl, xy[len(xy)-1])
	}
	for _, s := range []struct {
		xy plotter.XYs
		c  color.NRGBA
	}{{pl0, color.NRGBA{B: 200, A: 220}}, {pl, color.NRGBA{R: 200, A: 220}}} {
		sc, err := plotter.NewScatter(s.xy)
		if err != nil {
			return err
		}
		sc.GlyphStyle = draw.GlyphStyle{Shape: draw.CircleGlyph{}, Radius: vg.Points(1.5), Color: s.c}
		plt.Add(sc)
	}
	tpath := filepath.Join(out, dens.Name+"_cnf_trajectories.png")
	if err := figs.SavePlot(tpath, plt, 6*vg.Inch, 6*vg.Inch); err != nil {
		return err
	}
	fmt.Println("wrote", path, "and", tpath)
	return nil
}

// timingLoop runs steps training steps on fresh batches of 8gaussians and
// prints the steps per second and the NFE per step (see the command's
// comment).
func timingLoop(steps, batch int, lr, rtol, atol float64, grad string, seed uint64) error {
	if atol == 0 {
		atol = rtol
	}
	var cnt counter
	cfg := flows.CNFConfig{Hidden: []int{64, 64}, Solver: flows.ODESolver{RTol: rtol, ATol: atol}, Trace: flows.TraceExact, Stats: cnt.hook}
	switch grad {
	case "adjoint":
	case "backprop":
		cfg.Gradient = flows.BackpropSteps
	default:
		return fmt.Errorf("-grad %q: want adjoint or backprop", grad)
	}
	root := flows.NewKey(seed)
	p, d, err := flows.Flow(flows.CNF(cfg), flows.Normal())(root.Fold(0), 2, 0)
	if err != nil {
		return err
	}
	opt := optim.NewAdam(len(p))
	g := make([]float64, len(p))
	var last []float64
	start, cpu0 := time.Now(), cpuSeconds()
	for s := 0; s < steps; s++ {
		x := toy.EightGaussians(root.Fold(uint64(s+1)), batch)
		loss, err := optim.NLL(d, p, x, nil, g)
		if err != nil {
			return fmt.Errorf("step %d: %w", s, err)
		}
		opt.StepLR(p, g, lr)
		last = append(last, loss)
	}
	secs, cpu := time.Since(start).Seconds(), cpuSeconds()-cpu0
	var tail float64
	for _, v := range last[max(0, len(last)-10):] {
		tail += v / float64(min(10, len(last)))
	}
	fmt.Printf("{\"library\": \"flows\", \"gradient\": %q, \"steps\": %d, \"steps_per_s\": %.3f, \"cpu_s_per_step\": %.4f, \"nfe_forward_per_step\": %.1f, \"nfe_backward_per_step\": %.1f, \"last_loss_mean10\": %.4f}\n",
		grad, steps, float64(steps)/secs, cpu/float64(steps), float64(cnt.forward)/float64(steps), float64(cnt.backward)/float64(steps), tail)
	return nil
}

// cpuSeconds returns the user and system CPU time of the process so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
