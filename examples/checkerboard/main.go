// Command checkerboard trains a rational-quadratic neural spline flow,
// RQ-NSF (C) of Durkan et al. (2019), on the two-dimensional checkerboard
// density, reports the training and held-out negative log-likelihood per
// epoch and their gap to the density's true entropy, and writes
// density.png and samples.png.
//
//	go run ./examples/checkerboard [-epochs 20] [-seed 1] [-out .]
//
// The checkerboard is uniform on eight 2×2 squares of [−4, 4]², so its
// density is 1/32 there and its entropy, the best NLL any model can reach,
// is log 32 ≈ 3.4657 nats. Its sharp edges are hard for affine couplings
// and easy for splines: each coupling's spline bends a whole column of
// squares at once.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"path/filepath"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/optim"
)

// entropy is the checkerboard's differential entropy, log 32 nats.
var entropy = math.Log(32)

func main() {
	epochs := flag.Int("epochs", 20, "passes over the training set")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	out := flag.String("out", ".", "folder for samples.png and density.png")
	flag.Parse()
	if err := run(*epochs, *seed, *out); err != nil {
		log.Fatal(err)
	}
}

func run(epochs int, seed uint64, out string) error {
	keys := flows.NewKey(seed).Split(5)
	const nTrain = 65536
	train, test := toy.Checkerboard(keys[0], nTrain), toy.Checkerboard(keys[1], 8192)

	// Eight spline couplings, each transforming one coordinate given the
	// other (Reverse between them), each conditioner a ReLU MLP with two
	// hidden layers of 64 giving the 3K−1 knot parameters of a spline of
	// K = 16 bins on [−4, 4], which contains all the data.
	spline := flows.SplineConfig{Bins: 16, Bound: 4}
	var layers []flows.InitFunc
	for i := range 8 {
		if i > 0 {
			layers = append(layers, flows.Reverse())
		}
		layers = append(layers, flows.NeuralSplineCoupling(flows.MLP([]int{64, 64}, flows.ReLU), spline))
	}
	params, model, err := flows.Flow(flows.Serial(layers...), flows.Normal())(keys[2], 2, 0)
	if err != nil {
		return err
	}

	const batch = 256
	steps := epochs * (nTrain / batch)
	opt := optim.NewAdam(len(params))
	sched := optim.Cosine(1e-3, 1e-5)
	grad := make(flows.Params, len(params))
	rng := keys[3].Rand()
	xb := mat.NewDense(batch, 2, nil)
	start := time.Now()
	fmt.Printf("%d parameters, %d steps of %d rows; true entropy %.4f nats\n", len(params), steps, batch, entropy)
	fmt.Println("epoch  train NLL  held-out NLL  gap to entropy  (nats)")
	for epoch := 1; epoch <= epochs; epoch++ {
		perm := rng.Perm(nTrain)
		sum := 0.0
		for b := 0; b+batch <= len(perm); b += batch {
			for i := 0; i < batch; i++ {
				xb.SetRow(i, train.RawRowView(perm[b+i]))
			}
			loss, err := optim.NLL(model, params, xb, nil, grad)
			if err != nil {
				return fmt.Errorf("epoch %d: %w", epoch, err)
			}
			optim.ClipGlobalNorm(grad, 10)
			opt.StepLR(params, grad, sched(opt.Steps(), steps))
			sum += loss
		}
		heldOut, err := optim.NLLValue(model, params, test, nil)
		if err != nil {
			return err
		}
		fmt.Printf("%5d  %9.4f  %12.4f  %14.4f\n", epoch, sum/float64(nTrain/batch), heldOut, heldOut-entropy)
	}
	fmt.Printf("trained in %.1fs\n", time.Since(start).Seconds())

	box := figs.BoxOf(test)
	samples := model.Sample(keys[4], params, 4096, nil)
	if err := figs.Scatter(filepath.Join(out, "samples.png"), figs.Labels{Title: "checkerboard: held-out data and RQ-NSF samples", X: "x₁", Y: "x₂"},
		box, figs.Set{Name: "held-out data", Points: test}, figs.Set{Name: "RQ-NSF samples", Points: samples}); err != nil {
		return err
	}
	if err := figs.Density(filepath.Join(out, "density.png"), figs.Labels{Title: "checkerboard: RQ-NSF (coupling) density", X: "x₁", Y: "x₂"}, box, 300, figs.Linear,
		func(x *mat.Dense) []float64 { return model.LogPDF(params, x, nil) }); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(out, "samples.png"), "and", filepath.Join(out, "density.png"))
	return nil
}
