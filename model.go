package flows

// Ready-made flows: the one list of architectures (kinds), activations and
// configuration fields that Model, the model-file format and the command
// line all read. Adding an architecture is one entry of the kinds table:
// NewModel, Load, Kinds and the CLI's --kind pick it up from there.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"
)

// Kind names a ready-made flow architecture for NewModel.
type Kind string

// The architectures NewModel builds. Each is a stack of Config.Layers
// blocks after a Standardize layer, with a standard normal prior; Kinds
// lists them with what they need.
const (
	// KindRealNVP is RealNVP (Dinh et al., 2017): blocks of
	// [AffineCoupling(MLP(Hidden, Activation)), Reverse].
	KindRealNVP Kind = "realnvp"
	// KindGlow is Glow (Kingma & Dhariwal, 2018) on vectors: blocks of
	// [ActNorm, InvertibleLinear, AffineCoupling(MLP(Hidden, Activation))].
	// NewModel runs ActNorm's data-dependent initialisation on the data.
	KindGlow Kind = "glow"
	// KindMAF is a masked autoregressive flow (Papamakarios et al., 2017):
	// blocks of [MAF(MADEConfig{Hidden, Activation, NaturalOrder}),
	// Reverse]. Each hidden width should be at least dim−1 (see MADE).
	KindMAF Kind = "maf"
	// KindNSFCoupling is a rational-quadratic neural spline flow with
	// coupling layers, RQ-NSF (C) (Durkan et al., 2019): blocks of
	// [NeuralSplineCoupling(MLP(Hidden, Activation), SplineConfig{Bins,
	// Bound}), InvertibleLinear].
	KindNSFCoupling Kind = "nsf-coupling"
	// KindNSFAutoregressive is a rational-quadratic neural spline flow with
	// autoregressive layers, RQ-NSF (AR): blocks of
	// [NeuralSplineAutoregressive(MADEConfig{Hidden, Activation,
	// NaturalOrder}, SplineConfig{Bins, Bound}), Reverse].
	KindNSFAutoregressive Kind = "nsf-autoregressive"
	// KindNAF is a neural autoregressive flow, NAF-DSF (Huang et al.,
	// 2018): blocks of [NeuralAutoregressive(MADEConfig{Hidden, Activation,
	// NaturalOrder}, 8 units, 1 layer), Reverse].
	KindNAF Kind = "naf"
	// KindBNAF is a block neural autoregressive flow (De Cao et al.,
	// 2019): blocks of [BNAF(BNAFConfig{Hidden: units}), ActNorm,
	// Reverse], where hidden layer l has ⌈Hidden[l]/dim⌉ units per
	// dimension, so that it is Hidden[l] wide rounded up to a multiple of
	// dim. Its activation is BNAF's own (Activation is ignored). BNAF
	// layers start near a random linear map, not the identity; NewModel's
	// data-dependent initialisation of the ActNorm layers standardises
	// their outputs, so the initial density is close to the Gaussian
	// fitted to the data.
	KindBNAF Kind = "bnaf"
	// KindSOS is a sum-of-squares polynomial flow (Jaini et al., 2019):
	// blocks of [MaskedAutoregressive(MADEConfig{Hidden, Activation,
	// NaturalOrder}, SumOfSquares(3, 3, 4)), Reverse]: three squared cubics
	// per column on [−4, 4] of the standardised data, affine beyond.
	KindSOS Kind = "sos"
	// KindBernstein is a Bernstein polynomial flow (as zuko's BPF): blocks
	// of [MaskedAutoregressive(MADEConfig{Hidden, Activation,
	// NaturalOrder}, Bernstein(16, 4)), Reverse]: degree 16 on [−4, 4] of
	// the standardised data, the identity beyond.
	KindBernstein Kind = "bernstein"
)

// Settings of the polynomial kinds.
const (
	sosKindPolys, sosKindDegree = 3, 3
	bernKindDegree              = 16
	polyKindBound               = 4.0
)

// nafUnits is the number of sigmoid units of KindNAF's transformers.
const nafUnits = 8

// KindInfo describes a ready-made architecture, for help texts and checks.
type KindInfo struct {
	// Kind is the architecture's name.
	Kind Kind
	// Summary is one line on what it is.
	Summary string
	// MinDim is the fewest data columns it works with.
	MinDim int
	// Splines reports that it uses Config.Bins and Config.Bound.
	Splines bool
}

// kindSpec is how NewModel builds one Kind.
type kindSpec struct {
	KindInfo
	// why says why MinDim, for the error.
	why string
	// linear says each block holds an InvertibleLinear (started as
	// Config.Linear says; counted by leastParams).
	linear bool
	// affine says the kind's affine layers take Config.LogScaleBound.
	affine bool
	// block returns the layers of one block, given a Config with its
	// defaults filled in; dimBlock, when set instead, is given the number
	// of data columns too.
	block    func(c Config) []InitFunc
	dimBlock func(c Config, dim int) []InitFunc
}

// kinds is the table of architectures, in the order Kinds lists them.
var kinds = []kindSpec{
	{
		KindInfo: KindInfo{Kind: KindMAF, Summary: "masked autoregressive flow (affine)", MinDim: 1},
		affine:   true,
		block: func(c Config) []InitFunc {
			return []InitFunc{MAFBound(c.made(), c.LogScaleBound), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindRealNVP, Summary: "RealNVP: affine couplings and reversals", MinDim: 2},
		why:      "its coupling layers split the columns in two", affine: true,
		block: func(c Config) []InitFunc {
			return []InitFunc{AffineCouplingBound(c.mlp(), c.LogScaleBound), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindGlow, Summary: "Glow: ActNorm, invertible linear maps and affine couplings", MinDim: 2},
		why:      "its coupling layers split the columns in two", linear: true, affine: true,
		block: func(c Config) []InitFunc {
			return []InitFunc{ActNorm(), InvertibleLinearFrom(c.Linear), AffineCouplingBound(c.mlp(), c.LogScaleBound)}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindNSFCoupling, Summary: "neural spline flow: spline couplings and invertible linear maps", MinDim: 2, Splines: true},
		why:      "its coupling layers split the columns in two", linear: true,
		block: func(c Config) []InitFunc {
			return []InitFunc{NeuralSplineCoupling(c.mlp(), c.spline()), InvertibleLinearFrom(c.Linear)}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindNSFAutoregressive, Summary: "neural spline flow: autoregressive splines and reversals", MinDim: 1, Splines: true},
		block: func(c Config) []InitFunc {
			return []InitFunc{NeuralSplineAutoregressive(c.made(), c.spline()), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindNAF, Summary: "neural autoregressive flow: deep sigmoidal transformers (8 units) and reversals", MinDim: 1},
		block: func(c Config) []InitFunc {
			return []InitFunc{NeuralAutoregressive(c.made(), nafUnits, 1), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindBNAF, Summary: "block neural autoregressive flow: BNAF layers (hidden widths rounded up to multiples of the columns), ActNorm and reversals", MinDim: 1},
		dimBlock: func(c Config, dim int) []InitFunc {
			units := make([]int, len(c.Hidden))
			for i, h := range c.Hidden {
				units[i] = (h + dim - 1) / dim
			}
			return []InitFunc{BNAF(BNAFConfig{Hidden: units}), ActNorm(), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindSOS, Summary: "sum-of-squares polynomial flow: autoregressive SOS polynomials and reversals", MinDim: 1},
		block: func(c Config) []InitFunc {
			t := SumOfSquares(sosKindPolys, sosKindDegree, polyKindBound)
			return []InitFunc{MaskedAutoregressive(c.made(), t), Reverse()}
		},
	},
	{
		KindInfo: KindInfo{Kind: KindBernstein, Summary: "Bernstein polynomial flow: autoregressive Bernstein polynomials (degree 16) and reversals", MinDim: 1},
		block: func(c Config) []InitFunc {
			t := Bernstein(bernKindDegree, polyKindBound)
			return []InitFunc{MaskedAutoregressive(c.made(), t), Reverse()}
		},
	},
}

// mlp, made and spline are the conditioner and spline of a Config's blocks.
func (c Config) mlp() NetInitFunc { return MLPFrom(c.Hidden, c.Activation, c.Init) }
func (c Config) made() MADEConfig {
	return MADEConfig{Hidden: c.Hidden, Act: c.Activation, Init: c.Init}
}
func (c Config) spline() SplineConfig { return SplineConfig{Bins: c.Bins, Bound: c.Bound} }

// Kinds lists the ready-made architectures NewModel builds.
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kinds))
	for i, k := range kinds {
		out[i] = k.KindInfo
	}
	return out
}

// kindSpecOf returns the table entry of k.
func kindSpecOf(k Kind) (kindSpec, bool) {
	for _, s := range kinds {
		if s.Kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

// kindNames lists the known kinds, quoted, for error messages.
func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = fmt.Sprintf("%q", string(k.Kind))
	}
	return strings.Join(names, ", ")
}

// Defaults for the zero fields of Config.
const (
	defaultLayers        = 5
	defaultBins          = 8
	defaultBound         = 3.0
	defaultLogScaleBound = 3.0
	defaultInit          = InitTorch
	defaultLinear        = LinearPermutation
	defaultScaling       = ScalingRobust
	// defaultKind is the Kind of a Config without one (see Config.Kind).
	defaultKind = KindNSFCoupling
)

// defaultHidden is the default of Config.Hidden.
var defaultHidden = []int{64, 64}

// Config describes a ready-made flow for NewModel; a model file stores it as
// its header (the JSON names are the field tags). Zero fields take
// defaults: the nsf-coupling kind, 5 layers (blocks), hidden widths [64 64],
// ReLU (the zero Activation), InitTorch and LinearPermutation, for the
// spline kinds 8 bins and bound 3, and for the affine kinds a log-scale
// bound of 3. QUALITY.md shows what these defaults reach on real tables.
type Config struct {
	// Kind is the architecture (see Kinds). The default is nsf-coupling,
	// or, for data of a single column, which a coupling cannot split,
	// nsf-autoregressive.
	Kind Kind `json:"kind"`
	// Layers is the number of blocks (default 5).
	Layers int `json:"layers"`
	// Hidden holds the hidden widths of every conditioner net (default
	// [64 64]); an empty slice means the default.
	Hidden []int `json:"hidden"`
	// Activation is the conditioner nets' nonlinearity (default ReLU).
	Activation Activation `json:"activation"`
	// Bins and Bound configure the splines of the spline kinds (defaults 8
	// and 3; see SplineConfig): each spline acts on [−Bound, Bound] of the
	// standardised data and is the identity outside. Other kinds ignore
	// them, and NewModel sets them to zero.
	Bins  int     `json:"bins,omitempty"`
	Bound float64 `json:"bound,omitempty"`
	// LogScaleBound bounds the log-scales of the affine kinds (maf,
	// realnvp, glow): |s| < LogScaleBound per column per layer (default
	// 3; see MAFBound and AffineCouplingBound). Other kinds ignore it,
	// and NewModel sets it to zero.
	LogScaleBound float64 `json:"logScaleBound,omitempty"`
	// Init is how the conditioners draw their hidden weights (default
	// InitTorch; see Init).
	Init Init `json:"init"`
	// Linear is how the InvertibleLinear layers of glow and nsf-coupling
	// start (default LinearPermutation; see LinearInit). Other kinds
	// ignore it, and NewModel sets it to LinearDefault.
	Linear LinearInit `json:"linear,omitempty"`
	// Scaling is how NewModel computes the first layer's standardisation
	// from the data (default ScalingRobust; see Scaling). The model keeps
	// the result, so Scaling does not change a model once it is made.
	Scaling Scaling `json:"scaling"`
	// Seed makes the initial key, NewKey(Seed). The key also draws
	// structure that is not a parameter (InvertibleLinear's permutation and
	// signs), so a saved model records it.
	Seed uint64 `json:"seed,string"`
	// Columns names the data columns, in order: optional, and when given,
	// one name per column. A model file records them, so that tools pick
	// a model's columns from a table by name.
	Columns []string `json:"columns,omitempty"`
	// Context names the context columns of a conditional model, in order:
	// optional, and when given, one name per context column.
	Context []string `json:"context,omitempty"`
	// Dequantize lists the columns (counting from 0) that hold integers:
	// counts, ratings, pixels. The flow is then a density of x + u, u
	// uniform on (0, 1), fitted with fresh noise on every minibatch
	// (optim.FitModel); LogPDF scores such a column at its cell's middle,
	// ⌊x⌋ + ½, and Sample floors it, so that samples are integers (see
	// domain.go). Fitting needs integer values there.
	Dequantize []int `json:"dequantize,omitempty"`
	// Bounds lists columns whose values cannot leave an interval (a
	// proportion, a price, a dequantised pixel's [0, 256)): the flow
	// starts with the fixed Bounded layer on them, so that its density is
	// zero outside and its samples stay inside. A dequantised column's
	// bounds hold its cells: k ≥ Lo and k + 1 ≤ Hi.
	Bounds []Bound `json:"bounds,omitempty"`
}

// withDefaults returns c with its zero fields replaced by their defaults,
// or an error naming the field that cannot work.
func (c Config) withDefaults() (Config, kindSpec, error) {
	if c.Kind == "" {
		c.Kind = defaultKind
	}
	spec, ok := kindSpecOf(c.Kind)
	if !ok {
		return c, spec, fmt.Errorf("flows: Config: unknown Kind %q; want one of %s", string(c.Kind), kindNames())
	}
	switch {
	case c.Layers == 0:
		c.Layers = defaultLayers
	case c.Layers < 0:
		return c, spec, fmt.Errorf("flows: Config: %d layers, want at least 1 (or 0 for %d)", c.Layers, defaultLayers)
	}
	if len(c.Hidden) == 0 {
		c.Hidden = slices.Clone(defaultHidden)
	} else {
		c.Hidden = slices.Clone(c.Hidden)
	}
	for i, h := range c.Hidden {
		if h < 1 {
			return c, spec, fmt.Errorf("flows: Config: hidden layer %d has width %d, want at least 1", i, h)
		}
	}
	if !c.Activation.valid() {
		return c, spec, fmt.Errorf("flows: Config: unknown activation %v", c.Activation)
	}
	if spec.Splines {
		if c.Bins == 0 {
			c.Bins = defaultBins
		}
		if c.Bound == 0 {
			c.Bound = defaultBound
		}
		if err := (SplineConfig{Bins: c.Bins, Bound: c.Bound}).validate(); err != nil {
			return c, spec, fmt.Errorf("flows: Config: kind %q: %w", string(c.Kind), err)
		}
	} else {
		c.Bins, c.Bound = 0, 0
	}
	switch {
	case !spec.affine:
		c.LogScaleBound = 0
	case c.LogScaleBound == 0:
		c.LogScaleBound = defaultLogScaleBound
	case !(c.LogScaleBound > 0) || math.IsInf(c.LogScaleBound, 1):
		return c, spec, fmt.Errorf("flows: Config: log-scale bound %v, want positive and finite", c.LogScaleBound)
	}
	if !c.Init.valid() {
		return c, spec, fmt.Errorf("flows: Config: unknown init %v", c.Init)
	}
	if c.Init == InitDefault {
		c.Init = defaultInit
	}
	switch {
	case !spec.linear:
		c.Linear = LinearDefault
	case c.Linear == LinearDefault:
		c.Linear = defaultLinear
	case c.Linear != LinearOrthogonal && c.Linear != LinearPermutation:
		return c, spec, fmt.Errorf("flows: Config: unknown linear init %v", c.Linear)
	}
	switch c.Scaling {
	case ScalingDefault:
		c.Scaling = defaultScaling
	case ScalingRobust, ScalingMoments:
	default:
		return c, spec, fmt.Errorf("flows: Config: unknown scaling %v", c.Scaling)
	}
	c.Columns, c.Context = slices.Clone(c.Columns), slices.Clone(c.Context)
	c.Dequantize, c.Bounds = slices.Clone(c.Dequantize), slices.Clone(c.Bounds)
	slices.Sort(c.Dequantize)
	slices.SortStableFunc(c.Bounds, func(a, b Bound) int { return a.Column - b.Column })
	return c, spec, nil
}

// Validate returns an error naming the first field of c that NewModel
// cannot work with (an unknown Kind, a negative width, bins or a bound that
// no spline takes), or nil. Zero fields are valid: they take defaults.
func (c Config) Validate() error {
	_, _, err := c.withDefaults()
	return err
}

// Scaling is how NewModel standardises the columns before the first layer.
type Scaling int

const (
	// ScalingDefault is Config's default, ScalingRobust.
	ScalingDefault Scaling = iota
	// ScalingRobust uses each column's mean and standard deviation without
	// the values far out (RobustStandardizeFrom): the same as
	// ScalingMoments for most tables, but a few rows a million scales away
	// do not stretch the scale and squeeze every other row together.
	ScalingRobust
	// ScalingMoments uses each column's mean and standard deviation
	// (StandardizeFrom).
	ScalingMoments
)

// String returns the scaling's name, as in model files: "robust" or
// "moments" ("default" for ScalingDefault).
func (s Scaling) String() string {
	switch s {
	case ScalingDefault:
		return "default"
	case ScalingRobust:
		return "robust"
	case ScalingMoments:
		return "moments"
	}
	return fmt.Sprintf("Scaling(%d)", int(s))
}

// MarshalText returns the scaling's name. A model file records a resolved
// scaling; "default" is a Config not yet resolved, which Load refuses.
func (s Scaling) MarshalText() ([]byte, error) {
	if s < ScalingDefault || s > ScalingMoments {
		return nil, fmt.Errorf("flows: unknown scaling %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText sets s to the scaling named text.
func (s *Scaling) UnmarshalText(text []byte) error {
	for _, v := range []Scaling{ScalingDefault, ScalingRobust, ScalingMoments} {
		if string(text) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("flows: unknown scaling %q; want robust, moments or default", text)
}

// standardization computes the scaling s of the rows of x.
func (s Scaling) standardization(x *mat.Dense) (center, scale []float64, err error) {
	if s == ScalingMoments {
		return StandardizeFrom(x)
	}
	return RobustStandardizeFrom(x)
}

// equal reports whether c and d are the same configuration.
func (c Config) equal(d Config) bool {
	return c.Kind == d.Kind && c.Layers == d.Layers && slices.Equal(c.Hidden, d.Hidden) &&
		c.Activation == d.Activation && c.Bins == d.Bins && c.Bound == d.Bound && c.Seed == d.Seed &&
		c.LogScaleBound == d.LogScaleBound && c.Init == d.Init && c.Linear == d.Linear && c.Scaling == d.Scaling &&
		slices.Equal(c.Columns, d.Columns) && slices.Equal(c.Context, d.Context) &&
		slices.Equal(c.Dequantize, d.Dequantize) && slices.Equal(c.Bounds, d.Bounds)
}

// checkNames returns an error when names is given but does not name each of
// n columns once.
func checkNames(what string, names []string, n int) error {
	if len(names) == 0 {
		return nil
	}
	if len(names) != n {
		return fmt.Errorf("flows: Config: %d %s names for %d columns", len(names), what, n)
	}
	seen := make(map[string]bool, n)
	for _, s := range names {
		if seen[s] {
			return fmt.Errorf("flows: Config: %s name %q given twice", what, s)
		}
		seen[s] = true
	}
	return nil
}

// leastParams returns a lower bound on the parameters of a model of c
// (defaults filled in) for dim columns, saturating at MaxUint64. Every
// kind's block holds a conditioner net from at least dim/2 columns through
// c.Hidden to at least dim − dim/2 columns (times 3·Bins − 1 knot
// parameters for the spline kinds), and an InvertibleLinear (dim² − dim
// parameters at least) when spec.linear. Load checks it before building a
// model from a file's header.
func (c Config) leastParams(spec kindSpec, dim int) uint64 {
	var sum uint64
	add := func(a, b uint64) { // sum += a·b, saturating
		if b != 0 && a > math.MaxUint64/b || sum+a*b < sum {
			sum = math.MaxUint64
			return
		}
		sum += a * b
	}
	in, out := uint64(dim/2), uint64(dim-dim/2)
	if spec.Splines {
		out *= uint64(max(3*c.Bins-1, 0))
	}
	prev := in
	for _, h := range c.Hidden {
		add(prev, uint64(h)) // weights
		add(1, uint64(h))    // biases
		prev = uint64(h)
	}
	add(prev, out)
	if spec.linear {
		add(uint64(dim), uint64(max(dim-1, 0)))
	}
	perBlock := sum
	sum = 0
	add(uint64(c.Layers), perBlock)
	return sum
}

// Model is a ready-made normalizing flow: a Standardize layer fixed from
// the training data, Config.Layers blocks of the Config's architecture, and
// a standard normal prior; with context columns, a conditional flow
// p(x | c) whose context is standardised the same way before the layers
// read it. Make one with NewModel, train it with Fit (or by giving Dist and
// Params to package optim), and keep it with Save.
//
// Config, Dim, ContextDim and the standardisations describe the model; Dist
// is built from them when the model is made (or loaded), so changing them
// afterwards does not change Dist. Params is the one vector that training
// changes, in place.
//
// Model's methods read the model and are safe for concurrent use while
// nothing changes Params.
type Model struct {
	// Config is the configuration, with its defaults filled in.
	Config Config
	// Dim is the number of data columns; ContextDim the number of context
	// columns (0 for an unconditional model).
	Dim, ContextDim int
	// Mean and Scale are the fixed standardisation of the first layer,
	// z = (x − Mean)/Scale column by column (see Standardize).
	Mean, Scale []float64
	// ContextMean and ContextScale standardise the context the same way
	// before the layers read it; nil without a context.
	ContextMean, ContextScale []float64
	// Params holds the trainable parameters in Dist's layout.
	Params Params
	// Training summarises the fit that gave Params (set by
	// optim.FitModel, kept by Save); nil for a model never fitted that way.
	Training *Training
	// Dist is the flow, taking contexts in the data's units: for
	// dequantised columns the density of x + u (Model's methods score and
	// floor them). It is not saved: Load rebuilds it from the rest.
	Dist Distribution
}

// NewModel makes a model of the data x (n×dim) from cfg (zero fields take
// the defaults documented on Config), conditional on the context c (n rows
// of contextDim columns, one per row of x) when c is not nil: it computes
// the standardisations from x and c (as cfg.Scaling says), builds Standardize
// followed by cfg.Layers blocks of cfg.Kind and a Normal prior, draws the
// initial parameters from NewKey(cfg.Seed), and runs the data-dependent
// initialisation (InitFromData, which sets Glow's ActNorm layers) on x. The
// learned layers start at the identity (Glow's at a linear map), so the
// initial density is a Gaussian fitted to the data. For example
//
//	m, err := flows.NewModel(flows.Config{Kind: flows.KindRealNVP, Layers: 8}, x, nil)
//
// It returns an error for an invalid cfg, for a nil or empty x, for a NaN or
// ±Inf in x or c (naming its row and column), for a c whose rows differ
// from x's, for names in cfg that do not match the columns, and when the
// kind needs more columns than x has.
func NewModel(cfg Config, x, c *mat.Dense) (*Model, error) {
	if cfg.Kind == "" && x != nil && !x.IsEmpty() {
		if _, d := x.Dims(); d == 1 {
			cfg.Kind = KindNSFAutoregressive
		}
	}
	cfg, spec, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkTable("NewModel", x); err != nil {
		return nil, err
	}
	_, dim := x.Dims()
	if err := cfg.checkDomain(dim); err != nil {
		return nil, err
	}
	if err := cfg.checkData("NewModel", x); err != nil {
		return nil, err
	}
	// The standardisation is of the data as the layers after Bounded see
	// it, with dequantised columns at their cells' middles.
	x = cfg.midpoints(x)
	xt := x
	if layer := cfg.boundedLayer(dim); layer != nil {
		_, b, err := layer(Key{}, dim, 0)
		if err != nil {
			return nil, err
		}
		xt, _ = b.Direct(nil, x, nil)
	}
	mean, scale, err := cfg.Scaling.standardization(xt)
	if err != nil {
		return nil, err
	}
	var cmean, cscale []float64
	if c != nil {
		if r, _ := c.Dims(); r != x.RawMatrix().Rows {
			return nil, fmt.Errorf("flows: NewModel: %d context rows for %d data rows", r, x.RawMatrix().Rows)
		}
		if cmean, cscale, err = cfg.Scaling.standardization(c); err != nil {
			return nil, fmt.Errorf("flows: NewModel: context: %w", err)
		}
	}
	m, err := buildModel(cfg, spec, len(mean), mean, scale, cmean, cscale)
	if err != nil {
		return nil, err
	}
	InitFromData(m.Dist, m.Params, x, c)
	return m, nil
}

// buildModel makes the model of cfg (defaults filled in) for dim columns
// with the given standardisations (cmean and cscale nil without a context),
// with the initial parameters of NewKey(cfg.Seed).
func buildModel(cfg Config, spec kindSpec, dim int, mean, scale, cmean, cscale []float64) (*Model, error) {
	if dim < spec.MinDim {
		return nil, fmt.Errorf("flows: kind %q needs at least %d columns (%s), not %d", string(cfg.Kind), spec.MinDim, spec.why, dim)
	}
	cdim := len(cmean)
	if len(cscale) != cdim {
		return nil, fmt.Errorf("flows: %d context means and %d scales", cdim, len(cscale))
	}
	if err := checkNames("column", cfg.Columns, dim); err != nil {
		return nil, err
	}
	if err := checkNames("context", cfg.Context, cdim); err != nil {
		return nil, err
	}
	if err := cfg.checkDomain(dim); err != nil {
		return nil, err
	}
	var layers []InitFunc
	if b := cfg.boundedLayer(dim); b != nil {
		layers = append(layers, b)
	}
	layers = append(layers, Standardize(mean, scale))
	for range cfg.Layers {
		if spec.dimBlock != nil {
			layers = append(layers, spec.dimBlock(cfg, dim)...)
		} else {
			layers = append(layers, spec.block(cfg)...)
		}
	}
	p, d, err := Flow(Serial(layers...), Normal())(NewKey(cfg.Seed), dim, cdim)
	if err != nil {
		return nil, fmt.Errorf("flows: kind %q: %w", string(cfg.Kind), err)
	}
	if cdim > 0 {
		if d, err = standardizedContext(d, cmean, cscale); err != nil {
			return nil, err
		}
	}
	return &Model{
		Config:       cfg,
		Dim:          dim,
		ContextDim:   cdim,
		Mean:         slices.Clone(mean),
		Scale:        slices.Clone(scale),
		ContextMean:  slices.Clone(cmean),
		ContextScale: slices.Clone(cscale),
		Params:       p,
		Dist:         d,
	}, nil
}

// standardizedContext returns d reading its context in the data's units:
// every function maps c to (c − mean)/scale, column by column, before d
// sees it, and the pullbacks scale d's context gradient by 1/scale.
func standardizedContext(d Distribution, mean, scale []float64) (Distribution, error) {
	cdim := len(mean)
	std, err := newFixedAffine("context standardisation", mean, scale)
	if err != nil {
		return Distribution{}, err
	}
	conv := func(c *mat.Dense) *mat.Dense {
		if c == nil {
			return nil
		}
		return std.apply(c, false)
	}
	// back adds the gradient of the standardised context into dc.
	back := func(dc *mat.Dense, f func(dcs *mat.Dense)) {
		if dc == nil {
			f(nil)
			return
		}
		n, _ := dc.Dims()
		dcs := mat.NewDense(n, cdim, nil)
		f(dcs)
		dc.Add(dc, std.pullback(dcs, false))
	}
	out := Distribution{
		LogPDF: func(p Params, x, c *mat.Dense) []float64 { return d.LogPDF(p, x, conv(c)) },
		Sample: func(key Key, p Params, n int, c *mat.Dense) *mat.Dense { return d.Sample(key, p, n, conv(c)) },
		LogPDFVJP: func(p Params, x, c *mat.Dense) ([]float64, DistPullback) {
			lp, b := d.LogPDFVJP(p, x, conv(c))
			return lp, func(dLogp []float64, dp Params, dc *mat.Dense) (dx *mat.Dense) {
				back(dc, func(dcs *mat.Dense) { dx = b(dLogp, dp, dcs) })
				return dx
			}
		},
		Latent: func(p Params, x, c *mat.Dense) *mat.Dense { return d.Latent(p, x, conv(c)) },
	}
	if d.InitFromData != nil {
		out.InitFromData = func(p Params, x, c *mat.Dense) { d.InitFromData(p, x, conv(c)) }
	}
	if d.UpdateState != nil {
		out.UpdateState = func(p Params, x, c *mat.Dense) { d.UpdateState(p, x, conv(c)) }
	}
	return out, nil
}

// LogPDF returns the log density of each row of x (n×Dim) under the model,
// given the context c (n×ContextDim; nil for an unconditional model), in the
// data's units (the standardisation's log-det included). A value outside
// its column's bounds (Config.Bounds) gives −Inf; a dequantised column is
// scored at ⌊x⌋ + ½ (see Config.Dequantize), so the result is then the log
// probability of the row's integers, to the one-point rule. It panics for
// a batch without Dim columns or a context of the wrong shape.
func (m *Model) LogPDF(x, c *mat.Dense) []float64 {
	return m.Dist.LogPDF(m.Params, m.Config.midpoints(x), c)
}

// Sample draws n rows (n×Dim) from the model, in the data's units, row i
// given row i of c (n×ContextDim; nil for an unconditional model). Bounded
// columns stay inside their bounds and dequantised ones are integers. The
// same key, parameters and contexts give the same rows, bit for bit.
func (m *Model) Sample(key Key, n int, c *mat.Dense) *mat.Dense {
	return m.Config.finishSample(m.Dist.Sample(key, m.Params, n, c))
}

// Latent maps each row of x (given its context, as for LogPDF) to the
// latent space, where the model's prior is the standard normal: a row far
// from the origin there is one the model finds unusual, and a column of
// the result is a learned, standardised feature of the data.
func (m *Model) Latent(x, c *mat.Dense) *mat.Dense {
	return m.Dist.Latent(m.Params, m.Config.midpoints(x), c)
}
