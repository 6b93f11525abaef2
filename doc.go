// Package flows is a library of normalizing flows: density estimation,
// sampling and anomaly scores, in Go, with hand-written gradients.
//
// It follows the functional style of jax-flows. Every layer is a
// constructor that returns an init function; init, given a random Key and
// the input dimension, yields the layer's flat parameters and its
// functions:
//
//	params, layer, err := flows.Serial(
//		flows.AffineCoupling(flows.MLP([]int{64, 64}, flows.ReLU)),
//		flows.InvertibleLinear(),
//		flows.ActNorm(),
//	)(flows.NewKey(0), 5, 0)
//	z, logDet := layer.Direct(params, x, nil)
//
// A Flow turns a bijection and a prior into a Distribution, whose log
// density has a pullback (a vector-Jacobian product) so that an optimiser
// (package optim) can train it.
//
// # Direction
//
// Direct maps data x to latent z: it is the density and training direction,
// and log p(x) = log p_prior(Direct(x)) + logDet(x). Inverse maps z back to
// x: it is the sampling direction. Masked autoregressive flows (MAF) are
// fast in the Direct direction and take dim passes to invert; IAF is
// Invert(MAF(...)), fast to sample and slow to evaluate.
//
// # Batches
//
// A batch is a *mat.Dense with one example per row (n×dim, n ≥ 1).
// Log-determinants are per example: a []float64 of length n. A batch of the
// wrong width is a programming error and panics with a message that starts
// "flows:" and names the expected width.
//
// # Parameters
//
// Parameters are one flat vector, Params ([]float64). Each layer documents
// the layout of its slice (ActNorm's is [logScale(dim) | bias(dim)]);
// Serial concatenates its layers' slices in order and hands each layer a
// view of its own part; Flow's vector is [bijection's | prior's], so a
// trainable prior trains with the rest. Gradients share the layout of the
// parameters, so an optimiser and a saved model each see one vector.
//
// # Gradients
//
// Go has no automatic differentiation, so every layer carries its own
// pullback: DirectVJP returns, with the Direct pass's outputs, a function
// that takes dL/dz and dL/dlogDet, adds dL/dparams into a gradient vector
// and returns dL/dx. Layers that can also be differentiated in the sampling
// direction provide InverseVJP. Package flowstest checks a layer's
// log-determinant and pullbacks against finite differences; every layer of
// this package passes it, and a layer of your own can be checked the same
// way in one line of a test.
//
// # Precision
//
// The conditioner nets' matrix products, the bulk of a flow's work, run in
// float64 by default. Set Precision to Float32 where the net is described,
// MLPConfig (MLPWith, for the couplings) or MADEConfig (MADE, MAF and the
// other autoregressive layers): the products then round their inputs to
// float32 as they pack them and sum them in float32 (16 lanes with AVX-512,
// 8 with AVX2) into float64 results. Everything else stays float64: the
// parameters and their gradients as an optimiser holds them, Adam's
// moments, the activations, transformers, log-determinants and losses.
// Float32 results are bit-identical on any GOMAXPROCS and kernel, like
// float64's; a MAF's or RealNVP's loss gradient agrees with float64's to
// about 3e-7 (relative), within a derived bound that the tests check. The
// conformance suite checks float64.
//
// # Aliasing
//
// No function modifies its arguments: inputs, contexts, parameters and
// incoming gradients are read only, and results are new matrices; the one
// exception is the gradient buffers dp and dc that a pullback adds into. Pullbacks may
// read the batch and parameters of their forward pass, so do not change
// those (for example, by an optimiser step) before the pullback has run.
// Don't be clever: pass a copy when in doubt.
//
// # State
//
// Closures hold no mutable state, so every function is safe for concurrent
// use. State that is not trained (BatchNorm's running averages) lives in
// the parameter vector, receives zero gradient, and changes only when the
// training loop calls UpdateState; a data-dependent initialisation (ActNorm)
// runs only when the program calls InitFromData. Both reach layers anywhere
// in a Serial stack inside a Flow.
//
// # Prepared evaluation
//
// Scoring and sampling at fixed parameters (a loaded model, a server, a
// batch job) use PrepareDistribution (or PrepareBijection) once: it copies
// the parameters and computes what depends on them alone (a MADE's masked
// weights and the blocks of its sequential inverse, a conditioner's
// weights packed for the products), and returns functions without a
// parameter argument that give the unprepared ones' results bit for bit,
// never see later changes to the parameters, and are safe for concurrent
// use. A Serial stack of layers that provide row maps (MAF,
// MaskedAutoregressive, couplings whose conditioner is an MLP: Coupling,
// AffineCoupling, NeuralSplineCoupling and the others built on Coupling;
// Reverse, Shuffle, and Serial and Invert of them) runs all of its layers
// over one block of 120 rows before the next, the blocks on all cores; in
// a stack with other layers (a model's Standardize), each run of such
// layers is fused so and the others are called in turn on the whole batch,
// at the prepared copy of their parameters. Training keeps the functions
// that take p.
//
// # Randomness
//
// Randomness comes only from an explicit Key, split into independent keys
// for independent uses (see Key.Split); there is no global random state.
// The same key gives the same parameters and the same samples, bit for bit,
// on every GOMAXPROCS.
//
// # Contexts
//
// Every layer, Serial, Invert, Flow and distribution takes an optional
// context: init gets its width (0 for none), and every function a matrix c
// with one row per example (nil for none). Layers with a conditioner (the
// couplings, MAF and the other autoregressive layers) feed c to it, so a
// Flow made with a context width models p(x | c); layers without one
// ignore it. Pullbacks add dL/dc into a dc the caller passes (nil when it
// is not wanted), as they add dL/dparams into dp, so one dc collects the
// gradient of a whole stack. There is no second, conditional API: an
// unconditional flow is the case of width 0.
//
// # Layers over transformers
//
// Coupling and MaskedAutoregressive are each written once over a
// Transformer, a monotone map of one number whose parameters come from the
// conditioner (Affine, Shift, Spline, LogisticMixture, DeepSigmoidal,
// DeepSigmoidalBounded, SumOfSquares, SumOfSquaresUnitTails, Bernstein);
// AffineCoupling, AdditiveCoupling, NeuralSplineCoupling,
// LogisticMixtureCoupling, CircularCoupling (a transformer per column and
// angles read as (cos, sin)), MAF, NeuralSplineAutoregressive,
// NeuralAutoregressive and NeuralAutoregressiveBounded are presets of them,
// and a coupling preset has the parameter layout of Coupling over its
// transformer. A new transformer gives both layer forms at once.
// Transformers without a closed-form inverse invert by a bracketed,
// safeguarded Newton solver to a stated tolerance. Layers of their own:
// BNAF (block weights, not one transformer per column), and the variational
// flows Planar, Radial and Sylvester, closed-form in the sampling
// direction.
//
// # Packages
//
// Package flows holds the layers, distributions and keys. Package optim
// trains any Distribution (Adam, Fit, FitVI) and knows nothing of models.
// Package model is the ready-made model built on both: Model, Config, the
// kind registry (Kinds, Kind.Info), model files, Model.Fit. Package prep
// prepares tables (Audit, StandardizeFrom, RobustStandardizeFrom,
// GaussianNLL) for the model, the command line, the server and Beam;
// package table reads and writes CSV; flowstest is the conformance suite.
//
// # Images
//
// An image of Shape{C, H, W} is a row of C·H·W values in channel-major
// order (value (c, y, x) at column c·H·W + y·W + x), so the image layers
// (Squeeze, ImageActNorm, Conv1x1, ImageCoupling over a ConvNet, FactorOut,
// and the ready-made Glow) are ordinary layers. Convolutions are im2col
// products on the matrix kernel, split by images. A multi-scale flow's
// factor-out is a bijection of the whole row (Glow's learned split prior
// is a coupling of the leaving channels), so Flow(Glow(...), Normal()) is
// the whole model.
//
// # Continuous flows
//
// CNF is a continuous normalizing flow: an ODE solved from t = 1 (data)
// to t = 0 (latent) by the solvers of ODESolver, with the log-determinant
// integrated along (exactly, or by Hutchinson's estimator whose noise comes
// from the init key folded with a hash of the parameters and the row, so
// the closures stay pure functions), and pullbacks by the adjoint method or
// through the solver's steps. An optional Stats hook counts the function
// evaluations; a solve past its step budget gives NaN rows, which
// optim.Fit treats as a blow-up. CNFPenalty gives RNODE's regularisers
// (the kinetic energy ∫‖f‖² dt and the Jacobian norm ∫‖∂f/∂z‖²_F dt, an
// extra ODE state of a solve of its own) as a function to add to the
// training loss through optim.FitConfig.Penalty: trajectories kept
// straight take the adaptive solver fewer steps. For the ready-made cnf
// kind, model.Model.CNFPenalty makes it (flows fit --kinetic, --jacobian).
//
// # Beyond one machine
//
// The module github.com/gonormflows/flows/beam runs scoring, sampling,
// evaluation and sweeps of model files on Apache Beam (package flowsbeam,
// command flows-beam), with the same results, bit for bit, as the flows
// command on one machine.
//
// # Errors
//
// An init function returns an error when the layer cannot work at the
// dimension asked for (a coupling on one column); Serial wraps it with the
// failing layer's index. Data at fault (a NaN in a training batch) is an
// error that names the row; misuse in a hot path (a batch of the wrong
// width) panics with a "flows:" message, as gonum does.
package flows
