package flows_test

import (
	"fmt"
	"math"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

// A bijection: init with a key and a dimension, then map forward and back.
// (The README's "Bijections" section.)
func ExampleSerial() {
	init := flows.Serial(
		flows.AffineCoupling(flows.MLP([]int{16, 16}, flows.ReLU)),
		flows.InvertibleLinear(),
		flows.ActNorm(),
	)
	params, layer, err := init(flows.NewKey(0), 5, 0)
	if err != nil {
		panic(err)
	}
	inputs := mat.NewDense(2, 5, []float64{1, 2, 3, 4, 5, -1, 0, 1, 0, -1})

	transformed, logDetDirect := layer.Direct(params, inputs, nil)
	reconstructed, logDetInverse := layer.Inverse(params, transformed, nil)

	fmt.Println(mat.EqualApprox(inputs, reconstructed, 1e-12))
	fmt.Printf("%.6f\n", logDetDirect[0]+logDetInverse[0])
	// Output:
	// true
	// 0.000000
}

// A distribution: log densities and samples. (The README's
// "Distributions" section.)
func ExampleNormal() {
	params, normal, err := flows.Normal()(flows.NewKey(0), 2, 0)
	if err != nil {
		panic(err)
	}
	logPDFs := normal.LogPDF(params, mat.NewDense(1, 2, []float64{0, 0}), nil)
	samples := normal.Sample(flows.NewKey(1), params, 3, nil)

	fmt.Printf("log p(0) = %.4f = −log 2π\n", logPDFs[0])
	fmt.Println(samples.Dims())
	// Output:
	// log p(0) = -1.8379 = −log 2π
	// 3 2
}

// A normalizing flow is a distribution made of a bijection and a prior.
// (The README's "Normalizing flow models" section.)
func ExampleFlow() {
	bijection := flows.Serial(
		flows.AffineCoupling(flows.MLP([]int{16, 16}, flows.ReLU)),
		flows.InvertibleLinear(),
		flows.ActNorm(),
	)
	prior := flows.Normal()
	params, model, err := flows.Flow(bijection, prior)(flows.NewKey(0), 5, 0)
	if err != nil {
		panic(err)
	}
	inputs := mat.NewDense(1, 5, []float64{0, 0, 0, 0, 0})
	logPDFs := model.LogPDF(params, inputs, nil)
	samples := model.Sample(flows.NewKey(1), params, 100, nil)

	// At init every layer is volume-preserving, so the flow's density at
	// the origin is the standard normal's.
	fmt.Printf("%.4f %.4f\n", logPDFs[0], -2.5*math.Log(2*math.Pi))
	fmt.Println(samples.Dims())
	// Output:
	// -4.5947 -4.5947
	// 100 5
}

// Training: the gradient of the mean negative log-likelihood drives Adam.
// (The README's "How do I train a model?" section.)
func Example_training() {
	params, model, err := flows.Flow(
		flows.Serial(flows.ActNorm(), flows.AffineCoupling(flows.MLP([]int{32}, flows.Tanh)), flows.Reverse(),
			flows.AffineCoupling(flows.MLP([]int{32}, flows.Tanh))),
		flows.Normal(),
	)(flows.NewKey(0), 2, 0)
	if err != nil {
		panic(err)
	}
	// Data: a correlated Gaussian the prior does not match.
	rng := flows.NewKey(1).Rand()
	X := mat.NewDense(512, 2, nil)
	for i := 0; i < 512; i++ {
		a := rng.NormFloat64()
		X.Set(i, 0, 3+a)
		X.Set(i, 1, -1+0.8*a+0.3*rng.NormFloat64())
	}
	flows.InitFromData(model, params, X, nil) // ActNorm's data-dependent init

	before, _ := optim.NLLValue(model, params, X, nil)
	grad := make(flows.Params, len(params))
	opt := optim.NewAdam(len(params))
	batchSize := 64
	for epoch := 0; epoch < 30; epoch++ {
		for b := 0; b < 512; b += batchSize {
			batch := X.Slice(b, b+batchSize, 0, 2).(*mat.Dense)
			if _, err := optim.NLL(model, params, batch, nil, grad); err != nil {
				panic(err)
			}
			opt.Step(params, grad)
		}
	}
	after, _ := optim.NLLValue(model, params, X, nil)
	fmt.Println("NLL went down:", after < before-0.5)
	// Output:
	// NLL went down: true
}

// A conditional flow: log p(x | c) and samples given c, from the same layers
// given a context width. (The README's "Conditional flows" section.)
func ExampleFlow_conditional() {
	const dim, contextDim = 2, 3
	init := flows.Flow(flows.Serial(
		flows.AffineCoupling(flows.MLP([]int{64, 64}, flows.ReLU)),
		flows.Reverse(),
		flows.MAF(flows.MADEConfig{Hidden: []int{64, 64}}),
	), flows.Normal())
	params, model, err := init(flows.NewKey(0), dim, contextDim)
	if err != nil {
		panic(err)
	}
	x := mat.NewDense(2, dim, []float64{0, 0, 1, -1})
	context := mat.NewDense(2, contextDim, []float64{1, 0, 0, 0, 0, 1}) // one row per example
	logPDFs := model.LogPDF(params, x, context)
	samples := model.Sample(flows.NewKey(1), params, 2, context)

	// At init every layer is the identity, whatever the context.
	fmt.Printf("%.4f %.4f\n", logPDFs[0], -math.Log(2*math.Pi))
	fmt.Println(samples.Dims())
	// Output:
	// -1.8379 -1.8379
	// 2 2
}

// A flow whose nets compute their products in float32: the precision is set
// where each net is described (MLPConfig here, MADEConfig for MAF); the
// parameters, the log density and its gradient stay float64.
func ExampleMLPWith() {
	net := flows.MLPWith(flows.MLPConfig{Hidden: []int{64, 64}, Act: flows.ReLU, Precision: flows.Float32})
	flow := flows.Flow(flows.Serial(flows.AffineCoupling(net), flows.Reverse(), flows.AffineCoupling(net)), flows.Normal())
	params, model, err := flow(flows.NewKey(1), 2, 0)
	if err != nil {
		panic(err)
	}
	// At init the couplings are the identity: log p(0) = −log 2π.
	logPDFs := model.LogPDF(params, mat.NewDense(1, 2, []float64{0, 0}), nil)
	fmt.Printf("%.4f %.4f\n", logPDFs[0], -math.Log(2*math.Pi))
	// Output:
	// -1.8379 -1.8379
}
