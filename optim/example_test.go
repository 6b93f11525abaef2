package optim_test

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// normal is a 1-D Gaussian with parameters p = (μ, log σ) and hand-written
// gradients. A real model would be a flows.Flow; the training loop is the
// same.
func normal() flows.Distribution {
	logPDF := func(p flows.Params, x, c *mat.Dense) []float64 {
		n, _ := x.Dims()
		logp := make([]float64, n)
		for i := range logp {
			z := (x.At(i, 0) - p[0]) * math.Exp(-p[1])
			logp[i] = -z*z/2 - p[1] - math.Log(2*math.Pi)/2
		}
		return logp
	}
	return flows.Distribution{
		LogPDF: logPDF,
		LogPDFVJP: func(p flows.Params, x, _ *mat.Dense) ([]float64, flows.DistPullback) {
			back := func(dLogp []float64, dp flows.Params, _ *mat.Dense) *mat.Dense {
				n, _ := x.Dims()
				dx := mat.NewDense(n, 1, nil)
				for i := range n {
					z := (x.At(i, 0) - p[0]) * math.Exp(-p[1])
					dp[0] += dLogp[i] * z * math.Exp(-p[1]) // ∂/∂μ
					dp[1] += dLogp[i] * (z*z - 1)           // ∂/∂log σ
					dx.Set(i, 0, -dLogp[i]*z*math.Exp(-p[1]))
				}
				return dx
			}
			return logPDF(p, x, nil), back
		},
	}
}

// Example fits a Gaussian by maximum likelihood with Adam, a warmup-cosine
// schedule and gradient clipping, and compares the fit with the closed-form
// estimates (the sample mean and standard deviation).
func Example() {
	d := normal()
	train := mat.NewDense(8, 1, []float64{1.2, 2.9, 2.1, 1.7, 2.4, 1.6, 2.6, 1.5})
	valid := mat.NewDense(3, 1, []float64{1.9, 2.3, 1.4})

	p := flows.Params{0, 0} // μ = 0, σ = 1
	grad := make(flows.Params, len(p))
	opt := optim.NewAdam(len(p))
	sched := optim.WarmupCosine(0.05, 1e-4, 50)
	const total = 2000
	for range total {
		if _, err := optim.NLL(d, p, train, nil, grad); err != nil {
			fmt.Println(err)
			return
		}
		optim.ClipGlobalNorm(grad, 10)
		opt.StepLR(p, grad, sched(opt.Steps(), total))
	}

	mean := mat.Sum(train) / 8
	var ss float64
	for i := range 8 {
		ss += (train.At(i, 0) - mean) * (train.At(i, 0) - mean)
	}
	fmt.Printf("μ = %.3f (sample mean %.3f)\n", p[0], mean)
	fmt.Printf("σ = %.3f (sample std  %.3f)\n", math.Exp(p[1]), math.Sqrt(ss/8))
	trainNLL, _ := optim.NLLValue(d, p, train, nil)
	validNLL, _ := optim.NLLValue(d, p, valid, nil)
	fmt.Printf("NLL: train %.3f, valid %.3f\n", trainNLL, validNLL)

	// A batch with a NaN is rejected before the model sees it.
	train.Set(5, 0, math.NaN())
	_, err := optim.NLL(d, p, train, nil, grad)
	fmt.Println(err)

	// Output:
	// μ = 2.000 (sample mean 2.000)
	// σ = 0.557 (sample std  0.557)
	// NLL: train 0.833, valid 0.581
	// optim: row 5, column 0 of the batch is NaN
}
