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
// LogisticMixtureCoupling, MAF, NeuralSplineAutoregressive,
// NeuralAutoregressive and NeuralAutoregressiveBounded are presets of them.
// A new transformer gives both layer forms at once. Transformers without a
// closed-form inverse invert by a bracketed, safeguarded Newton solver to
// a stated tolerance. Layers of their own: BNAF (block weights, not one
// transformer per column), CircularCoupling (angles), and the variational
// flows Planar, Radial and Sylvester, closed-form in the sampling
// direction.
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
