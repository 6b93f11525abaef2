package flows

// Circular splines for angles (Rezende, Papamakarios, Racanière, Albergo,
// Kanwar, Shanahan and Cranmer, "Normalizing Flows on Tori and Spheres",
// 2020), as a Transformer, and CircularCoupling, a coupling layer for rows
// whose columns are angles and reals.
//
// # The circle map and its lift
//
// A rational-quadratic spline g with K bins mapping [−π, π] onto itself,
// g(±π) = ±π, whose end slopes are one learned value d_0 = d_K, is a
// diffeomorphism of the circle (the ends meet with equal slopes); followed
// by a rotation φ it no longer has to fix the point −π. As a map of ℝ the
// transformer is the lift of that circle map,
//
//	x = 2πn + r, r ∈ [−π, π):   F(x) = 2πn + g(r) + φ,
//
// strictly increasing and C¹ on ℝ with F(x + 2π) = F(x) + 2π; read modulo
// 2π it is the circle map, and its log-derivative log g′(r) is the circle
// map's. Working with the lift keeps every map of the package a bijection
// of ℝ: a density on the torus is a flow whose angle columns are read
// modulo 2π, with the uniform density 1/(2π) per angle column as the base
// (examples/torus), and wrapping between layers is never needed, since the
// next layer's conditioner sees angles through (cos, sin) and its lift
// commutes with shifts by 2π.
//
// The spline is spline.go's: the same knots, bins, evaluation and
// pullbacks (rqsSetup, value, local, pullback) on [−π, π] with the default
// minimum width, height and slope, and the end slopes of the bin set up
// replaced by d_0 = d_K = md + softplus(θ_end + c₀) (clamped as the
// interior slopes are), whose gradient is added here from the bin's
// ∂/∂d0 and ∂/∂d1 (spline.go scatters only the interior slopes). The
// inverse is in closed form: n and s ∈ [−π, π) from y − φ = 2πn + s, then
// x = 2πn + g⁻¹(s).

import (
	"fmt"
	"math"
	"slices"
)

// circSpline is the spline configuration of the circle maps: [−π, π], the
// default minimum width, height and slope.
func circSpline(bins int) SplineConfig {
	return SplineConfig{Bins: bins, Bound: math.Pi}.withDefaults()
}

// circDecompose returns n and r ∈ [−π, π] with x = 2πn + r, r rounded
// (and clamped: beyond |x| ≈ 1e15 the rounding of 2πn exceeds the circle,
// and angles that large carry no information).
func circDecompose(x float64) (n, r float64) {
	n = math.Floor((x + math.Pi) / (2 * math.Pi))
	r = x - 2*math.Pi*n
	// Rounding can leave r just outside [−π, π).
	switch {
	case r >= math.Pi:
		n, r = n+1, r-2*math.Pi
	case r < -math.Pi:
		n, r = n-1, r+2*math.Pi
	}
	return n, min(max(r, -math.Pi), math.Pi)
}

// CircularSpline returns the circular rational-quadratic spline transformer
// of Rezende et al. (2020) with bins bins: the lift to ℝ of a
// diffeomorphism of the circle,
//
//	x = 2πn + r, r ∈ [−π, π):   F(x) = 2πn + g(r) + φ,
//
// where g is a rational-quadratic spline (as Spline) mapping [−π, π] onto
// itself whose slopes at −π and π are one learned value, so that the ends
// join smoothly on the circle, and φ a rotation. Read modulo 2π it maps
// angles to angles; as a map of ℝ it is strictly increasing, C¹, and
// F(x + 2π) = F(x) + 2π.
//
// Params = 3·bins + 1, laid out [widths (bins) | heights (bins) | interior
// slopes (bins−1) | end slope | rotation φ]: the first 3·bins − 1 as
// Spline's on [−π, π], the end slope md + softplus(θ + c₀) like an
// interior one, φ = θ unbounded. θ = 0 is the identity. The inverse is in
// closed form. Fewer than 2 bins gives a transformer whose layers fail to
// initialise.
func CircularSpline(bins int) Transformer {
	if bins < 2 {
		return Transformer{Name: "CircularSpline", err: fmt.Errorf("transformer CircularSpline: %d bins, want at least 2", bins)}
	}
	c := circSpline(bins)
	if err := c.validate(); err != nil {
		return Transformer{Name: "CircularSpline", err: err}
	}
	cs := circ{c: c}
	return Transformer{
		Name:       "CircularSpline",
		Params:     3*bins + 1,
		Forward:    cs.forward,
		Inverse:    cs.inverse,
		ForwardVJP: cs.forwardVJP,
		InverseVJP: cs.inverseVJP,
	}
}

// circ is a circular spline transformer.
type circ struct{ c SplineConfig }

// endSlope returns the end slope and its derivative with respect to θ_end,
// as SplineConfig.slope computes an interior slope.
func (cs circ) endSlope(th []float64) (d, dd float64) {
	u := th[3*cs.c.Bins-1] + rqsDerivShift(cs.c.MinDerivative)
	if u > rqsMaxSoftplusArg {
		return cs.c.MinDerivative + rqsMaxSoftplusArg, 0
	}
	sp, sig := rqsSoftplus(u)
	return cs.c.MinDerivative + sp, sig
}

// setup sets up the bin of v ∈ [−π, π] (on the x side when onX) with the
// end slopes replaced.
func (cs circ) setup(th, buf []float64, v float64, onX bool) (rqsBin, float64) {
	K := cs.c.Bins
	b := cs.c.rqsSetup(th[:3*K-1], cs.c.scratch(buf), v, onX)
	d, dd := cs.endSlope(th)
	if b.k == 0 {
		b.d0, b.dd0 = d, dd
	}
	if b.k == K-1 {
		b.d1, b.dd1 = d, dd
	}
	return b, dd
}

// forward is Transformer.Forward.
func (cs circ) forward(th []float64, x float64) (float64, float64) {
	if x != x {
		return x, x
	}
	var buf [2 * rqsStackBins]float64
	n, r := circDecompose(x)
	b, _ := cs.setup(th, buf[:], r, true)
	xi, om := b.forwardPos(r)
	y, _, ld := b.value(xi, om)
	return 2*math.Pi*n + y + th[3*cs.c.Bins], ld
}

// inverse is Transformer.Inverse.
func (cs circ) inverse(th []float64, y float64) (float64, float64) {
	if y != y {
		return y, y
	}
	var buf [2 * rqsStackBins]float64
	n, s := circDecompose(y - th[3*cs.c.Bins])
	b, _ := cs.setup(th, buf[:], s, false)
	xi, om, x := b.inversePos(s)
	_, _, ld := b.value(xi, om)
	return 2*math.Pi*n + x, -ld
}

// pullback is the spline's pullback at the local point l of bin b, the
// end slope's gradient (with derivative dd) included, and the rotation's
// gradient grot; it returns ∂L/∂r.
func (cs circ) pullback(b *rqsBin, l *rqsLocal, gy, gl, dd, grot float64, dth []float64) float64 {
	K := cs.c.Bins
	dx := b.pullback(l, gy, gl, dth[:3*K-1], cs.c)
	gyh := gy * b.h
	if b.k == 0 {
		dth[3*K-1] += (gyh*l.rD0 + gl*l.lD0) * dd
	}
	if b.k == K-1 {
		dth[3*K-1] += (gyh*l.rD1 + gl*l.lD1) * dd
	}
	dth[3*K] += grot
	return dx
}

// forwardVJP is Transformer.ForwardVJP: y = 2πn + g(r) + φ, so ∂y/∂φ = 1
// and ∂/∂x is the spline's at r.
func (cs circ) forwardVJP(th []float64, x, _, gy, gl float64, dth []float64) float64 {
	var buf [2 * rqsStackBins]float64
	_, r := circDecompose(x)
	b, dd := cs.setup(th, buf[:], r, true)
	l := b.local(b.forwardPos(r))
	return cs.pullback(&b, &l, gy, gl, dd, gy, dth)
}

// inverseVJP is Transformer.InverseVJP, by the implicit-function theorem
// as rqsInverseVJP: with λ = (gx − gl·∂ℓ/∂x)/g′ the adjoint of s = y − φ −
// 2πn, ∂L/∂θ is the forward pullback with (−λ, −gl), ∂L/∂φ = −λ and
// ∂L/∂y = λ.
func (cs circ) inverseVJP(th []float64, y, _, gx, gl float64, dth []float64) float64 {
	var buf [2 * rqsStackBins]float64
	_, s := circDecompose(y - th[3*cs.c.Bins])
	b, dd := cs.setup(th, buf[:], s, false)
	xi, om, _ := b.inversePos(s)
	l := b.local(xi, om)
	lambda := (gx - gl*l.lXi/b.w) / l.gp
	cs.pullback(&b, &l, -lambda, -gl, dd, -lambda, dth)
	return lambda
}

// CircularConfig configures CircularCoupling.
type CircularConfig struct {
	// Angles lists the layer's input columns that are angles (radians,
	// read modulo 2π); the others are real. A permutation between layers
	// moves them: after Reverse, column i is column dim−1−i.
	Angles []int
	// Bins is the number of bins of every spline (default 8).
	Bins int
	// Bound is the interval [−Bound, Bound] of the real columns' splines
	// (default 3; see SplineConfig).
	Bound float64
}

// CircularCoupling returns a coupling layer for rows whose columns are
// angles (cfg.Angles) and reals, the mixed layer of Rezende et al. (2020):
// as Coupling, x = [x1 | x2] with d1 = dim/2 conditioning columns and the
// last d2 = dim − d1 transformed, but the conditioner net made by net reads
// each angle of x1 as (cos x, sin x), so that it is continuous on the
// circle, and each transformed column goes through its own transformer: a
// CircularSpline(cfg.Bins) for an angle, a Spline(SplineConfig{Bins,
// Bound}) for a real.
//
//	e  = [embed(x1) | c]       (an angle gives cos, sin; a real itself)
//	y  = net(e)                (net: |embed(x1)| + contextDim → Σ_j P_j columns)
//	z2_j = T_j(x2_j; θ_j),   logDet = Σ_j log T_j′(x2_j; θ_j)
//
// with P_j = 3·Bins+1 for an angle and 3·Bins−1 for a real, and column j's
// θ_j contiguous in y in column order. Angle outputs are the circle maps'
// lifts (see CircularSpline): read them modulo 2π.
//
// Parameters: exactly the net's, in its layout; a net with zero output at
// init (MLP) makes the layer the identity. Non-finite conditioner outputs
// are replaced and get no gradient, as in Coupling. Init returns an error
// for dim < 2, a negative contextDim, an angle column outside [0, dim) or
// given twice, fewer than 2 bins, an invalid bound, or a net that fails.
// DirectVJP and InverseVJP are both provided. The functions panic for a
// batch without dim columns, a context that is not n×contextDim, or
// parameters of the wrong length.
func CircularCoupling(net NetInitFunc, cfg CircularConfig) InitFunc {
	cfg.Angles = slices.Clone(cfg.Angles)
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "CircularCoupling"
		if err := checkContextDim(who, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		if _, _, err := couplingDims(who, dim); err != nil {
			return nil, Bijection{}, err
		}
		bins := cfg.Bins
		if bins == 0 {
			bins = 8
		}
		if bins < 2 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %d bins, want at least 2", who, bins)
		}
		isAngle := make([]bool, dim)
		for _, a := range cfg.Angles {
			if a < 0 || a >= dim {
				return nil, Bijection{}, fmt.Errorf("flows: %s: angle column %d outside [0, %d)", who, a, dim)
			}
			if isAngle[a] {
				return nil, Bijection{}, fmt.Errorf("flows: %s: angle column %d given twice", who, a)
			}
			isAngle[a] = true
		}
		realT := Spline(SplineConfig{Bins: bins, Bound: cfg.Bound})
		if realT.err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, realT.err)
		}
		circT := CircularSpline(bins)
		d1 := dim / 2
		tOf := func(j int) Transformer {
			if isAngle[d1+j] {
				return circT
			}
			return realT
		}
		c, err := couplingShape(who, dim, contextDim, tOf, isAngle)
		if err != nil {
			return nil, Bijection{}, err
		}
		return c.withNet(net, key)
	}
}
