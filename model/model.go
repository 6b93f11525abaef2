package model

// Model and Config: the configuration fields that New, the model-file
// format and the command line all read, and the model built from them. The
// architectures (kinds) are declared in kinds.go.

import (
	"fmt"
	"math"
	"slices"

	"github.com/gonormflows/flows"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/enum"
	"github.com/gonormflows/flows/prep"
)

// Defaults for the zero fields of Config.
const (
	defaultLayers        = 5
	defaultBins          = 8
	defaultBound         = 3.0
	defaultLogScaleBound = 3.0
	defaultInit          = flows.InitTorch
	defaultLinear        = flows.LinearPermutation
	defaultScaling       = ScalingRobust
	// defaultKind is the Kind of a Config without one (see Config.Kind).
	defaultKind = KindNSFCoupling
)

// defaultHidden is the default of Config.Hidden.
var defaultHidden = []int{64, 64}

// Config describes a ready-made flow for New; a model file stores it as
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
	// Layers is the number of blocks (default 5; 1 for cnf).
	Layers int `json:"layers"`
	// Hidden holds the hidden widths of every conditioner net (default
	// [64 64]); an empty slice means the default.
	Hidden []int `json:"hidden"`
	// Activation is the conditioner nets' nonlinearity (default ReLU;
	// Tanh for cnf, whose dynamics nets need a smooth one).
	Activation flows.Activation `json:"activation"`
	// Bins and Bound configure the splines of the spline kinds (defaults 8
	// and 3; see SplineConfig): each spline acts on [−Bound, Bound] of the
	// standardised data and is the identity outside. Other kinds ignore
	// them, and New sets them to zero.
	Bins  int     `json:"bins,omitempty"`
	Bound float64 `json:"bound,omitempty"`
	// LogScaleBound bounds the log-scales of the affine kinds (maf,
	// realnvp, glow): |s| < LogScaleBound per column per layer (default
	// 3; see flows.MAFBound and flows.AffineCouplingBound). Other kinds ignore it,
	// and New sets it to zero.
	LogScaleBound float64 `json:"logScaleBound,omitempty"`
	// Init is how the conditioners draw their hidden weights (default
	// InitTorch; see Init).
	Init flows.Init `json:"init"`
	// Precision is the arithmetic of the conditioner nets' products
	// (default flows.Float64; see flows.Precision): Float32 computes them
	// in float32, about twice as fast at wide nets, and keeps the nets'
	// hidden layers in float32, while parameters, the activations' own
	// arithmetic, log-determinants and losses stay float64. The bnaf
	// kind has no conditioner net: New sets it to Float64. A model file
	// records a Float32 model (and omits the field for Float64).
	Precision flows.Precision `json:"precision,omitempty"`
	// Linear is how the InvertibleLinear layers of glow and nsf-coupling
	// start (default LinearPermutation; see LinearInit). Other kinds
	// ignore it, and New sets it to LinearDefault.
	Linear flows.LinearInit `json:"linear,omitempty"`
	// Scaling is how New computes the first layer's standardisation
	// from the data (default ScalingRobust; see Scaling). The model keeps
	// the result, so Scaling does not change a model once it is made.
	Scaling Scaling `json:"scaling"`
	// Seed makes the initial key, NewKey(Seed). The key also draws
	// structure that is not a parameter (InvertibleLinear's permutation and
	// signs), so a saved model records it.
	Seed uint64 `json:"seed,string"`
	// Revision is the revision of the kind's architecture: New gives a
	// model the kind's latest (2 for naf and sos, whose tails are bounded
	// since 1; 1 for maf, nsf-autoregressive and bernstein; from those, the
	// MADEs have sorted degrees, see flows.SortedDegrees; 0 for the other
	// kinds), and a model file records it, so a file written before a
	// revision (without the field: 0) loads with the layers it was fitted
	// with.
	Revision int `json:"revision,omitempty"`
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
	// (Model.Fit); LogPDF scores such a column at its cell's middle,
	// ⌊x⌋ + ½, and Sample floors it, so that samples are integers (see
	// domain.go). Fitting needs integer values there.
	Dequantize []int `json:"dequantize,omitempty"`
	// Bounds lists columns whose values cannot leave an interval (a
	// proportion, a price, a dequantised pixel's [0, 256)): the flow
	// starts with the fixed Bounded layer on them, so that its density is
	// zero outside and its samples stay inside. A dequantised column's
	// bounds hold its cells: k ≥ Lo and k + 1 ≤ Hi.
	Bounds []Bound `json:"bounds,omitempty"`
	// ODE holds the cnf kind's solver settings (see ODEConfig); other
	// kinds ignore it, and New sets it to zero.
	ODE ODEConfig `json:"ode,omitzero"`

	// nfe, set only in the Config given to the blocks, counts a cnf
	// model's function evaluations (Model.Evaluations).
	nfe *nfeCounter
	// Shape is the image shape of the image kinds (image-glow): each row
	// holds one image of C·H·W pixel values, integers 0 to 255,
	// channel-major (see flows.Shape), all dequantised; zero for the other
	// kinds. Layers, Hidden, Activation, Init and Scaling do not apply.
	Shape flows.Shape `json:"shape,omitzero"`
	// Glow configures image-glow's flows.Glow; zero sizes take its
	// defaults (4 steps per scale, 32 hidden channels, as many scales as
	// the shape allows up to 3), which New writes out.
	Glow flows.GlowConfig `json:"glow,omitzero"`
}

// withDefaults returns c with its zero fields replaced by their defaults,
// or an error naming the field that cannot work.
func (c Config) withDefaults() (Config, kindSpec, error) {
	if c.Kind == "" {
		c.Kind = defaultKind
	}
	spec, ok := c.Kind.spec()
	if !ok {
		return c, spec, fmt.Errorf("flows: Config: unknown Kind %q; want one of %s", string(c.Kind), kindNames())
	}
	if c.Revision < 0 || c.Revision > spec.revision {
		return c, spec, fmt.Errorf("flows: Config: kind %q has no revision %d (its latest is %d)", string(c.Kind), c.Revision, spec.revision)
	}
	if spec.defaults == nil {
		c.ODE = ODEConfig{}
	} else if err := spec.defaults(&c); err != nil {
		return c, spec, err
	}
	if err := c.checkImage(spec); err != nil {
		return c, spec, err
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
	if !slices.Contains(flows.Activations(), c.Activation) {
		return c, spec, fmt.Errorf("flows: Config: unknown activation %v", c.Activation)
	}
	if spec.Splines {
		if c.Bins == 0 {
			c.Bins = defaultBins
		}
		if c.Bound == 0 {
			c.Bound = defaultBound
		}
		if err := (flows.SplineConfig{Bins: c.Bins, Bound: c.Bound}).Validate(); err != nil {
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
	if _, err := c.Init.MarshalText(); err != nil {
		return c, spec, fmt.Errorf("flows: Config: unknown init %v", c.Init)
	}
	if _, err := c.Precision.MarshalText(); err != nil {
		return c, spec, fmt.Errorf("flows: Config: unknown precision %v", c.Precision)
	}
	if c.Kind == KindBNAF {
		c.Precision = flows.Float64
	}
	if c.Init == flows.InitDefault {
		c.Init = defaultInit
	}
	switch {
	case !spec.linear:
		c.Linear = flows.LinearDefault
	case c.Linear == flows.LinearDefault:
		c.Linear = defaultLinear
	case c.Linear != flows.LinearOrthogonal && c.Linear != flows.LinearPermutation:
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
	if spec.image {
		c = c.imageDefaults()
	}
	return c, spec, nil
}

// Validate returns an error naming the first field of c that New
// cannot work with (an unknown Kind, a negative width, bins or a bound that
// no spline takes), or nil. Zero fields are valid: they take defaults.
func (c Config) Validate() error {
	_, _, err := c.withDefaults()
	return err
}

// Scaling is how New standardises the columns before the first layer.
type Scaling int

const (
	// ScalingDefault is Config's default, ScalingRobust.
	ScalingDefault Scaling = iota
	// ScalingRobust uses each column's mean and standard deviation without
	// the values far out (prep.RobustStandardizeFrom): the same as
	// ScalingMoments for most tables, but a few rows a million scales away
	// do not stretch the scale and squeeze every other row together.
	ScalingRobust
	// ScalingMoments uses each column's mean and standard deviation
	// (prep.StandardizeFrom).
	ScalingMoments
)

// scalingNames names the scalings, in the order of their constants.
var scalingNames = enum.Names[Scaling]{Type: "Scaling", What: "scaling", List: []string{"default", "robust", "moments"}}

// String returns the scaling's name, as in model files: "robust" or
// "moments" ("default" for ScalingDefault).
func (s Scaling) String() string { return scalingNames.String(s) }

// MarshalText returns the scaling's name. A model file records a resolved
// scaling; "default" is a Config not yet resolved, which Load refuses.
func (s Scaling) MarshalText() ([]byte, error) { return scalingNames.MarshalText(s) }

// UnmarshalText sets s to the scaling named text.
func (s *Scaling) UnmarshalText(text []byte) error { return scalingNames.UnmarshalText(s, text) }

// standardization computes the scaling s of the rows of x.
func (s Scaling) standardization(x *mat.Dense) (center, scale []float64, err error) {
	if s == ScalingMoments {
		return prep.StandardizeFrom(x)
	}
	return prep.RobustStandardizeFrom(x)
}

// equal reports whether c and d are the same configuration.
func (c Config) equal(d Config) bool {
	return c.Kind == d.Kind && c.Layers == d.Layers && slices.Equal(c.Hidden, d.Hidden) &&
		c.Activation == d.Activation && c.Bins == d.Bins && c.Bound == d.Bound && c.Seed == d.Seed &&
		c.LogScaleBound == d.LogScaleBound && c.Init == d.Init && c.Precision == d.Precision && c.Linear == d.Linear && c.Scaling == d.Scaling &&
		slices.Equal(c.Columns, d.Columns) && slices.Equal(c.Context, d.Context) &&
		slices.Equal(c.Dequantize, d.Dequantize) && slices.Equal(c.Bounds, d.Bounds) && c.Revision == d.Revision && c.ODE == d.ODE &&
		c.Shape == d.Shape && c.Glow == d.Glow
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
	if spec.image {
		return c.leastImageParams()
	}
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
// read it. Make one with New, train it with Fit (or by giving Dist and
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
	// z = (x − Mean)/Scale column by column (see flows.Standardize).
	Mean, Scale []float64
	// ContextMean and ContextScale standardise the context the same way
	// before the layers read it; nil without a context.
	ContextMean, ContextScale []float64
	// Params holds the trainable parameters in Dist's layout.
	Params flows.Params
	// Training summarises the fit that gave Params (set by
	// Model.Fit, kept by Save); nil for a model never fitted that way.
	Training *Training
	// Categories models the categorical columns of a mixed table (see
	// NewMixed); nil for a model of numbers only. The flow then takes, as
	// its context, the context columns followed by the categories'
	// one-hot code (Model.Context makes it).
	Categories *Categories
	// Dist is the flow, taking contexts in the data's units: for
	// dequantised columns the density of x + u (Model's methods score and
	// floor them). It is not saved: Load rebuilds it from the rest.
	Dist flows.Distribution

	// nfe counts the function evaluations of a cnf model's solves.
	nfe *nfeCounter
}

// New makes a model of the data x (n×dim) from cfg (zero fields take
// the defaults documented on Config), conditional on the context c (n rows
// of contextDim columns, one per row of x) when c is not nil: it computes
// the standardisations from x and c (as cfg.Scaling says), builds Standardize
// followed by cfg.Layers blocks of cfg.Kind and a Normal prior, draws the
// initial parameters from NewKey(cfg.Seed), and runs the data-dependent
// initialisation (InitFromData, which sets Glow's ActNorm layers) on x. The
// learned layers start at the identity (Glow's at a linear map), so the
// initial density is a Gaussian fitted to the data. For example
//
//	m, err := model.New(model.Config{Kind: model.KindRealNVP, Layers: 8}, x, nil)
//
// It returns an error for an invalid cfg, for a nil or empty x, for a NaN or
// ±Inf in x or c (naming its row and column), for a c whose rows differ
// from x's, for names in cfg that do not match the columns, and when the
// kind needs more columns than x has.
func New(cfg Config, x, c *mat.Dense) (*Model, error) {
	return newModel(cfg, x, c, nil, nil)
}

// newModel is New for a mixed table when cat is not nil: onehot holds the
// rows' one-hot codes, which follow c in the flow's context.
func newModel(cfg Config, x, c *mat.Dense, cat *Categories, onehot *mat.Dense) (*Model, error) {
	if cfg.Kind == "" && x != nil && !x.IsEmpty() {
		if _, d := x.Dims(); d == 1 {
			cfg.Kind = KindNSFAutoregressive
		}
	}
	if spec, ok := cfg.Kind.spec(); ok || cfg.Kind == "" {
		if cfg.Kind == "" {
			spec, _ = defaultKind.spec()
		}
		cfg.Revision = spec.revision
	}
	cfg, spec, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkTable("New", x); err != nil {
		return nil, err
	}
	rows, dim := x.Dims()
	cdim := cat.Width()
	if c != nil {
		_, cd := c.Dims()
		cdim += cd
	}
	if err := DefaultLimits().check(cfg, spec, dim, cdim, rows); err != nil {
		return nil, err
	}
	if err := cfg.checkDomain(dim); err != nil {
		return nil, err
	}
	if err := cfg.checkData("New", x); err != nil {
		return nil, err
	}
	// The standardisation is of the data as the layers after Bounded see
	// it, with dequantised columns at their cells' middles.
	x = cfg.midpoints(x)
	xt := x
	if layer := cfg.boundedLayer(dim); layer != nil {
		_, b, err := layer(flows.Key{}, dim, 0)
		if err != nil {
			return nil, err
		}
		xt, _ = b.Direct(nil, x, nil)
	}
	mean, scale := pixelScaling(dim) // an image kind's is fixed: see image.go
	if !spec.image {
		if mean, scale, err = cfg.Scaling.standardization(xt); err != nil {
			return nil, err
		}
	}
	var cmean, cscale []float64
	if c != nil {
		if r, _ := c.Dims(); r != x.RawMatrix().Rows {
			return nil, fmt.Errorf("flows: New: %d context rows for %d data rows", r, x.RawMatrix().Rows)
		}
		if cmean, cscale, err = cfg.Scaling.standardization(c); err != nil {
			return nil, fmt.Errorf("flows: New: context: %w", err)
		}
	}
	m, err := buildModel(cfg, spec, len(mean), mean, scale, cmean, cscale, cat)
	if err != nil {
		return nil, err
	}
	flows.InitFromData(m.Dist, m.Params, x, joinContext(c, onehot))
	return m, nil
}

// buildModel makes the model of cfg (defaults filled in) for dim columns
// with the given standardisations (cmean and cscale nil without a context),
// with the initial parameters of NewKey(cfg.Seed).
func buildModel(cfg Config, spec kindSpec, dim int, mean, scale, cmean, cscale []float64, cat *Categories) (*Model, error) {
	if dim < spec.MinDim {
		return nil, fmt.Errorf("flows: kind %q needs at least %d columns (%s), not %d", string(cfg.Kind), spec.MinDim, spec.why, dim)
	}
	cdim := len(cmean)
	if len(cscale) != cdim {
		return nil, fmt.Errorf("flows: %d context means and %d scales", cdim, len(cscale))
	}
	if err := DefaultLimits().check(cfg, spec, dim, cdim+cat.Width(), 0); err != nil {
		return nil, err
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
	bc, nfe := cfg, new(nfeCounter)
	bc.nfe = nfe
	p, d, err := flows.Flow(bc.bijection(spec, dim, mean, scale), flows.Normal())(flows.NewKey(cfg.Seed), dim, cdim+cat.Width())
	if err != nil {
		return nil, fmt.Errorf("flows: kind %q: %w", string(cfg.Kind), err)
	}
	if cdim > 0 {
		// The one-hot code after the context is read as it is.
		cm, cs := slices.Clone(cmean), slices.Clone(cscale)
		for range cat.Width() {
			cm, cs = append(cm, 0), append(cs, 1)
		}
		if d, err = standardizedContext(d, cm, cs); err != nil {
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
		Categories:   cat,
		Dist:         d,
		nfe:          nfe,
	}, nil
}

// bijection returns the init function of the layers of a model of cfg
// (defaults filled in) for dim columns with the given standardisation.
func (cfg Config) bijection(spec kindSpec, dim int, mean, scale []float64) flows.InitFunc {
	var layers []flows.InitFunc
	if b := cfg.boundedLayer(dim); b != nil {
		layers = append(layers, b)
	}
	layers = append(layers, flows.Standardize(mean, scale))
	for range cfg.Layers {
		layers = append(layers, spec.block(cfg, dim)...)
	}
	return flows.Serial(layers...)
}

// standardizedContext returns d reading its context in the data's units:
// every function maps c to (c − mean)/scale, column by column, with the
// flows.Standardize layer, before d sees it, and the pullbacks scale d's
// context gradient by 1/scale.
func standardizedContext(d flows.Distribution, mean, scale []float64) (flows.Distribution, error) {
	cdim := len(mean)
	_, std, err := flows.Standardize(mean, scale)(flows.Key{}, cdim, 0)
	if err != nil {
		return flows.Distribution{}, fmt.Errorf("flows: context standardisation: %w", err)
	}
	conv := func(c *mat.Dense) *mat.Dense {
		if c == nil {
			return nil
		}
		cs, _ := std.Direct(nil, c, nil)
		return cs
	}
	out := flows.Distribution{
		LogPDF: func(p flows.Params, x, c *mat.Dense) []float64 { return d.LogPDF(p, x, conv(c)) },
		Sample: func(key flows.Key, p flows.Params, n int, c *mat.Dense) *mat.Dense {
			return d.Sample(key, p, n, conv(c))
		},
		LogPDFVJP: func(p flows.Params, x, c *mat.Dense) ([]float64, flows.DistPullback) {
			if c == nil {
				return d.LogPDFVJP(p, x, nil)
			}
			cs, _, stdBack := std.DirectVJP(nil, c, nil)
			lp, b := d.LogPDFVJP(p, x, cs)
			return lp, func(dLogp []float64, dp flows.Params, dc *mat.Dense) *mat.Dense {
				if dc == nil {
					return b(dLogp, dp, nil)
				}
				n, _ := dc.Dims()
				dcs := mat.NewDense(n, cdim, nil)
				dx := b(dLogp, dp, dcs)
				dc.Add(dc, stdBack(dcs, make([]float64, n), nil, nil))
				return dx
			}
		},
		Latent: func(p flows.Params, x, c *mat.Dense) *mat.Dense { return d.Latent(p, x, conv(c)) },
	}
	out.Prepare = func(p flows.Params) flows.PreparedDistribution { return preparedContext(d, p, conv) }
	if d.InitFromData != nil {
		out.InitFromData = func(p flows.Params, x, c *mat.Dense) { d.InitFromData(p, x, conv(c)) }
	}
	if d.UpdateState != nil {
		out.UpdateState = func(p flows.Params, x, c *mat.Dense) { d.UpdateState(p, x, conv(c)) }
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
func (m *Model) Sample(key flows.Key, n int, c *mat.Dense) *mat.Dense {
	return m.Config.finishSample(m.Dist.Sample(key, m.Params, n, c))
}

// Latent maps each row of x (given its context, as for LogPDF) to the
// latent space, where the model's prior is the standard normal: a row far
// from the origin there is one the model finds unusual, and a column of
// the result is a learned, standardised feature of the data.
func (m *Model) Latent(x, c *mat.Dense) *mat.Dense {
	return m.Dist.Latent(m.Params, m.Config.midpoints(x), c)
}
