// Command moons trains a RealNVP/Glow-style flow (ActNorm, invertible
// linear mixing and affine couplings) on the two-moons density, reports the
// training and held-out negative log-likelihood per epoch, and writes
// samples.png and density.png.
//
//	go run ./examples/moons [-epochs 100] [-out .]
package main

import (
	"flag"
	"fmt"
	"log"
	"path/filepath"
	"time"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/toy"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

func main() {
	epochs := flag.Int("epochs", 100, "passes over the training set")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	out := flag.String("out", ".", "folder for samples.png and density.png")
	flag.Parse()
	if err := run(*epochs, *seed, *out); err != nil {
		log.Fatal(err)
	}
}

func run(epochs int, seed uint64, out string) error {
	keys := flows.NewKey(seed).Split(5)
	const nTrain = 8192
	train, test := toy.Moons(keys[0], nTrain), toy.Moons(keys[1], 2048)

	// Six blocks of ActNorm → invertible linear mixing → affine coupling,
	// each coupling's conditioner a ReLU MLP with two hidden layers of 64.
	var layers []flows.InitFunc
	for range 6 {
		layers = append(layers, flows.ActNorm(), flows.InvertibleLinear(),
			flows.AffineCoupling(flows.MLP([]int{64, 64}, flows.ReLU)))
	}
	params, model, err := flows.Flow(flows.Serial(layers...), flows.Normal())(keys[2], 2, 0)
	if err != nil {
		return err
	}
	// ActNorm's data-dependent initialisation, through Flow and Serial.
	flows.InitFromData(model, params, train, nil)

	const batch = 256
	steps := epochs * (nTrain / batch)
	opt := optim.NewAdam(len(params))
	sched := optim.Cosine(2e-3, 1e-4)
	grad := make(flows.Params, len(params))
	rng := keys[3].Rand()
	xb := mat.NewDense(batch, 2, nil)
	start := time.Now()
	fmt.Printf("%d parameters, %d steps of %d rows\n", len(params), steps, batch)
	fmt.Println("epoch  train NLL  held-out NLL  (nats)")
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
		fmt.Printf("%5d  %9.4f  %12.4f\n", epoch, sum/float64(nTrain/batch), heldOut)
	}
	fmt.Printf("trained in %.1fs\n", time.Since(start).Seconds())

	box := figs.BoxOf(test)
	samples := model.Sample(keys[4], params, 2048, nil)
	if err := figs.Scatter(filepath.Join(out, "samples.png"), figs.Labels{Title: "two moons: held-out data and flow samples", X: "x₁", Y: "x₂"},
		box, figs.Set{Name: "held-out data", Points: test}, figs.Set{Name: "flow samples", Points: samples}); err != nil {
		return err
	}
	if err := figs.Density(filepath.Join(out, "density.png"), figs.Labels{Title: "two moons: flow density", X: "x₁", Y: "x₂"}, box, 200, figs.Linear,
		func(x *mat.Dense) []float64 { return model.LogPDF(params, x, nil) }); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(out, "samples.png"), "and", filepath.Join(out, "density.png"))
	return nil
}
