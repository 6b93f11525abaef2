package flows

// The batch normalisation bijection of Masked Autoregressive Flow
// (Papamakarios, Pavlakou and Murray 2017, "Masked Autoregressive Flow for
// Density Estimation", appendix B), per row:
//
//	z_j = (x_j − m_j)/√(v_j + ε)·exp(logGamma_j) + beta_j
//	logDet = Σ_j logGamma_j − ½·log(v_j + ε)
//
// where m and v are a per-column mean and variance: the batch's in the
// training map (the biased variance, divisor n, as in the paper, computed
// in two passes), the running averages in the evaluation map.
//
// The running averages are kept in the parameter vector, not in a closure,
// so that the vector holds the whole model (saving it saves the state) and
// the closures stay pure. Every pullback adds exactly zero to their
// gradient, in either mode and direction, so an optimiser (Adam, clipping)
// leaves them where they are.
//
// The training map's rows interact through the batch statistics, and its
// pullback goes through them, the log-det's dependence on v included.
// UpdateState moves the running averages by
// running ← (1 − Momentum)·running + Momentum·batch statistic (with
// Momentum 1, exactly the batch's, even from non-finite state). The running
// variance is the average of biased batch variances, so with Momentum 1 the
// evaluation map after UpdateState(p, x) is the training map of x.
//
// Inverse always uses the running averages, in both modes, so it is exact
// and usable before any Direct call; in training mode it is therefore the
// inverse of the evaluation map, not of the training map: the batch
// statistics that produced a z cannot be known from z. A training loop
// then reads:
//
//	model := func(train bool) flows.DistInitFunc {
//		bn := flows.BatchNorm(flows.BatchNormConfig{Momentum: 0.1, Eps: 1e-5, Train: train})
//		return flows.Flow(flows.Serial(layer1, bn, layer2), flows.Normal())
//	}
//	p, train, _ := model(true)(key, dim, 0)
//	_, eval, _ := model(false)(key, dim, 0)
//	for step := range steps {
//		optim.NLL(train, p, batch, nil, grad)
//		opt.Step(p, grad)
//		flows.UpdateState(train, p, batch, nil)
//	}
//	logp := eval.LogPDF(p, x) // running averages

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// BatchNormConfig configures BatchNorm.
type BatchNormConfig struct {
	// Momentum is the weight of the new batch in the running averages,
	// running ← (1 − Momentum)·running + Momentum·batch. It must lie in
	// (0, 1]; 0.1 is usual (a decay of 0.9 in the other convention).
	Momentum float64

	// Eps is added to the variance before the square root and the log. It
	// must be positive and finite; 1e-5 is usual.
	Eps float64

	// Train selects the training map, which normalises with the mean and
	// biased variance of each column of the batch it is given (at least 2
	// rows), instead of the evaluation map, which uses the running averages
	// and is an elementwise affine map for any batch size. The two have the
	// same parameter layout, so one parameter vector serves a model built
	// each way: train one built with Train: true, calling flows.UpdateState
	// on it once per step after the optimiser's step (Serial and Flow pass
	// each BatchNorm the batch as the layers before it map it), and evaluate
	// densities or sample with one built with Train: false from the same
	// key, given the same vector.
	Train bool
}

// BatchNorm returns the init function of the batch normalisation bijection
// of MAF (Papamakarios et al., 2017, appendix B): per row,
// z_j = (x_j − m_j)/√(v_j + ε)·exp(logGamma_j) + beta_j, with m and v each
// column's mean and variance in the batch (cfg.Train) or their running
// averages (the formulas and notes are in batchnorm.go's file comment).
//
// Parameter layout (4·dim entries):
//
//	[logGamma (dim) | beta (dim) | runningMean (dim) | runningVar (dim)]
//
// logGamma and beta are trainable and start at 0. runningMean and
// runningVar, starting at 0 and 1, are state that is not trained: every
// pullback adds exactly zero to their gradient, and only the training
// mode's UpdateState(p, x) moves them, in place in p, toward the batch's
// statistics with weight Momentum, returning Direct(p, x). Inverse and
// InverseVJP always use the running averages, so in training mode they
// invert the evaluation map, not the training map.
//
// Init returns an error when dim < 1, Momentum is not in (0, 1] or Eps is
// not positive and finite (NaN included). The training map panics for a
// batch of fewer than 2 rows; the evaluation map and Inverse when a running
// variance plus ε is not positive and finite. All functions are safe for
// concurrent use; UpdateState writes p, so not alongside other uses of it.
func BatchNorm(cfg BatchNormConfig) InitFunc {
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		if err := checkDim("BatchNorm", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		if !(cfg.Momentum > 0 && cfg.Momentum <= 1) {
			return nil, Bijection{}, fmt.Errorf("flows: BatchNorm: momentum %v, need 0 < momentum ≤ 1 (0.1 is usual)", cfg.Momentum)
		}
		if !(cfg.Eps > 0) || math.IsInf(cfg.Eps, 1) {
			return nil, Bijection{}, fmt.Errorf("flows: BatchNorm: eps %v, need a finite eps > 0 (1e-5 is usual)", cfg.Eps)
		}
		bn := &batchNorm{dim: dim, cfg: cfg}
		p := make(Params, 4*dim)
		for j := range dim {
			p[3*dim+j] = 1
		}
		b := layerPass(bn.evalPass).bijection()
		if cfg.Train {
			b.Direct, b.DirectVJP, b.UpdateState = bn.directTrain, bn.directTrainVJP, bn.updateState
		}
		return p, b, nil
	}
}

// batchNorm holds BatchNorm's fixed configuration; it is never modified
// after init.
type batchNorm struct {
	dim int
	cfg BatchNormConfig
}

const bnWho = "BatchNorm"

// split returns the four blocks of the parameter (or gradient) layout.
func (bn *batchNorm) split(p Params) (logGamma, beta, mean, variance []float64) {
	d := bn.dim
	return p[:d:d], p[d : 2*d : 2*d], p[2*d : 3*d : 3*d], p[3*d : 4*d : 4*d]
}

// evalAffine returns, for the evaluation map z = (x − μ)·a + β, the
// per-column factor a_j = exp(logGamma_j)/√(runningVar_j + ε) and the log-det
// Σ_j log a_j. It panics when a running variance is not above −ε.
func (bn *batchNorm) evalAffine(p Params) (a []float64, ld float64) {
	logGamma, _, _, variance := bn.split(p)
	a = make([]float64, bn.dim)
	for j, lg := range logGamma {
		s := variance[j] + bn.cfg.Eps
		if !(s > 0) || math.IsInf(s, 1) {
			panic(fmt.Sprintf("flows: BatchNorm: running variance %v in column %d: need runningVar + eps > 0 and finite", variance[j], j))
		}
		a[j] = math.Exp(lg) / math.Sqrt(s)
		ld += lg - 0.5*math.Log(s)
	}
	return a, ld
}

// evalMap returns the evaluation map z = (x − μ)·a + β with its log-det.
func (bn *batchNorm) evalMap(p Params, x *mat.Dense) (colAffine, float64) {
	checkWidth(bnWho, x, bn.dim)
	checkParams(bnWho, p, 4*bn.dim)
	a, ld := bn.evalAffine(p)
	_, beta, mean, _ := bn.split(p)
	return colAffine{sub: mean, mul: a, add: beta}, ld
}

// evalPass computes the evaluation map z = (x − μ)·a + β, or, when
// inverse, its inverse x = (z − β)·(1/a) + μ with log-det −Σ_j log a_j,
// and, when vjp, the pullback: colaffine.go's direct form (inverse form)
// with θ = logGamma and h = z − β (x − μ), a private copy. The running
// statistics are state: they get no gradient (stop-gradient).
func (bn *batchNorm) evalPass(p Params, in, _ *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	m, ld := bn.evalMap(p, in)
	if inverse {
		inv := make([]float64, bn.dim)
		for j, a := range m.mul {
			inv[j] = 1 / a
		}
		m, ld = colAffine{sub: m.add, mul: inv, add: m.sub}, -ld
	}
	out, n := m.apply(in)
	res, lds := mat.NewDense(n, bn.dim, out), repeatedLogDet(n, ld)
	if !vjp {
		return res, lds, nil
	}
	v := scaleShiftVJP{f: m.mul, h: colAffine{sub: m.add}.applyRows(out, n), inverse: inverse}
	return res, lds, bn.pullback(v, n)
}

// pullback checks a pullback's arguments and runs v on them: logGamma and
// β get their gradients, the running statistics none.
func (bn *batchNorm) pullback(v scaleShiftVJP, n int) Pullback {
	d := bn.dim
	return func(g *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(bnWho, g, dLogDet, dp, nil, n, d, 4*d, 0)
		dLogGamma, dBeta, _, _ := bn.split(dp)
		return v.back(g, dLogDet, dLogGamma, dBeta)
	}
}

// bnBatch is the training map's pass over one batch.
type bnBatch struct {
	n              int
	mean, variance []float64 // batch statistics (biased variance)
	r              []float64 // 1/√(v_j + ε)
	xhat           []float64 // (x − m)·r, n×dim
	z              []float64 // xhat·e^{logGamma} + β, n×dim
	ld             float64   // Σ_j logGamma_j − ½·log(v_j + ε)
}

// trainForward computes the training map of x with its batch statistics.
func (bn *batchNorm) trainForward(p Params, x *mat.Dense) bnBatch {
	checkWidth(bnWho, x, bn.dim)
	checkParams(bnWho, p, 4*bn.dim)
	xs, n, _ := rawRows(x)
	if n < 2 {
		panic(fmt.Sprintf("flows: BatchNorm: training mode needs a batch of at least 2 rows for its variance, got %d (use Train: false to evaluate single rows)", n))
	}
	d := bn.dim
	logGamma, beta, _, _ := bn.split(p)
	b := bnBatch{n: n, r: make([]float64, d)}
	b.mean, b.variance = columnMoments(xs, n, d)
	gamma := make([]float64, d)
	for j := range b.variance {
		b.variance[j] /= float64(n)
		s := b.variance[j] + bn.cfg.Eps
		b.r[j] = 1 / math.Sqrt(s)
		gamma[j] = math.Exp(logGamma[j])
		b.ld += logGamma[j] - 0.5*math.Log(s)
	}
	b.xhat = colAffine{sub: b.mean, mul: b.r}.applyRows(xs, n)
	b.z = colAffine{mul: gamma, add: beta}.applyRows(b.xhat, n)
	return b
}

func (bn *batchNorm) directTrain(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
	b := bn.trainForward(p, x)
	return mat.NewDense(b.n, bn.dim, b.z), repeatedLogDet(b.n, b.ld)
}

func (bn *batchNorm) directTrainVJP(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
	b := bn.trainForward(p, x)
	n, d := b.n, bn.dim
	logGamma, _, _, _ := bn.split(p)
	gamma := make([]float64, d)
	for j, lg := range logGamma {
		gamma[j] = math.Exp(lg)
	}
	// The returned z is the caller's; the pullback uses only xhat, r and
	// gamma, which nothing else sees.
	z := mat.NewDense(n, d, b.z)
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
		checkPullback(bnWho, dz, dLogDet, dp, nil, n, d, 4*d, 0)
		g, _, _ := rawRows(dz)
		dLogGamma, dBeta, _, _ := bn.split(dp)
		// Per column (index j dropped), with x̂_i = (x_i − m)·r,
		// r = (v + ε)^{−½}, m = (1/n)Σ x_i, v = (1/n)Σ (x_i − m)²:
		//   z_i = x̂_i·γ + β,  logDet_k = logGamma − ½·log(v + ε) for every k.
		// Let a_i = g_i·γ = ∂L/∂x̂_i and Λ = Σ_k dLogDet_k. Then
		//   ∂L/∂β        = Σ_i g_i
		//   ∂L/∂logGamma = Σ_i a_i·x̂_i + Λ
		// and, through x̂ (the usual batch-norm backward, since m and v
		// depend on every row: ∂x̂_k/∂x_i = r·(δ_ki − 1/n − x̂_k·x̂_i/n)),
		//   Σ_k a_k·∂x̂_k/∂x_i = r·(a_i − mean(a) − x̂_i·mean(a·x̂)),
		// and through the log-det, ∂v/∂x_i = 2(x_i − m)/n (the m term
		// vanishes as Σ_k (x_k − m) = 0), so
		//   ∂(−½Λ·log(v + ε))/∂x_i = −Λ·(x_i − m)/(n(v + ε)) = −r·x̂_i·Λ/n.
		// Together
		//   ∂L/∂x_i = r·(a_i − mean(a) − x̂_i·(mean(a·x̂) + Λ/n)).
		// The running statistics are state: they get no gradient.
		var lambda float64
		for _, v := range dLogDet {
			lambda += v
		}
		fn := float64(n)
		sumA := make([]float64, d)  // Σ_i a_i
		sumAH := make([]float64, d) // Σ_i a_i·x̂_i
		for i := 0; i < n; i++ {
			gr, hr := g[i*d:(i+1)*d], b.xhat[i*d:(i+1)*d]
			for j := range gr {
				a := gr[j] * gamma[j]
				dBeta[j] += gr[j]
				sumA[j] += a
				sumAH[j] += a * hr[j]
			}
		}
		for j := range dLogGamma {
			dLogGamma[j] += sumAH[j] + lambda
			sumA[j] /= fn                       // now mean(a)
			sumAH[j] = (sumAH[j] + lambda) / fn // now mean(a·x̂) + Λ/n
		}
		dx := make([]float64, n*d)
		for i := 0; i < n; i++ {
			gr, hr, dxr := g[i*d:(i+1)*d], b.xhat[i*d:(i+1)*d], dx[i*d:(i+1)*d]
			for j := range dxr {
				dxr[j] = b.r[j] * (gr[j]*gamma[j] - sumA[j] - hr[j]*sumAH[j])
			}
		}
		return mat.NewDense(n, d, dx)
	}
	return z, repeatedLogDet(n, b.ld), back
}

// updateState is the training mode's UpdateState: it moves the running
// averages toward the batch statistics of x and returns the training map
// of x.
func (bn *batchNorm) updateState(p Params, x, _ *mat.Dense) *mat.Dense {
	b := bn.trainForward(p, x)
	_, _, mean, variance := bn.split(p)
	mom := bn.cfg.Momentum
	for j := range mean {
		if mom == 1 {
			// Exactly the batch statistics, even from non-finite state.
			mean[j], variance[j] = b.mean[j], b.variance[j]
			continue
		}
		mean[j] = (1-mom)*mean[j] + mom*b.mean[j]
		variance[j] = (1-mom)*variance[j] + mom*b.variance[j]
	}
	return mat.NewDense(b.n, bn.dim, b.z)
}
