// Package optim trains the models of package flows: the Adam optimiser over
// flat parameter vectors, global-norm gradient clipping, learning-rate
// schedules, and a negative log-likelihood helper that turns a
// flows.Distribution and a batch into a loss and its gradient.
//
// # Parameters and gradients
//
// A model's parameters are one flat flows.Params ([]float64), and gradients
// share its layout, so everything here works on plain slices: an [Adam]
// holds one moment pair per entry, and [ClipGlobalNorm] treats the whole
// gradient as one vector.
//
// # Adam
//
// [NewAdam] makes the optimiser for n parameters with the paper's defaults
// (LR 1e-3, Beta1 0.9, Beta2 0.999, Eps 1e-8). [Adam.Step] updates the
// parameters in place, without allocating, following Algorithm 1 of Kingma &
// Ba (2015) with bias correction; [Adam.StepLR] does the same at a given
// learning rate, for schedules. The state (moments and step count) lives in
// the Adam value; [Adam.Reset] clears it.
//
// # Clipping
//
// [ClipGlobalNorm] rescales a gradient whose Euclidean norm exceeds a bound
// and returns the norm it had, computed without overflow. A returned NaN or
// +Inf means the gradient holds non-finite entries: skip that step.
//
// # Schedules
//
// A [Schedule] maps (step, totalSteps) to a learning rate: [Constant],
// [Cosine] (half-cosine decay from an initial to a final rate) and
// [WarmupCosine] (a linear warmup first). Give it [Adam.Steps], the number
// of steps already taken.
//
// # Loss
//
// [NLL] returns the mean negative log-likelihood of a batch (one sample per
// row of a *mat.Dense) and writes its gradient with respect to the
// parameters into a buffer, overwriting it. [NLLValue] returns the loss alone,
// for validation. Both reject a batch holding a NaN or Inf with an error
// naming the first bad row and column before calling the model, and report a
// non-finite loss as an error naming the first row whose log density is not
// finite; NLL then zeroes the gradient. Misuse (a nil or empty batch, a
// gradient buffer of the wrong length) panics with an "optim:" message.
//
// # A training loop
//
// With a distribution d, its initial parameters p (say from a flows.Flow)
// and a function batch(i) returning the i-th training batch, a loop in the
// style of jax-flows reads:
//
//	grad := make(flows.Params, len(p))
//	opt := optim.NewAdam(len(p))
//	sched := optim.WarmupCosine(1e-3, 1e-5, 100)
//	const total = 5000
//	for i := range total {
//		loss, err := optim.NLL(d, p, batch(i), nil, grad)
//		if err != nil {
//			return err // bad data, or the model diverged
//		}
//		if norm := optim.ClipGlobalNorm(grad, 100); math.IsNaN(norm) || math.IsInf(norm, 0) {
//			return errors.New("non-finite gradient")
//		}
//		opt.StepLR(p, grad, sched(opt.Steps(), total))
//		if i%500 == 0 {
//			val, _ := optim.NLLValue(d, p, validation, nil)
//			log.Printf("step %d: train NLL %.4f, validation NLL %.4f", i, loss, val)
//		}
//	}
//
// # Fitting
//
// [Fit] runs such a loop for you, in the spirit of FlowJAX's fit_to_data:
// it checks the data for NaN and Inf (naming the row and column), holds out
// a random tenth of the rows for validation, shuffles the rest every epoch
// into minibatches, steps Adam on the clipped gradient of [NLL] at the rate
// of a [Schedule] (constant by default), updates BatchNorm's running
// statistics, and stops early when the validation NLL has not improved for
// [FitConfig.Patience] epochs, leaving the best epoch's parameters in p. A
// loss that turns non-finite ends it with an error naming the epoch and step,
// with p restored to the best parameters so far. The zero [FitConfig] works;
// each field documents its default. Fit does not run the data-dependent
// initialisation; do that once before:
//
//	flows.InitFromData(d, p, x, nil)
//	res, err := optim.Fit(flows.NewKey(1), d, p, x, nil, optim.FitConfig{
//		Epochs:   200,
//		Schedule: optim.Cosine(1e-3, 1e-5),
//	})
//
// The same key, data and configuration give the same parameters, bit for
// bit, on every GOMAXPROCS. For a ready-made model of package
// model, its method Fit is the one call, with the command line's key and
// defaults; package optim itself knows nothing of models, as gonum's
// optimize knows nothing of what it minimises. A conditional
// model trains the same way, given its contexts: Fit(key, d, p, x, c, cfg).
//
// # Penalties
//
// A regulariser joins the loss through [FitConfig.Penalty], a [Penalty]:
// a function of the parameters and the step's batch that returns its value
// and adds its gradient into the step's gradient, after the NLL's and
// before clipping. Fit then minimises NLL + penalty; the NLL it reports
// and early stopping leave the penalty out, and [Progress.TrainPenalty]
// reports the epoch's mean. A layer offers its own regulariser as such a
// function: flows.CNFPenalty gives RNODE's kinetic-energy and
// Jacobian-norm terms of a continuous normalizing flow, which keep its
// ODE solves short.
//
// # Errors
//
// Failures wrap one of [ErrNonFinite] (data or contexts holding NaN or Inf;
// a [NonFiniteError] names the row and column), [ErrDiverged] (a
// non-finite loss, gradient or validation NLL) and [ErrTooFewRows]: test
// them with errors.Is, as gonum's optimize does with its errors.
//
// # Variational inference
//
// To fit a flow to a target known only up to a constant, p̃ (a Target: its
// unnormalised log density and gradient), [ReverseKL] estimates
// E_q[log q − log p̃] by the reparameterisation trick: z ~ N(0, I) from a
// key, x = Inverse(z), with the gradient pulled back through the
// bijection's InverseVJP. [FitVI] runs Adam on it, with optional annealing
// of the target. [ImportanceLogWeights], [LogMeanExp] and [ImportanceESS]
// give the importance weights p̃/q, an estimate of log Z and the effective
// sample size. With Target.ContextDim > 0 the target is a family p̃(x | c)
// and the flow a conditional q(x | c) trained over contexts drawn by
// Target.Contexts (amortised inference). See examples/energy.
//
// Nothing in this package keeps global state or prints; an Adam is the only
// mutable value, and it is not safe for concurrent use.
package optim
