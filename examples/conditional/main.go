// Command conditional trains a conditional normalizing flow p(x | label) on
// three 2-D toy densities selected by a one-hot label (0: two moons,
// 1: two concentric circles, 2: eight Gaussians on a ring), reports the
// held-out conditional negative log-likelihood, and writes, for each label,
// the learned density given that label and samples drawn given it.
//
// The flow is Flow(Serial(…), Normal()) made with a context of three
// columns, the one-hot label: blocks of ActNorm and invertible linear mixing
// (which ignore the label) and affine couplings whose conditioners see
// [x1 | label]. Training is optim.Fit, given the labels as the context.
//
//	go run ./examples/conditional [-epochs 170] [-out .]
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"path/filepath"
	"time"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

// labels names the densities, by label.
var labels = []string{"moons", "circles", "8gaussians"}

func main() {
	epochs := flag.Int("epochs", 170, "passes over the training rows, in steps of 256 rows")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	out := flag.String("out", ".", "folder for the PNGs")
	flag.Parse()
	if err := run(*epochs, *seed, *out); err != nil {
		log.Fatal(err)
	}
}

// draw returns n points of the density with the given label.
func draw(key flows.Key, label, n int) *mat.Dense {
	if label == 0 {
		return toy.Moons(key, n)
	}
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		var a, b float64
		switch label {
		case 1: // circles of radius 1.2 and 3, equally likely, noise 0.1
			t := 2 * math.Pi * rng.Float64()
			r := 1.2
			if rng.IntN(2) == 1 {
				r = 3
			}
			a, b = r*math.Cos(t)+0.1*rng.NormFloat64(), r*math.Sin(t)+0.1*rng.NormFloat64()
		case 2: // eight Gaussians of σ 0.2 on a ring of radius 2.8
			t := 2 * math.Pi * float64(rng.IntN(8)) / 8
			a, b = 2.8*math.Cos(t)+0.2*rng.NormFloat64(), 2.8*math.Sin(t)+0.2*rng.NormFloat64()
		}
		x.Set(i, 0, a)
		x.Set(i, 1, b)
	}
	return x
}

// dataset draws n points per label, stacked, with their one-hot labels.
func dataset(key flows.Key, n int) (x, c *mat.Dense, lab []int) {
	keys := key.Split(len(labels))
	k := len(labels)
	x = mat.NewDense(n*k, 2, nil)
	c = mat.NewDense(n*k, k, nil)
	lab = make([]int, n*k)
	for l := range labels {
		d := draw(keys[l], l, n)
		for i := 0; i < n; i++ {
			x.SetRow(l*n+i, d.RawRowView(i))
			c.Set(l*n+i, l, 1)
			lab[l*n+i] = l
		}
	}
	return x, c, lab
}

// oneHot returns n copies of the one-hot row of label.
func oneHot(label, n int) *mat.Dense {
	c := mat.NewDense(n, len(labels), nil)
	for i := 0; i < n; i++ {
		c.Set(i, label, 1)
	}
	return c
}

// meanNLL is −mean log p(x | c).
func meanNLL(d flows.Distribution, p flows.Params, x, c *mat.Dense) float64 {
	s := 0.0
	lp := d.LogPDF(p, x, c)
	for _, v := range lp {
		s -= v
	}
	return s / float64(len(lp))
}

func run(epochs int, seed uint64, out string) error {
	keys := flows.NewKey(seed).Split(6)
	const perLabel, perLabelTest = 4096, 1024
	train, trainC, _ := dataset(keys[0], perLabel)
	test, testC, testLab := dataset(keys[1], perLabelTest)
	nTrain, _ := train.Dims()
	k := len(labels)

	// Eight blocks of ActNorm → invertible linear mixing → affine coupling;
	// each conditioner a ReLU MLP with two hidden layers of 64, fed
	// [x1 | one-hot label].
	var layers []flows.InitFunc
	for range 8 {
		layers = append(layers,
			flows.ActNorm(),
			flows.InvertibleLinear(),
			flows.AffineCoupling(flows.MLP([]int{64, 64}, flows.ReLU)))
	}
	params, model, err := flows.Flow(flows.Serial(layers...), flows.Normal())(keys[2], 2, k)
	if err != nil {
		return err
	}
	flows.InitFromData(model, params, train, trainC)

	const batch = 256
	start := time.Now()
	fmt.Printf("%d parameters, %d epochs of %d steps of %d rows, %d training points (%d per label)\n",
		len(params), epochs, nTrain/batch, batch, nTrain, perLabel)
	fmt.Println("epoch  train NLL  held-out NLL  (nats, conditional)")
	_, err = optim.Fit(keys[3], model, params, train, trainC, optim.FitConfig{
		Epochs:      epochs,
		BatchSize:   batch,
		Schedule:    optim.Cosine(2e-3, 1e-4),
		ClipNorm:    10,
		ValFraction: -1, // the held-out set is scored separately below
		Progress: func(pr optim.Progress) {
			if pr.Epoch%max(1, epochs/10) == 0 || pr.Epoch == epochs {
				fmt.Printf("%5d  %9.4f  %12.4f\n", pr.Epoch, pr.TrainNLL, meanNLL(model, params, test, testC))
			}
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("trained in %.1fs\n", time.Since(start).Seconds())

	// The conditional densities also classify: with equal label priors,
	// Bayes' rule picks argmax_l p(x | l). Its held-out accuracy shows how
	// much the label changes the density.
	n, _ := test.Dims()
	best := make([]float64, n)
	guess := make([]int, n)
	for l := 0; l < k; l++ {
		for i, v := range model.LogPDF(params, test, oneHot(l, n)) {
			if l == 0 || v > best[i] {
				best[i], guess[i] = v, l
			}
		}
	}
	right := 0
	for i, l := range testLab {
		if guess[i] == l {
			right++
		}
	}
	fmt.Printf("held-out conditional NLL %.4f nats; label recovered by argmax_l p(x | l) for %.1f%% of held-out points\n",
		meanNLL(model, params, test, testC), 100*float64(right)/float64(n))
	box := figs.BoxOf(test) // one frame for every label, so that the pictures compare
	sampleKeys := keys[4].Split(k)
	for l, name := range labels {
		rows := test.Slice(l*perLabelTest, (l+1)*perLabelTest, 0, 2).(*mat.Dense)
		ctx := testC.Slice(l*perLabelTest, (l+1)*perLabelTest, 0, k).(*mat.Dense)
		fmt.Printf("  label %d (%s): held-out NLL %.4f\n", l, name, meanNLL(model, params, rows, ctx))
		dens := filepath.Join(out, fmt.Sprintf("density_%d_%s.png", l, name))
		// A log scale: a label's density has sharp peaks that a linear
		// scale would show alone.
		if err := figs.Density(dens, figs.Labels{Title: fmt.Sprintf("p(x | label %d: %s)", l, name), X: "x₁", Y: "x₂"}, box, 200, figs.Log, func(x *mat.Dense) []float64 {
			r, _ := x.Dims()
			return model.LogPDF(params, x, oneHot(l, r))
		}); err != nil {
			return err
		}
		samples := model.Sample(sampleKeys[l], params, perLabelTest, oneHot(l, perLabelTest))
		smp := filepath.Join(out, fmt.Sprintf("samples_%d_%s.png", l, name))
		if err := figs.Scatter(smp, figs.Labels{Title: fmt.Sprintf("label %d (%s): held-out data and samples given the label", l, name), X: "x₁", Y: "x₂"},
			box, figs.Set{Name: "held-out data", Points: rows}, figs.Set{Name: "samples given the label", Points: samples}); err != nil {
			return err
		}
		fmt.Println("  wrote", dens, "and", smp)
	}
	return nil
}
