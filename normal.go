package flows

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// logSqrt2Pi is log √(2π), the per-dimension constant of a normal density.
var logSqrt2Pi = 0.5 * math.Log(2*math.Pi)

// Normal is the standard normal distribution N(0, I) over rows of width dim,
// the usual prior of a Flow. It has no parameters.
func Normal() DistInitFunc {
	return func(_ Key, dim, _ int) (Params, Distribution, error) {
		if err := checkDim("Normal", dim, 1); err != nil {
			return nil, Distribution{}, err
		}
		logPDF := func(p Params, x, _ *mat.Dense) []float64 {
			checkParams("Normal", p, 0)
			checkWidth("Normal", x, dim)
			n, _ := x.Dims()
			lp := make([]float64, n)
			for i := range lp {
				lp[i] = normalLog(x.RawRowView(i))
			}
			return lp
		}
		sample := func(key Key, p Params, n int, _ *mat.Dense) *mat.Dense {
			checkParams("Normal", p, 0)
			return standardNormal(key, n, dim)
		}
		return Params{}, Distribution{
			LogPDF: logPDF,
			Sample: sample,
			// Prepared, Normal also gives its density over flat rows, which
			// a prepared Flow runs on each row block (see flowLogPDF).
			Prepare: func(p Params) PreparedDistribution {
				checkParams("Normal", p, 0)
				return PreparedDistribution{
					LogPDF: func(x, c *mat.Dense) []float64 { return logPDF(nil, x, c) },
					Sample: func(key Key, n int, c *mat.Dense) *mat.Dense { return sample(key, nil, n, c) },
					logRows: func(lp, x []float64, n int) {
						for i := range lp[:n] {
							lp[i] = normalLog(x[i*dim : (i+1)*dim])
						}
					},
				}
			},
			LogPDFVJP: func(p Params, x, _ *mat.Dense) ([]float64, DistPullback) {
				lp := logPDF(p, x, nil)
				n := len(lp)
				return lp, func(dLogp []float64, dp Params, _ *mat.Dense) *mat.Dense {
					checkDistPullback("Normal", dLogp, dp, n, 0)
					// ∂ log p / ∂x = −x.
					dx := mat.NewDense(n, dim, nil)
					for i := 0; i < n; i++ {
						src, dst := x.RawRowView(i), dx.RawRowView(i)
						for j, v := range src {
							dst[j] = -dLogp[i] * v
						}
					}
					return dx
				}
			},
		}, nil
	}
}

// DiagNormal is a normal distribution with trainable mean and diagonal
// scale, N(μ, diag(σ²)), starting at the standard normal. Parameter layout:
// [μ (dim) | log σ (dim)].
func DiagNormal() DistInitFunc {
	return func(_ Key, dim, _ int) (Params, Distribution, error) {
		if err := checkDim("DiagNormal", dim, 1); err != nil {
			return nil, Distribution{}, err
		}
		np := 2 * dim
		logPDFVJP := func(p Params, x, _ *mat.Dense) ([]float64, DistPullback) {
			checkParams("DiagNormal", p, np)
			checkWidth("DiagNormal", x, dim)
			mu, logSigma := p[:dim], p[dim:]
			n, _ := x.Dims()
			base := -float64(dim) * logSqrt2Pi
			for _, ls := range logSigma {
				base -= ls
			}
			lp := make([]float64, n)
			for i := range lp {
				s := 0.0
				for j, v := range x.RawRowView(i) {
					u := (v - mu[j]) * math.Exp(-logSigma[j])
					s += u * u
				}
				lp[i] = base - 0.5*s
			}
			back := func(dLogp []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkDistPullback("DiagNormal", dLogp, dp, n, np)
				// With u = (x−μ)/σ: ∂/∂x = −u/σ, ∂/∂μ = u/σ, ∂/∂log σ = u² − 1.
				dx := mat.NewDense(n, dim, nil)
				for i := 0; i < n; i++ {
					src, dst := x.RawRowView(i), dx.RawRowView(i)
					g := dLogp[i]
					for j, v := range src {
						inv := math.Exp(-logSigma[j])
						u := (v - mu[j]) * inv
						dst[j] = -g * u * inv
						dp[j] += g * u * inv
						dp[dim+j] += g * (u*u - 1)
					}
				}
				return dx
			}
			return lp, back
		}
		return make(Params, np), Distribution{
			LogPDF: func(p Params, x, _ *mat.Dense) []float64 {
				lp, _ := logPDFVJP(p, x, nil)
				return lp
			},
			Sample: func(key Key, p Params, n int, _ *mat.Dense) *mat.Dense {
				checkParams("DiagNormal", p, np)
				x := standardNormal(key, n, dim)
				for i := 0; i < n; i++ {
					row := x.RawRowView(i)
					for j := range row {
						row[j] = p[j] + math.Exp(p[dim+j])*row[j]
					}
				}
				return x
			},
			LogPDFVJP: logPDFVJP,
		}, nil
	}
}

// normalLog is the standard normal log density of one row x,
// −½·Σx_j² − len(x)·log √(2π), the squares added in column order.
func normalLog(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return -0.5*s - float64(len(x))*logSqrt2Pi
}

// standardNormal draws an n×dim matrix of independent N(0, 1) entries.
func standardNormal(key Key, n, dim int) *mat.Dense {
	if n < 0 {
		panic("flows: negative sample count")
	}
	rng := key.Rand()
	data := make([]float64, n*dim)
	for i := range data {
		data[i] = rng.NormFloat64()
	}
	if n == 0 {
		return &mat.Dense{}
	}
	return mat.NewDense(n, dim, data)
}

// checkDistPullback panics with a flows: message when the gradients handed
// to a distribution's pullback do not match the evaluation's shapes.
func checkDistPullback(who string, dLogp []float64, dp Params, n, np int) {
	if len(dLogp) != n {
		panic("flows: " + who + ": log-density gradient length does not match the batch")
	}
	if len(dp) != np {
		panic("flows: " + who + ": parameter gradient length does not match the parameters")
	}
}
