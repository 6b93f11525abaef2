package toy

import (
	"fmt"
	"math"

	"github.com/gonormflows/flows"
	"gonum.org/v1/gonum/mat"
)

// The generators below follow the definitions in the FFJORD paper's code
// (Grathwohl et al., 2019, lib/toy_data.py). Each draws n rows of a
// two-dimensional density from a key; the same key gives the same rows.

// SwissRoll draws n points of the swiss roll: t ~ U[1.5π, 4.5π],
// (t cos t, t sin t)/5, plus N(0, 0.2²) noise on each coordinate.
func SwissRoll(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		t := 1.5*math.Pi + 3*math.Pi*rng.Float64()
		x.Set(i, 0, t*math.Cos(t)/5+0.2*rng.NormFloat64())
		x.Set(i, 1, t*math.Sin(t)/5+0.2*rng.NormFloat64())
	}
	return x
}

// Circles draws n points of two concentric circles: radius 3 or 1.5 with
// probability ½ each, a uniform angle, plus N(0, 0.24²) noise.
func Circles(key flows.Key, n int) *mat.Dense {
	return rings(key, n, []float64{3, 1.5}, 0.24)
}

// Rings draws n points of four concentric rings: radius 3, 2.25, 1.5 or
// 0.75, equally likely, a uniform angle, plus N(0, 0.08²) noise.
func Rings(key flows.Key, n int) *mat.Dense {
	return rings(key, n, []float64{3, 2.25, 1.5, 0.75}, 0.08)
}

func rings(key flows.Key, n int, radii []float64, sigma float64) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		r := radii[rng.IntN(len(radii))]
		a := 2 * math.Pi * rng.Float64()
		x.Set(i, 0, r*math.Cos(a)+sigma*rng.NormFloat64())
		x.Set(i, 1, r*math.Sin(a)+sigma*rng.NormFloat64())
	}
	return x
}

// EightGaussians draws n points of a mixture of eight equally likely
// Gaussians with means (4/1.414)(cos kπ/4, sin kπ/4), k = 0 … 7, and
// standard deviation 0.5/1.414 on each coordinate.
func EightGaussians(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		a := float64(rng.IntN(8)) * math.Pi / 4
		x.Set(i, 0, (4*math.Cos(a)+0.5*rng.NormFloat64())/1.414)
		x.Set(i, 1, (4*math.Sin(a)+0.5*rng.NormFloat64())/1.414)
	}
	return x
}

// Pinwheel draws n points of the pinwheel: five equally likely arms; for arm
// k, r ~ N(1, 0.3²), s ~ N(0, 0.1²), a = 2πk/5 + 0.25·e^r, and the point is
// 2(r cos a + s sin a, −r sin a + s cos a).
func Pinwheel(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		k := rng.IntN(5)
		r := 1 + 0.3*rng.NormFloat64()
		s := 0.1 * rng.NormFloat64()
		a := 2*math.Pi*float64(k)/5 + 0.25*math.Exp(r)
		c, si := math.Cos(a), math.Sin(a)
		x.Set(i, 0, 2*(r*c+s*si))
		x.Set(i, 1, 2*(-r*si+s*c))
	}
	return x
}

// TwoSpirals draws n points of two interleaved spirals: n' = 3π√u with
// u ~ U[0, 1], the point (−n' cos n' + u1, n' sin n' + u2) with u1, u2 ~
// U[0, 0.5], negated for half of the points (chosen with probability ½),
// all divided by 3, plus N(0, 0.1²) noise.
func TwoSpirals(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		m := 3 * math.Pi * math.Sqrt(rng.Float64())
		a := -m*math.Cos(m) + 0.5*rng.Float64()
		b := m*math.Sin(m) + 0.5*rng.Float64()
		if rng.IntN(2) == 1 {
			a, b = -a, -b
		}
		x.Set(i, 0, a/3+0.1*rng.NormFloat64())
		x.Set(i, 1, b/3+0.1*rng.NormFloat64())
	}
	return x
}

// Checkerboard draws n points of the checkerboard: x1 ~ U[−2, 2), x2 =
// U[0, 1) − 2·Bernoulli(½) + (⌊x1⌋ mod 2), both times 2, so uniform on
// eight 2×2 squares of [−4, 4]². The mod is the mathematical one (⌊x1⌋ = −1
// gives 1, as numpy's % does).
func Checkerboard(key flows.Key, n int) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, 2, nil)
	for i := 0; i < n; i++ {
		x1 := 4*rng.Float64() - 2
		x2 := rng.Float64() - 2*float64(rng.IntN(2))
		m := math.Mod(math.Floor(x1), 2)
		if m < 0 {
			m += 2
		}
		x.Set(i, 0, 2*x1)
		x.Set(i, 1, 2*(x2+m))
	}
	return x
}

// Density is one of the FFJORD toy densities: its name, its generator, and
// its differential entropy in nats (the lowest mean NLL any model can
// reach), as estimated for the FFJORD definitions.
type Density struct {
	Name    string
	Sample  func(key flows.Key, n int) *mat.Dense
	Entropy float64
	// Extent is the half-width of the square, centred at 0, that the
	// pictures show; it holds nearly all the mass.
	Extent float64
}

// Densities lists the eight FFJORD toy densities in a fixed order.
var Densities = []Density{
	{Name: "swissroll", Sample: SwissRoll, Entropy: 2.6696, Extent: 4},
	{Name: "circles", Sample: Circles, Entropy: 3.2681, Extent: 4},
	{Name: "rings", Sample: Rings, Entropy: 2.6232, Extent: 4},
	{Name: "moons", Sample: Moons, Entropy: 2.3939, Extent: 4},
	{Name: "8gaussians", Sample: EightGaussians, Entropy: 2.8319, Extent: 4},
	{Name: "pinwheel", Sample: Pinwheel, Entropy: 2.3178, Extent: 4},
	{Name: "2spirals", Sample: TwoSpirals, Entropy: 2.6454, Extent: 4},
	{Name: "checkerboard", Sample: Checkerboard, Entropy: 3.4657, Extent: 4},
}

// Lookup returns the density of the given name.
func Lookup(name string) (Density, error) {
	for _, d := range Densities {
		if d.Name == name {
			return d, nil
		}
	}
	names := ""
	for i, d := range Densities {
		if i > 0 {
			names += ", "
		}
		names += d.Name
	}
	return Density{}, fmt.Errorf("toy: unknown density %q; want one of %s", name, names)
}
