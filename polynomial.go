package flows

// Monotone polynomial transformers: the sum-of-squares polynomial flow of
// Jaini, Selby and Yu, "Sum-of-Squares Polynomial Flow" (2019), and the
// Bernstein polynomial flow (Sick, Hothorn and Dürr, "Deep transformation
// models", 2020; Arpogaus et al., 2022; zuko's BPF).
//
// # Sum of squares
//
// On [−B, B], with t = x/B ∈ [−1, 1] and K polynomials of degree L,
//
//	p_κ(t) = 1 + Σ_j a_κj·t^j,   a = 8·tanh(θ/8),
//	q(t)   = ε + (1 − ε)·(1/K)·Σ_κ p_κ(t)²,   ε = 1e-3,
//	f(x)   = B·∫_0^t q(s) ds,   f′(x) = q(t),
//
// and beyond ±B f continues affinely with the end slope q(±1), so f is C¹,
// strictly increasing (f′ ≥ ε) and onto ℝ. q is expanded into its monomial
// coefficients (the squares by convolution) and the integral evaluated by
// Horner's rule. The gradients are, with c_κ the coefficients of p_κ
// (c_κ0 = 1 + a_κ0) and λ = 2(1 − ε)/K,
//
//	∂q/∂a_κj = λ·p_κ(t)·t^j,   ∂(f/B)/∂a_κj = λ·Σ_i c_κi·t^{i+j+1}/(i+j+1),
//	∂log q/∂x = q′(t)/(B·q(t)),   q′ = λ·Σ_κ p_κ·p_κ′,
//
// and beyond B, y = B·F(1) + q(1)·(x − B) (symmetrically below −B). The
// coefficient bound keeps q within [ε, (1 + 8(L+1))²] on [−1, 1], so
// every value is finite for every θ and x.
//
// # Bernstein
//
// On [−B, B], with t = (x + B)/(2B) ∈ [0, 1] and degree M,
//
//	f(x) = Σ_k β_k·b_{k,M}(t),   b_{k,M}(t) = C(M,k)·t^k·(1−t)^{M−k},
//	f′(x) = (M/2B)·Σ_k Δ_{k+1}·b_{k,M−1}(t),   Δ_k = β_k − β_{k−1},
//
// with β_0 = −B, β_M = B and the end increments Δ_1 = Δ_M = 2B/M fixed, so
// that f(±B) = ±B with slope 1 there and f joins the identity outside
// [−B, B] with a continuous derivative; the M−2 interior increments are
// Δ = (2B(M−2)/M)·(δ + (1 − (M−2)δ)·softmax(θ)), δ = 1e-3, so every Δ > 0
// and f is strictly increasing. θ = 0 gives equal increments, for which
// the Bernstein form reproduces the line: the identity. The basis values
// come from the triangle b_{k,n}(t) = (1−t)·b_{k,n−1}(t) + t·b_{k−1,n−1}(t)
// (non-negative terms only). ∂f/∂Δ_j = Σ_{k≥j} b_{k,M}(t) and
// ∂log f′/∂Δ_j = b_{j−1,M−1}(t)/S with S = Σ_k Δ_{k+1}·b_{k,M−1}(t), then
// through the softmax; ∂log f′/∂x = (M−1)·Σ_k (Δ_{k+2} − Δ_{k+1})·b_{k,M−2}(t)/(2B·S).
//
// Both inverses solve f(x) = y on [−B, B] with solveIncreasing (bracket
// [−B, B], tolerance 1e-13·max(1, |x|)) and in closed form outside; their
// InverseVJP is the one the layers derive from ForwardVJP.

import (
	"fmt"
	"math"
)

// Constants of the polynomial transformers.
const (
	// sosCoefBound bounds the SOS coefficients: a = 8·tanh(θ/8).
	sosCoefBound = 8
	// sosMinSlope is ε, the SOS map's smallest slope.
	sosMinSlope = 1e-3
	// bernMinFraction is δ, the smallest interior Bernstein increment as a
	// fraction of the interior's share.
	bernMinFraction = 1e-3
	// polyStack is the most coefficients the polynomial transformers keep
	// on the stack; more are allocated per call.
	polyStack = 64
)

// checkPolyBound returns an error unless bound is in [1e-100, 1e100].
func checkPolyBound(name string, bound float64) error {
	if !(bound >= rqsMinBound && bound <= rqsMaxBound) {
		return fmt.Errorf("transformer %s: bound %v, want in [%g, %g]", name, bound, rqsMinBound, rqsMaxBound)
	}
	return nil
}

// SumOfSquares returns the sum-of-squares polynomial transformer of Jaini,
// Selby and Yu (2019) with polys polynomials of the given degree, acting
// on [−bound, bound] and affine beyond:
//
//	t = x/B,  p_κ(t) = 1 + Σ_j a_κj·t^j,  a = 8·tanh(θ/8),
//	f(x) = B·∫_0^t (ε + (1 − ε)·(1/K)·Σ_κ p_κ(s)²) ds,   ε = 1e-3,
//
// continued with the end slopes outside [−B, B]: a polynomial of degree
// 2·degree+1, C¹, strictly increasing with slope at least 1e-3. Params =
// polys·(degree+1), polynomial κ's coefficients a_κ0 … a_κL contiguous at
// κ·(degree+1). θ = 0 is the identity. Inverse solves the polynomial
// numerically (bracketed, safeguarded Newton to 1e-13·max(1, |x|)) inside
// and is affine outside. A count below 1, a negative degree or a bound
// outside [1e-100, 1e100] gives a transformer whose layers fail to
// initialise.
func SumOfSquares(polys, degree int, bound float64) Transformer {
	if polys < 1 || degree < 0 {
		return Transformer{Name: "SumOfSquares", err: fmt.Errorf("transformer SumOfSquares: %d polynomials of degree %d, want at least 1 of degree at least 0", polys, degree)}
	}
	if err := checkPolyBound("SumOfSquares", bound); err != nil {
		return Transformer{Name: "SumOfSquares", err: err}
	}
	return sos{k: polys, l: degree, b: bound}.transformer("SumOfSquares")
}

// SumOfSquaresUnitTails is SumOfSquares with tails of slope 1: beyond
// ±bound the map continues as y = f(±B) + (x ∓ B), log-derivative 0,
// instead of with the end slopes q(±1), which reach (1 + 8·(degree+1))²
// and, compounded over stacked layers, sent a row outside the training
// bulk to a latent value thousands of nats out (issue 26). The map is
// continuous and strictly increasing, C¹ only where q(±1) = 1; inside
// [−B, B] it is SumOfSquares', and so are the parameters and the
// inverse's tolerance. θ = 0 is the identity.
func SumOfSquaresUnitTails(polys, degree int, bound float64) Transformer {
	t := SumOfSquares(polys, degree, bound)
	if t.err != nil {
		return t
	}
	return sos{k: polys, l: degree, b: bound, unit: true}.transformer("SumOfSquaresUnitTails")
}

// transformer returns s as a Transformer named name.
func (s sos) transformer(name string) Transformer {
	return Transformer{
		Name:       name,
		Params:     s.k * (s.l + 1),
		Forward:    s.forward,
		Inverse:    s.inverse,
		ForwardVJP: s.forwardVJP,
	}
}

// sos is the shape of a sum-of-squares transformer; unit gives it tails
// of slope 1.
type sos struct {
	k, l int
	b    float64
	unit bool
}

// tailSlope is the slope beyond ±B, given the end slope q(±1).
func (s sos) tailSlope(q float64) float64 {
	if s.unit {
		return 1
	}
	return q
}

// coefs writes the bounded coefficients c (c_κ0 = 1 + a_κ0) and ∂a/∂θ into
// c and da (each K·(L+1)).
func (s sos) coefs(th, c, da []float64) {
	for i, v := range th {
		h := math.Tanh(v / sosCoefBound)
		c[i] = sosCoefBound * h
		da[i] = 1 - h*h
	}
	for k := range s.k {
		c[k*(s.l+1)]++
	}
}

// scratch returns two slices of K·(L+1) for c and da.
func (s sos) scratch(arr *[2 * polyStack]float64) (c, da []float64) {
	n := s.k * (s.l + 1)
	buf := arr[:]
	if 2*n > len(buf) {
		buf = make([]float64, 2*n)
	}
	return buf[:n:n], buf[n : 2*n : 2*n]
}

// evalQ returns q(t), q′(t) and F(t) = ∫_0^t q for the coefficients c.
func (s sos) evalQ(c []float64, t float64) (q, dq, F float64) {
	L := s.l
	lam := (1 - sosMinSlope) / float64(s.k)
	var sq, sdq, sF float64
	for k := range s.k {
		ck := c[k*(L+1) : (k+1)*(L+1)]
		// p and p′ by Horner.
		var p, dp float64
		for j := L; j >= 0; j-- {
			dp = dp*t + p
			p = p*t + ck[j]
		}
		sq += p * p
		sdq += 2 * p * dp
		// ∫_0^t p² = Σ_m r_m·t^{m+1}/(m+1), r the convolution of c with
		// itself, by Horner from the top degree 2L.
		var acc float64
		for m := 2 * L; m >= 0; m-- {
			var r float64
			for i := max(0, m-L); i <= min(m, L); i++ {
				r += ck[i] * ck[m-i]
			}
			acc = acc*t + r/float64(m+1)
		}
		sF += acc * t
	}
	return sosMinSlope + lam*sq, lam * sdq, sosMinSlope*t + lam*sF
}

// where returns t clamped to [−1, 1] and the distance beyond the interval
// in x (0 inside).
func (s sos) where(x float64) (t, beyond float64) {
	switch {
	case x > s.b:
		return 1, x - s.b
	case x < -s.b:
		return -1, x + s.b
	}
	return x / s.b, 0
}

// forward is Transformer.Forward.
func (s sos) forward(th []float64, x float64) (float64, float64) {
	var arr [2 * polyStack]float64
	c, da := s.scratch(&arr)
	s.coefs(th, c, da)
	t, beyond := s.where(x)
	q, _, F := s.evalQ(c, t)
	if beyond != 0 {
		q = s.tailSlope(q)
	}
	return s.b*F + q*beyond, math.Log(q)
}

// inverse is Transformer.Inverse.
func (s sos) inverse(th []float64, y float64) (float64, float64) {
	var arr [2 * polyStack]float64
	c, da := s.scratch(&arr)
	s.coefs(th, c, da)
	qlo, _, Flo := s.evalQ(c, -1)
	qhi, _, Fhi := s.evalQ(c, 1)
	ylo, yhi := s.b*Flo, s.b*Fhi
	qlo, qhi = s.tailSlope(qlo), s.tailSlope(qhi)
	switch {
	case y > yhi:
		return s.b + (y-yhi)/qhi, -math.Log(qhi)
	case y < ylo:
		return -s.b + (y-ylo)/qlo, -math.Log(qlo)
	case y != y:
		return y, y
	}
	x, _ := solveIncreasing(func(x float64) (float64, float64) {
		q, _, F := s.evalQ(c, x/s.b)
		return s.b*F - y, q
	}, y, -s.b, s.b)
	q, _, _ := s.evalQ(c, x/s.b)
	return x, -math.Log(q)
}

// forwardVJP is Transformer.ForwardVJP; see the file's notes.
func (s sos) forwardVJP(th []float64, x, _, gy, gl float64, dth []float64) float64 {
	var arr [2 * polyStack]float64
	c, da := s.scratch(&arr)
	s.coefs(th, c, da)
	t, beyond := s.where(x)
	q, dq, _ := s.evalQ(c, t)
	L := s.l
	lam := 2 * (1 - sosMinSlope) / float64(s.k)
	// y = B·F(t) + q(t)·beyond, log-derivative log q(t): per coefficient,
	// ∂y = B·∂F + ∂q·beyond and ∂log q = ∂q/q.
	gq := gy*beyond + gl/q
	if s.unit && beyond != 0 {
		gq = 0 // y = B·F(±1) + beyond, log-derivative 0
	}
	for k := range s.k {
		ck := c[k*(L+1) : (k+1)*(L+1)]
		var p float64
		for j := L; j >= 0; j-- {
			p = p*t + ck[j]
		}
		tj := 1.0 // t^j
		for j := range L + 1 {
			// ∫_0^t p·s^j = Σ_i c_i·t^{i+j+1}/(i+j+1).
			var acc float64
			for i := L; i >= 0; i-- {
				acc = acc*t + ck[i]/float64(i+j+1)
			}
			dF := lam * acc * tj * t
			dQ := lam * p * tj
			dth[k*(L+1)+j] += (gy*s.b*dF + gq*dQ) * da[k*(L+1)+j]
			tj *= t
		}
	}
	if beyond != 0 {
		return gy * s.tailSlope(q)
	}
	return gy*q + gl*dq/(s.b*q)
}

// Bernstein returns the Bernstein polynomial transformer of the given
// degree M ≥ 4 on [−bound, bound], the identity outside (the map of
// Bernstein polynomial flows, Sick et al. 2020, as zuko's BPF with
// identity bounds):
//
//	t = (x + B)/(2B),   f(x) = Σ_k β_k·C(M,k)·t^k·(1−t)^{M−k},
//
// with β_0 = −B, β_M = B, the end increments β_1 − β_0 = β_M − β_{M−1} =
// 2B/M fixed (so f joins the identity at ±B with slope 1) and the M−2
// interior increments (2B(M−2)/M)·(δ + (1 − (M−2)δ)·softmax(θ)), δ = 1e-3:
// strictly increasing, C¹, mapping [−B, B] onto itself. Params = M−2.
// θ = 0 is the identity. Inverse solves the polynomial numerically on
// [−B, B] (bracketed, safeguarded Newton to 1e-13·max(1, |x|)). A degree
// below 4 or a bound outside [1e-100, 1e100] gives a transformer whose
// layers fail to initialise.
func Bernstein(degree int, bound float64) Transformer {
	if degree < 4 {
		return Transformer{Name: "Bernstein", err: fmt.Errorf("transformer Bernstein: degree %d, want at least 4", degree)}
	}
	if err := checkPolyBound("Bernstein", bound); err != nil {
		return Transformer{Name: "Bernstein", err: err}
	}
	b := bern{m: degree, b: bound}
	return Transformer{
		Name:       "Bernstein",
		Params:     degree - 2,
		Forward:    b.forward,
		Inverse:    b.inverse,
		ForwardVJP: b.forwardVJP,
	}
}

// bern is the shape of a Bernstein transformer.
type bern struct {
	m int
	b float64
}

// bernScratch is one call's scratch: the increments Δ_1 … Δ_M (index k−1),
// the softmax of θ, and the basis triangle rows b_{·,M−2}, b_{·,M−1},
// b_{·,M}.
type bernScratch struct {
	delta, sm, b2, b1, b0 []float64
}

// scratch returns the call's scratch, on the stack when M is small.
func (b bern) scratch(arr *[5 * polyStack]float64) bernScratch {
	m := b.m
	buf := arr[:]
	if 5*(m+1) > len(buf) {
		buf = make([]float64, 5*(m+1))
	}
	part := func(i, n int) []float64 { return buf[i*(m+1) : i*(m+1)+n : i*(m+1)+n] }
	return bernScratch{delta: part(0, m), sm: part(1, m-2), b2: part(2, m-1), b1: part(3, m), b0: part(4, m+1)}
}

// setup fills the increments from θ.
func (b bern) setup(th []float64, s bernScratch) {
	m := b.m
	rqsSoftmax(s.sm, th)
	end := 2 * b.b / float64(m)
	share := 2 * b.b * float64(m-2) / float64(m)
	w := 1 - float64(m-2)*bernMinFraction
	s.delta[0], s.delta[m-1] = end, end
	for k, v := range s.sm {
		s.delta[k+1] = share * (bernMinFraction + w*v)
	}
}

// basis fills the basis rows of degrees M−2, M−1 and M at t.
func (b bern) basis(t float64, s bernScratch) {
	m := b.m
	row := s.b0[:1]
	row[0] = 1
	u := 1 - t
	for n := 1; n <= m; n++ {
		// b_{k,n} = u·b_{k,n−1} + t·b_{k−1,n−1}, in place from the top.
		row = s.b0[:n+1]
		row[n] = t * row[n-1]
		for k := n - 1; k >= 1; k-- {
			row[k] = u*row[k] + t*row[k-1]
		}
		row[0] *= u
		switch n {
		case m - 2:
			copy(s.b2, row)
		case m - 1:
			copy(s.b1, row)
		}
	}
}

// value returns f at t ∈ [0, 1] (in x units), S = Σ Δ_{k+1}·b_{k,M−1} and
// dS/dt, after setup and basis.
func (b bern) value(t float64, s bernScratch) (y, S, dS float64) {
	m := b.m
	switch t {
	case 0:
		y = -b.b
	case 1:
		y = b.b
	default:
		beta := -b.b
		y = beta * s.b0[0]
		for k := 1; k <= m; k++ {
			beta += s.delta[k-1]
			if k == m {
				beta = b.b
			}
			y += beta * s.b0[k]
		}
	}
	for k, v := range s.b1 {
		S += s.delta[k] * v
	}
	for k, v := range s.b2 {
		dS += (s.delta[k+1] - s.delta[k]) * v
	}
	return y, S, float64(m-1) * dS
}

// logSlope returns log f′ = log(M/(2B)) + log S.
func (b bern) logSlope(S float64) float64 {
	return math.Log(float64(b.m)/(2*b.b)) + math.Log(S)
}

// forward is Transformer.Forward.
func (b bern) forward(th []float64, x float64) (float64, float64) {
	if !(x > -b.b && x < b.b) { // outside, at ±B, or NaN
		return x, 0
	}
	var arr [5 * polyStack]float64
	s := b.scratch(&arr)
	b.setup(th, s)
	t := (x + b.b) / (2 * b.b)
	b.basis(t, s)
	y, S, _ := b.value(t, s)
	return y, b.logSlope(S)
}

// inverse is Transformer.Inverse.
func (b bern) inverse(th []float64, y float64) (float64, float64) {
	if !(y > -b.b && y < b.b) {
		return y, 0
	}
	var arr [5 * polyStack]float64
	s := b.scratch(&arr)
	b.setup(th, s)
	x, _ := solveIncreasing(func(x float64) (float64, float64) {
		t := (x + b.b) / (2 * b.b)
		b.basis(t, s)
		v, S, _ := b.value(t, s)
		return v - y, float64(b.m) / (2 * b.b) * S
	}, y, -b.b, b.b)
	t := (x + b.b) / (2 * b.b)
	b.basis(t, s)
	_, S, _ := b.value(t, s)
	return x, -b.logSlope(S)
}

// forwardVJP is Transformer.ForwardVJP; see the file's notes.
func (b bern) forwardVJP(th []float64, x, _, gy, gl float64, dth []float64) float64 {
	if !(x > -b.b && x < b.b) {
		return gy
	}
	var arr [5 * polyStack]float64
	s := b.scratch(&arr)
	b.setup(th, s)
	m := b.m
	t := (x + b.b) / (2 * b.b)
	b.basis(t, s)
	_, S, dS := b.value(t, s)
	// dL/dΔ_j for the interior j = 2 … M−1 (index j−1): gy·Σ_{k≥j} b_{k,M}
	// + gl·b_{j−1,M−1}/S, then through Δ = share·(δ + w·softmax(θ)).
	var tail float64
	for k := m; k >= m-1; k-- {
		tail += s.b0[k]
	}
	share := 2 * b.b * float64(m-2) / float64(m)
	wsh := share * (1 - float64(m-2)*bernMinFraction)
	// g_k = dL/dsoftmax_k; dL/dθ_i = sm_i·(g_i − Σ_k sm_k·g_k).
	var dot float64
	g := s.delta[1 : m-1] // reuse: the interior increments are no longer needed
	for j := m - 1; j >= 2; j-- {
		gd := gy*tail + gl*s.b1[j-1]/S
		tail += s.b0[j-1]
		g[j-2] = gd * wsh
		dot += s.sm[j-2] * g[j-2]
	}
	for i, v := range s.sm {
		dth[i] += v * (g[i] - dot)
	}
	slope := float64(m) / (2 * b.b) * S
	return gy*slope + gl*dS/(2*b.b*S)
}
