package flows_test

import (
	"math"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
	"gonum.org/v1/gonum/mat"
)

// scalePerturb moves every parameter by N(0, sd²), farther than the
// suite's default 0.2 for layers that start as the identity.
func scalePerturb(sd float64) func(flows.Key, flows.Params) flows.Params {
	return func(key flows.Key, p flows.Params) flows.Params {
		rng := key.Rand()
		q := append(flows.Params(nil), p...)
		for i := range q {
			q[i] += sd * rng.NormFloat64()
		}
		return q
	}
}

// TestVIFlowsFitVI checks that optim.FitVI trains each classic VI flow
// through its InverseVJP: on a correlated, shifted 2-D Gaussian target,
// whose log Z is known, stacks of 8 of each go from the reverse KL of the
// identity map (the standard normal base), 56.8 nats, to a few hundredths
// (planar, Sylvester: 0.014 and 0.012 in 800 steps) or a tenth (radial,
// 0.11); the bounds leave a margin of about 4 for other kernels' rounding.
func TestVIFlowsFitVI(t *testing.T) {
	if testing.Short() {
		t.Skip("training")
	}
	// p̃(x) = exp(−½(x − m)ᵀΣ⁻¹(x − m)), Σ = [[1, 0.9], [0.9, 1]]·s², m = (1, −2).
	const rho, s2 = 0.9, 0.5
	m := [2]float64{1, -2}
	det := s2 * s2 * (1 - rho*rho)
	inv := [2][2]float64{{s2 / det, -rho * s2 / det}, {-rho * s2 / det, s2 / det}}
	logZ := math.Log(2*math.Pi) + 0.5*math.Log(det)
	target := optim.Target{
		Dim: 2,
		LogDensity: func(x, _ *mat.Dense) []float64 {
			n, _ := x.Dims()
			lp := make([]float64, n)
			for i := range n {
				a, b := x.At(i, 0)-m[0], x.At(i, 1)-m[1]
				lp[i] = -0.5 * (a*(inv[0][0]*a+inv[0][1]*b) + b*(inv[1][0]*a+inv[1][1]*b))
			}
			return lp
		},
		Grad: func(x, _ *mat.Dense) *mat.Dense {
			n, _ := x.Dims()
			g := mat.NewDense(n, 2, nil)
			for i := range n {
				a, b := x.At(i, 0)-m[0], x.At(i, 1)-m[1]
				g.Set(i, 0, -(inv[0][0]*a + inv[0][1]*b))
				g.Set(i, 1, -(inv[1][0]*a + inv[1][1]*b))
			}
			return g
		},
	}
	for _, c := range []struct {
		name  string
		layer func() flows.InitFunc
		want  float64 // the largest final KL accepted
	}{
		{"Planar", flows.Planar, 0.1},
		{"Radial", flows.Radial, 0.4}, // radial maps cannot shear: a weaker family
		{"Sylvester", func() flows.InitFunc { return flows.Sylvester(flows.SylvesterConfig{}) }, 0.1},
	} {
		var ls []flows.InitFunc
		for range 8 {
			ls = append(ls, c.layer())
		}
		p, b, err := flows.Serial(ls...)(flows.NewKey(3), 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		losses, err := optim.FitVI(flows.NewKey(4), b, p, target, optim.VIConfig{Steps: 800, Samples: 128, LR: 1e-2})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var last float64
		for _, l := range losses[len(losses)-50:] {
			last += l / 50
		}
		kl := last + logZ
		t.Logf("%s: reverse KL %.3f → %.3f (mean of the last 50 steps)", c.name, losses[0]+logZ, kl)
		if kl > c.want {
			t.Errorf("%s: reverse KL %.3f after 800 steps, want below %v", c.name, kl, c.want)
		}
	}
}
