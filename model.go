package flows

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
// blocks after a Standardize layer, with a standard normal prior.
const (
	// KindRealNVP is RealNVP (Dinh et al., 2017): blocks of
	// [AffineCoupling(MLP(Hidden, Activation)), Reverse]. It needs at
	// least 2 columns.
	KindRealNVP Kind = "realnvp"
	// KindGlow is Glow (Kingma & Dhariwal, 2018) on vectors: blocks of
	// [ActNorm, InvertibleLinear, AffineCoupling(MLP(Hidden, Activation))].
	// NewModel runs ActNorm's data-dependent initialisation on the data. It
	// needs at least 2 columns.
	KindGlow Kind = "glow"
	// KindMAF is a masked autoregressive flow (Papamakarios et al., 2017):
	// blocks of [MAF(MADEConfig{Hidden, Activation, NaturalOrder}),
	// Reverse]. It works from 1 column up; each hidden width should be at
	// least dim−1 (see MADE).
	KindMAF Kind = "maf"
	// KindNSFCoupling is a rational-quadratic neural spline flow with
	// coupling layers, RQ-NSF (C) (Durkan et al., 2019): blocks of
	// [NeuralSplineCoupling(MLP(Hidden, Activation), SplineConfig{Bins,
	// Bound}), InvertibleLinear]. It needs at least 2 columns.
	KindNSFCoupling Kind = "nsf-coupling"
	// KindNSFAutoregressive is a rational-quadratic neural spline flow with
	// autoregressive layers, RQ-NSF (AR): blocks of
	// [NeuralSplineAutoregressive(MADEConfig{Hidden, Activation,
	// NaturalOrder}, SplineConfig{Bins, Bound}), Reverse]. It works from 1
	// column up; each hidden width should be at least dim−1.
	KindNSFAutoregressive Kind = "nsf-autoregressive"
)

// Defaults for the zero fields of Config.
const (
	defaultLayers = 5
	defaultBins   = 8
	defaultBound  = 3.0
)

// defaultHidden is the default of Config.Hidden.
var defaultHidden = []int{64, 64}

// Config describes a ready-made flow for NewModel. Zero fields take
// defaults: 5 layers (blocks), hidden widths [64 64], ReLU (the zero
// Activation), and for the spline kinds (KindNSFCoupling,
// KindNSFAutoregressive) 8 bins and bound 3. Kind has no default.
type Config struct {
	// Kind is the architecture (KindRealNVP, KindGlow, KindMAF,
	// KindNSFCoupling or KindNSFAutoregressive).
	Kind Kind
	// Layers is the number of blocks (default 5).
	Layers int
	// Hidden holds the hidden widths of every conditioner net (default
	// [64 64]); an empty slice means the default.
	Hidden []int
	// Activation is the conditioner nets' nonlinearity (default ReLU).
	Activation Activation
	// Bins and Bound configure the splines of the spline kinds (defaults 8
	// and 3; see SplineConfig): each spline acts on [−Bound, Bound] of the
	// standardised data and is the identity outside. Other kinds ignore
	// them, and NewModel sets them to zero.
	Bins  int
	Bound float64
	// Seed makes the initial key, NewKey(Seed). The key also draws
	// structure that is not a parameter (InvertibleLinear's permutation and
	// signs), so a saved model records it.
	Seed uint64
}

// kindSpec is how NewModel builds one Kind: adding an architecture is one
// entry of the kinds table.
type kindSpec struct {
	// minDim is the least number of columns the blocks work with, and why.
	minDim int
	why    string
	// splines says the kind uses Config.Bins and Config.Bound.
	splines bool
	// linear says each block holds an InvertibleLinear.
	linear bool
	// block returns the layers of one block, given a Config with its
	// defaults filled in.
	block func(c Config) []InitFunc
}

// kinds is the table of architectures NewModel knows.
var kinds = map[Kind]kindSpec{
	KindRealNVP: {
		minDim: 2, why: "its coupling layers split the columns in two",
		block: func(c Config) []InitFunc {
			return []InitFunc{AffineCoupling(MLP(c.Hidden, c.Activation)), Reverse()}
		},
	},
	KindGlow: {
		minDim: 2, why: "its coupling layers split the columns in two", linear: true,
		block: func(c Config) []InitFunc {
			return []InitFunc{ActNorm(), InvertibleLinear(), AffineCoupling(MLP(c.Hidden, c.Activation))}
		},
	},
	KindMAF: {
		minDim: 1,
		block: func(c Config) []InitFunc {
			return []InitFunc{MAF(MADEConfig{Hidden: c.Hidden, Act: c.Activation}), Reverse()}
		},
	},
	KindNSFCoupling: {
		minDim: 2, why: "its coupling layers split the columns in two", splines: true, linear: true,
		block: func(c Config) []InitFunc {
			spline := SplineConfig{Bins: c.Bins, Bound: c.Bound}
			return []InitFunc{NeuralSplineCoupling(MLP(c.Hidden, c.Activation), spline), InvertibleLinear()}
		},
	},
	KindNSFAutoregressive: {
		minDim: 1, splines: true,
		block: func(c Config) []InitFunc {
			spline := SplineConfig{Bins: c.Bins, Bound: c.Bound}
			return []InitFunc{NeuralSplineAutoregressive(MADEConfig{Hidden: c.Hidden, Act: c.Activation}, spline), Reverse()}
		},
	},
}

// kindNames lists the known kinds, sorted, for error messages.
func kindNames() string {
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, fmt.Sprintf("%q", string(k)))
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// withDefaults returns c with its zero fields replaced by their defaults,
// or an error naming the field that cannot work.
func (c Config) withDefaults() (Config, kindSpec, error) {
	spec, ok := kinds[c.Kind]
	if !ok {
		if c.Kind == "" {
			return c, spec, fmt.Errorf("flows: Config: no Kind; want one of %s", kindNames())
		}
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
	if spec.splines {
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
	return c, spec, nil
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
	if spec.splines {
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
// a standard normal prior. Make one with NewModel, train it by giving Dist
// and Params to package optim, and keep it with Save.
//
// Config, Dim, Mean and Scale describe the model; Dist is built from them
// when the model is made (or loaded), so changing them afterwards does not
// change Dist. Params is the one vector that training changes, in place.
//
// Model's methods read the model and are safe for concurrent use while
// nothing changes Params.
type Model struct {
	// Config is the configuration, with its defaults filled in.
	Config Config
	// Dim is the number of columns of the data.
	Dim int
	// Mean and Scale are the fixed standardisation of the first layer,
	// z = (x − Mean)/Scale column by column (see Standardize).
	Mean, Scale []float64
	// Params holds the trainable parameters in Dist's layout.
	Params Params
	// Dist is the flow. It is not saved: Load rebuilds it from Config,
	// Dim, Mean and Scale.
	Dist Distribution
}

// NewModel makes a model of the data's dimension from cfg (zero fields
// take the defaults documented on Config): it computes the standardisation
// from data (StandardizeFrom), builds Standardize followed by cfg.Layers
// blocks of cfg.Kind and a Normal prior, draws the initial parameters from
// NewKey(cfg.Seed), and runs the data-dependent initialisation
// (InitFromData, which sets Glow's ActNorm layers) on data. The learned
// layers start at the identity (Glow's at a linear map), so the initial
// density is a Gaussian fitted to the data. For example
//
//	m, err := flows.NewModel(flows.Config{Kind: flows.KindRealNVP, Layers: 8}, x)
//
// It returns an error for an invalid cfg, for a nil or empty data, for a
// NaN or ±Inf in the data (naming its row and column), and when the kind
// needs more columns than the data has.
func NewModel(cfg Config, data *mat.Dense) (*Model, error) {
	cfg, spec, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	mean, scale, err := StandardizeFrom(data)
	if err != nil {
		return nil, err
	}
	m, err := buildModel(cfg, spec, len(mean), mean, scale)
	if err != nil {
		return nil, err
	}
	InitFromData(m.Dist, m.Params, data)
	return m, nil
}

// buildModel makes the model of cfg (defaults filled in) for dim columns
// with the given standardisation, with the initial parameters of
// NewKey(cfg.Seed).
func buildModel(cfg Config, spec kindSpec, dim int, mean, scale []float64) (*Model, error) {
	if dim < spec.minDim {
		return nil, fmt.Errorf("flows: kind %q needs at least %d columns (%s), not %d", string(cfg.Kind), spec.minDim, spec.why, dim)
	}
	layers := []InitFunc{Standardize(mean, scale)}
	for range cfg.Layers {
		layers = append(layers, spec.block(cfg)...)
	}
	p, d, err := Flow(Serial(layers...), Normal())(NewKey(cfg.Seed), dim)
	if err != nil {
		return nil, fmt.Errorf("flows: kind %q: %w", string(cfg.Kind), err)
	}
	return &Model{
		Config: cfg,
		Dim:    dim,
		Mean:   slices.Clone(mean),
		Scale:  slices.Clone(scale),
		Params: p,
		Dist:   d,
	}, nil
}

// LogPDF returns the log density of each row of x (n×Dim) under the model,
// in the data's units (the standardisation's log-det included). It panics
// for a batch without Dim columns.
func (m *Model) LogPDF(x *mat.Dense) []float64 {
	return m.Dist.LogPDF(m.Params, x)
}

// Sample draws n rows (n×Dim) from the model, in the data's units. The same
// key and parameters give the same rows, bit for bit.
func (m *Model) Sample(key Key, n int) *mat.Dense {
	return m.Dist.Sample(key, m.Params, n)
}
