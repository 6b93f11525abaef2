package flows

// Glow's invertible 1×1 convolution (Kingma and Dhariwal, "Glow: Generative
// Flow with Invertible 1x1 Convolutions", 2018) in its LU
// parameterisation, acting on rows:
//
//	z = x·W,  W = P·L·(U + diag(sign·exp(logAbsS)))
//
// x and z are 1×dim rows; W is applied on the right. P is a permutation
// matrix, L is unit lower triangular, U is strictly upper triangular and
// sign ∈ {−1, +1}ᵈⁱᵐ. P and sign are fixed at init and are not parameters;
// the free entries of L and U and logAbsS are.
//
// Initialisation follows Glow: a random orthogonal matrix Q, the Q factor
// of the QR decomposition of a dim×dim standard Gaussian matrix drawn from
// key, is LU-factorised with partial pivoting (Q = P·L·U₀), giving P, L, U
// (U₀'s strict upper part), sign = sign(diag U₀) and logAbsS = log|diag U₀|.
// So W = Q at init and |log det W| ≈ 0.
//
// The per-row log-determinant of Direct is Σ logAbsS; Inverse computes
// x = z·W⁻¹ by triangular solves with U + diag(sign·exp(logAbsS)) and L and
// the inverse permutation (never forming W⁻¹), with log-determinant
// −Σ logAbsS. Each call to Direct costs about dim³ (forming W) +
// 2·n·dim² flops; each call to Inverse about 2·n·dim² (the solves).

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/enum"
	"github.com/gonormflows/flows/internal/linalg"
)

// InvertibleLinear returns the init function of Glow's invertible 1×1
// convolution in its LU parameterisation: a learned dim×dim linear map on
// rows, z = x·W with W = P·L·(U + diag(sign·exp(logAbsS))), P a fixed
// permutation, L unit lower and U strictly upper triangular, and fixed signs
// sign ∈ {−1, +1}ᵈⁱᵐ; log|det W| = Σ logAbsS (the formulas and costs are
// in invertiblelinear.go's file comment).
//
// Parameter layout (dim² entries), with T = dim·(dim−1)/2:
//
//	[L strictly-lower entries (T) | U strictly-upper entries (T) | logAbsS (dim)]
//
// Both triangles are stored row by row: L's as L[1,0], L[2,0], L[2,1],
// L[3,0], …; U's as U[0,1], U[0,2], …, U[0,dim−1], U[1,2], …. At dim 1 there
// are no triangle entries and the layer is the scalar map z = x·sign·exp(logAbsS).
//
// W starts as a random orthogonal matrix drawn from key, as in Glow (see
// InvertibleLinearFrom for a permutation instead); the same key gives the
// same P, sign and parameters. DirectVJP and InverseVJP are provided, so
// the layer can be Inverted and trained in the sampling direction; there is
// no data-dependent initialisation. It returns an error when dim < 1.
func InvertibleLinear() InitFunc { return InvertibleLinearFrom(LinearOrthogonal) }

// LinearInit is how InvertibleLinearFrom starts.
type LinearInit int

const (
	// LinearDefault is the default of where it is used: LinearOrthogonal
	// for InvertibleLinearFrom, model.Config's default.
	LinearDefault LinearInit = iota
	// LinearOrthogonal starts from a random orthogonal matrix, as Glow
	// does (see InvertibleLinear): every column is mixed from the first
	// step.
	LinearOrthogonal
	// LinearPermutation starts from a random permutation drawn from the
	// key: P random, L = I, U = 0, sign = +1, logAbsS = 0, so W is a
	// permutation matrix and the layer starts by reordering the columns,
	// mixing them only as far as training asks. Structure that lies along
	// the columns (integer or binary columns) survives the first steps.
	LinearPermutation
)

// linearInitNames names the starts, as in model files.
var linearInitNames = enum.Names[LinearInit]{Type: "LinearInit", What: "linear init", List: []string{"default", "orthogonal", "permutation"}}

// String returns the start's name, as in model files: "orthogonal" or
// "permutation" ("default" for LinearDefault).
func (l LinearInit) String() string { return linearInitNames.String(l) }

// MarshalText returns the start's name. A model file records a resolved
// start (or none, for kinds without linear layers); "default" is a Config
// not yet resolved.
func (l LinearInit) MarshalText() ([]byte, error) { return linearInitNames.MarshalText(l) }

// UnmarshalText sets l to the start named text.
func (l *LinearInit) UnmarshalText(text []byte) error { return linearInitNames.UnmarshalText(l, text) }

// InvertibleLinearFrom is InvertibleLinear started as init says: from a
// random orthogonal matrix (LinearOrthogonal or LinearDefault,
// InvertibleLinear itself) or
// from a random permutation (LinearPermutation). The parameter layout, the
// maps and the gradients are InvertibleLinear's; only the initial P, sign
// and parameters differ.
func InvertibleLinearFrom(init LinearInit) InitFunc {
	return func(key Key, dim, _ int) (Params, Bijection, error) {
		if dim < 1 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: dim must be at least 1, got %d", invLinWho, dim)
		}
		if err := checkLayerSize(invLinWho, "weight matrix", dim, dim); err != nil {
			return nil, Bijection{}, err
		}
		l := &invLin{dim: dim}
		var p Params
		var err error
		switch init {
		case LinearDefault, LinearOrthogonal:
			p, l.perm, l.sign, err = invLinInit(key, dim)
		case LinearPermutation:
			p, l.perm, l.sign = invLinPermutation(key, dim)
		default:
			err = fmt.Errorf("flows: %s: unknown init %v", invLinWho, init)
		}
		if err != nil {
			return nil, Bijection{}, err
		}
		l.np = len(p)
		return p, Bijection{
			Direct:     l.direct,
			Inverse:    l.inverse,
			DirectVJP:  l.directVJP,
			InverseVJP: l.inverseVJP,
		}, nil
	}
}

const invLinWho = "InvertibleLinear"

// invLin is InvertibleLinear's fixed shape: the permutation and signs
// drawn at init; its methods are the Bijection's functions.
type invLin struct {
	dim, np int
	perm    []int
	sign    []float64
}

// logDetOf returns Σ logAbsS, the log|det W|.
func (l *invLin) logDetOf(p Params) float64 {
	var s float64
	for _, v := range p[l.np-l.dim:] {
		s += v
	}
	return s
}

// forward checks x and p and returns z = x·W (rows), the factors and W.
func (l *invLin) forward(p Params, x *mat.Dense) (z []float64, n int, f invLinFactors, w []float64) {
	checkWidth(invLinWho, x, l.dim)
	checkParams(invLinWho, p, l.np)
	xs, n, _ := rawRows(x)
	f = newInvLinFactors(p, l.dim, l.perm, l.sign)
	w = f.weight()
	z = make([]float64, n*l.dim)
	linalg.Gemm(false, false, n, l.dim, l.dim, 1, xs, w, 0, z)
	return z, n, f, w
}

// backward checks z and p and returns x = z·W⁻¹ (rows) and the factors.
func (l *invLin) backward(p Params, z *mat.Dense) (x []float64, n int, f invLinFactors) {
	checkWidth(invLinWho, z, l.dim)
	checkParams(invLinWho, p, l.np)
	zs, n, _ := rawRows(z)
	f = newInvLinFactors(p, l.dim, l.perm, l.sign)
	x = append([]float64(nil), zs...)
	f.solveInverse(x, n)
	return x, n, f
}

func (l *invLin) direct(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
	z, n, _, _ := l.forward(p, x)
	return mat.NewDense(n, l.dim, z), repeatedLogDet(n, l.logDetOf(p))
}

func (l *invLin) inverse(p Params, z, _ *mat.Dense) (*mat.Dense, []float64) {
	x, n, _ := l.backward(p, z)
	return mat.NewDense(n, l.dim, x), repeatedLogDet(n, -l.logDetOf(p))
}

func (l *invLin) directVJP(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
	z, n, f, w := l.forward(p, x)
	ld := l.logDetOf(p)
	dim, np := l.dim, l.np
	// A private copy of x: the caller may modify its batch later.
	xs, _, _ := rawRows(x)
	xk := append([]float64(nil), xs...)
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(invLinWho, dz, dLogDet, dp, nil, n, dim, np, 0)
		g, _, _ := rawRows(dz)
		// z = x·W, logDet_i = Σ_j logAbsS_j:
		//   dL/dx = G·Wᵀ
		//   dL/dW = xᵀ·G
		// and each logAbsS_j receives Σ_i dLogDet_i directly.
		dx := make([]float64, n*dim)
		linalg.Gemm(false, true, n, dim, dim, 1, g, w, 0, dx)
		dW := make([]float64, dim*dim)
		linalg.Gemm(true, false, dim, dim, n, 1, xk, g, 0, dW)
		f.addGrad(dW, invLinSum(dLogDet), dp)
		return mat.NewDense(n, dim, dx)
	}
	return mat.NewDense(n, dim, z), repeatedLogDet(n, ld), back
}

func (l *invLin) inverseVJP(p Params, z, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
	x, n, f := l.backward(p, z)
	ld := -l.logDetOf(p)
	dim, np := l.dim, l.np
	// A private copy of x: the caller owns the returned batch.
	xk := append([]float64(nil), x...)
	back := func(dx *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(invLinWho, dx, dLogDet, dp, nil, n, dim, np, 0)
		g, _, _ := rawRows(dx)
		// x = z·V with V = W⁻¹, logDet_i = −Σ_j logAbsS_j.
		//   dL/dz = G·Vᵀ = G·W⁻ᵀ = ((G·P)·L⁻ᵀ)·U'⁻ᵀ   (solves)
		//   dL/dV = zᵀ·G, and dV = −V·dW·V gives
		//   dL/dW = −Vᵀ·zᵀ·G·Vᵀ = −(z·V)ᵀ·(G·Vᵀ) = −xᵀ·(dL/dz),
		// and each logAbsS_j receives −Σ_i dLogDet_i directly.
		dz := append([]float64(nil), g...)
		f.solveInverseTranspose(dz, n)
		dW := make([]float64, dim*dim)
		linalg.Gemm(true, false, dim, dim, n, -1, xk, dz, 0, dW)
		f.addGrad(dW, -invLinSum(dLogDet), dp)
		return mat.NewDense(n, dim, dz)
	}
	return mat.NewDense(n, dim, x), repeatedLogDet(n, ld), back
}

// invLinInit draws InvertibleLinear's initial parameters from key: the LU
// factors of a random orthogonal matrix. It returns the parameters, the row
// permutation perm (P·M has M's row perm[i] as its row i) and the signs of
// U's diagonal.
func invLinInit(key Key, dim int) (p Params, perm []int, sign []float64, err error) {
	q, _ := gaussianQR(key, dim)
	var lu mat.LU
	lu.Factorize(q)
	// gonum: A = P·L·U with A's row i equal to (L·U)'s row RowPivots()[i].
	perm = lu.RowPivots(nil)
	var l, u mat.TriDense
	lu.LTo(&l)
	lu.UTo(&u)

	nTri := dim * (dim - 1) / 2
	p = make(Params, 2*nTri+dim)
	k := 0
	for i := 1; i < dim; i++ {
		for j := 0; j < i; j++ {
			p[k] = l.At(i, j)
			k++
		}
	}
	for i := 0; i < dim; i++ {
		for j := i + 1; j < dim; j++ {
			p[k] = u.At(i, j)
			k++
		}
	}
	sign = make([]float64, dim)
	for j := 0; j < dim; j++ {
		s := u.At(j, j)
		if s == 0 || math.IsNaN(s) || math.IsInf(s, 0) {
			// Cannot happen for an orthogonal matrix; guard anyway.
			return nil, nil, nil, fmt.Errorf("flows: InvertibleLinear: singular initial matrix (U[%d,%d] = %v)", j, j, s)
		}
		sign[j] = math.Copysign(1, s)
		p[k] = math.Log(math.Abs(s))
		k++
	}
	return p, perm, sign, nil
}

// invLinPermutation draws a random permutation from key as InvertibleLinear's
// start: every parameter zero (L = I, U = 0, logAbsS = 0), sign +1, and P
// the permutation.
func invLinPermutation(key Key, dim int) (p Params, perm []int, sign []float64) {
	sign = make([]float64, dim)
	for j := range sign {
		sign[j] = 1
	}
	return make(Params, dim*dim), key.Rand().Perm(dim), sign
}

// invLinFactors holds the dense factors of InvertibleLinear's W = P·L·U′
// for one parameter vector, with U′ = U + diag(sign·exp(logAbsS)). The
// slices are fresh copies, so a pullback may keep them while p changes.
type invLinFactors struct {
	dim  int
	perm []int     // row permutation of P: (P·M)[i,:] = M[perm[i],:]
	l    []float64 // dim×dim unit lower triangular L, row-major
	u    []float64 // dim×dim upper triangular U′, row-major
}

// newInvLinFactors unpacks p (InvertibleLinear's layout) into dense L and U′.
func newInvLinFactors(p Params, dim int, perm []int, sign []float64) invLinFactors {
	f := invLinFactors{dim: dim, perm: perm, l: make([]float64, dim*dim), u: make([]float64, dim*dim)}
	k := 0
	for i := 0; i < dim; i++ {
		row := f.l[i*dim : (i+1)*dim]
		for j := 0; j < i; j++ {
			row[j] = p[k]
			k++
		}
		row[i] = 1
	}
	for i := 0; i < dim; i++ {
		row := f.u[i*dim : (i+1)*dim]
		for j := i + 1; j < dim; j++ {
			row[j] = p[k]
			k++
		}
	}
	for j := 0; j < dim; j++ {
		f.u[j*dim+j] = sign[j] * math.Exp(p[k])
		k++
	}
	return f
}

// permutedL returns P·L, whose row i is L's row perm[i].
func (f invLinFactors) permutedL() []float64 {
	d := f.dim
	pl := make([]float64, d*d)
	for i, r := range f.perm {
		copy(pl[i*d:(i+1)*d], f.l[r*d:(r+1)*d])
	}
	return pl
}

// weight returns W = (P·L)·U′.
func (f invLinFactors) weight() []float64 {
	d := f.dim
	w := make([]float64, d*d)
	linalg.Gemm(false, false, d, d, d, 1, f.permutedL(), f.u, 0, w)
	return w
}

// solveInverse replaces the n×dim rows b by b·W⁻¹ = b·U′⁻¹·L⁻¹·Pᵀ, by two
// triangular solves and a column permutation.
func (f invLinFactors) solveInverse(b []float64, n int) {
	d := f.dim
	impl := blas64.Implementation()
	// Y·U′ = B, then X₁·L = Y.
	impl.Dtrsm(blas.Right, blas.Upper, blas.NoTrans, blas.NonUnit, n, d, 1, f.u, d, b, d)
	impl.Dtrsm(blas.Right, blas.Lower, blas.NoTrans, blas.Unit, n, d, 1, f.l, d, b, d)
	// X = X₁·Pᵀ: (X₁·Pᵀ)[r,j] = Σ_k X₁[r,k]·P[j,k] = X₁[r,perm[j]].
	tmp := make([]float64, d)
	for r := 0; r < n; r++ {
		row := b[r*d : (r+1)*d]
		copy(tmp, row)
		for j, k := range f.perm {
			row[j] = tmp[k]
		}
	}
}

// solveInverseTranspose replaces the n×dim rows g by g·W⁻ᵀ. Since
// W⁻ᵀ = (U′ᵀ·Lᵀ·Pᵀ)⁻¹ = P·L⁻ᵀ·U′⁻ᵀ, that is a column permutation and two
// triangular solves.
func (f invLinFactors) solveInverseTranspose(g []float64, n int) {
	d := f.dim
	// G·P: (G·P)[r,k] = Σ_i G[r,i]·P[i,k] = G[r,i] for the i with perm[i] = k.
	tmp := make([]float64, d)
	for r := 0; r < n; r++ {
		row := g[r*d : (r+1)*d]
		copy(tmp, row)
		for i, k := range f.perm {
			row[k] = tmp[i]
		}
	}
	impl := blas64.Implementation()
	// Y·Lᵀ = G·P, then Z·U′ᵀ = Y.
	impl.Dtrsm(blas.Right, blas.Lower, blas.Trans, blas.Unit, n, d, 1, f.l, d, g, d)
	impl.Dtrsm(blas.Right, blas.Upper, blas.Trans, blas.NonUnit, n, d, 1, f.u, d, g, d)
}

// addGrad adds to dp (InvertibleLinear's layout) the gradient with respect
// to the free parameters given dL/dW, plus ldGrad to every logAbsS entry
// (the log-det term's contribution).
//
// With W = (P·L)·U′:
//
//	dL/d(P·L) = dL/dW·U′ᵀ,   so dL/dL has row perm[i] equal to its row i;
//	dL/dU′    = (P·L)ᵀ·dL/dW.
//
// Only L's strictly lower entries and U′'s strictly upper entries are free;
// U′'s diagonal is sign_j·exp(logAbsS_j), whose derivative is itself, so
// dL/dlogAbsS_j = dL/dU′[j,j]·U′[j,j].
func (f invLinFactors) addGrad(dW []float64, ldGrad float64, dp Params) {
	d := f.dim
	dPL := make([]float64, d*d)
	linalg.Gemm(false, true, d, d, d, 1, dW, f.u, 0, dPL)
	dU := make([]float64, d*d)
	linalg.Gemm(true, false, d, d, d, 1, f.permutedL(), dW, 0, dU)
	// Undo the permutation: L's row perm[i] is (P·L)'s row i.
	dL := make([]float64, d*d)
	for i, r := range f.perm {
		copy(dL[r*d:(r+1)*d], dPL[i*d:(i+1)*d])
	}
	k := 0
	for i := 1; i < d; i++ {
		for j := 0; j < i; j++ {
			dp[k] += dL[i*d+j]
			k++
		}
	}
	for i := 0; i < d; i++ {
		for j := i + 1; j < d; j++ {
			dp[k] += dU[i*d+j]
			k++
		}
	}
	for j := 0; j < d; j++ {
		dp[k] += dU[j*d+j]*f.u[j*d+j] + ldGrad
		k++
	}
}

// invLinSum returns the sum of v.
func invLinSum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}
