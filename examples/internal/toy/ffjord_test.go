package toy

import (
	"math"
	"testing"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// moments returns the sample means of x1, x2, x1² + x2² and x1·x2.
func moments(x *mat.Dense) (m1, m2, r2, cross float64) {
	n, _ := x.Dims()
	for i := 0; i < n; i++ {
		a, b := x.At(i, 0), x.At(i, 1)
		m1 += a
		m2 += b
		r2 += a*a + b*b
		cross += a * b
	}
	f := float64(n)
	return m1 / f, m2 / f, r2 / f, cross / f
}

// TestFFJORDMoments checks sample moments of the generators against values
// derived from their definitions.
func TestFFJORDMoments(t *testing.T) {
	const n = 200000
	pi2 := math.Pi * math.Pi
	cases := []struct {
		name   string
		sample func(flows.Key, int) *mat.Dense
		// r2 is E[x1² + x2²]; cross is E[x1·x2].
		r2, cross float64
		tol       float64
	}{
		// E[r²] + 2σ² with r = 3 or 1.5, σ = 0.24.
		{"circles", Circles, (9+2.25)/2 + 2*0.24*0.24, 0, 0.03},
		// Radii 3, 2.25, 1.5, 0.75 and σ = 0.08.
		{"rings", Rings, (9+5.0625+2.25+0.5625)/4 + 2*0.08*0.08, 0, 0.03},
		// (4² + 2·0.5²)/1.414².
		{"8gaussians", EightGaussians, (16 + 2*0.25) / (1.414 * 1.414), 0, 0.04},
		// E[t²]/25 + 2·0.2² with t ~ U[1.5π, 4.5π]: E[t²] = 9.75π².
		{"swissroll", SwissRoll, 9.75*pi2/25 + 2*0.04, math.NaN(), 0.03},
		// 4(E[r²] + E[s²]) = 4(1 + 0.09 + 0.01); the rotation keeps norms.
		{"pinwheel", Pinwheel, 4 * 1.1, math.NaN(), 0.03},
		// Both marginals U[−4, 4) (variance 16/3 each); the columns of
		// width 2 at x1 centres −3, −1, 1, 3 have x2 means −1, 1, −1, 1,
		// so E[x1·x2] = (3 − 1 − 1 + 3)/4 = 1.
		{"checkerboard", Checkerboard, 2 * 16.0 / 3, 1, 0.04},
	}
	for _, c := range cases {
		x := c.sample(flows.NewKey(7), n)
		m1, m2, r2, cross := moments(x)
		if c.name != "swissroll" && c.name != "pinwheel" {
			if math.Abs(m1) > c.tol || math.Abs(m2) > c.tol {
				t.Errorf("%s: mean (%.4f, %.4f), want (0, 0)", c.name, m1, m2)
			}
		}
		if math.Abs(r2-c.r2) > c.tol*c.r2 {
			t.Errorf("%s: E[|x|²] = %.4f, want %.4f", c.name, r2, c.r2)
		}
		if !math.IsNaN(c.cross) && math.Abs(cross-c.cross) > c.tol*math.Max(1, c.r2) {
			t.Errorf("%s: E[x1·x2] = %.4f, want %.4f", c.name, cross, c.cross)
		}
	}
}

// TestFFJORDDeterministic checks that a key fixes the rows, and that every
// density is listed and found by name.
func TestFFJORDDeterministic(t *testing.T) {
	for _, d := range Densities {
		got, err := Lookup(d.Name)
		if err != nil || got.Name != d.Name {
			t.Fatalf("Lookup(%q) = %v, %v", d.Name, got.Name, err)
		}
		a, b := d.Sample(flows.NewKey(3), 50), d.Sample(flows.NewKey(3), 50)
		if !mat.Equal(a, b) {
			t.Errorf("%s: same key, different rows", d.Name)
		}
	}
	if _, err := Lookup("nope"); err == nil {
		t.Error("Lookup(\"nope\"): no error")
	}
}
