package model

// The kind registry: every ready-made architecture is declared here once,
// as its constant (whose doc comment describes it) next to its entry
// (summary, needs and block builder). Adding an architecture is one such
// pair and its place in the kinds table: New, Load, Kinds, Kind.Info and
// the command line's --kind pick it up from there.

import (
	"fmt"
	"strings"

	"github.com/gonormflows/flows"
)

// Kind names a ready-made flow architecture for New. Each is a stack of
// Config.Layers blocks after a Standardize layer, with a standard normal
// prior; Kinds lists them and Kind.Info describes one.
type Kind string

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

// kindSpec is how New builds one Kind.
type kindSpec struct {
	KindInfo
	// why says why MinDim, for the error.
	why string
	// linear says each block holds an InvertibleLinear (started as
	// Config.Linear says; counted by leastParams).
	linear bool
	// affine says the kind's affine layers take Config.LogScaleBound.
	affine bool
	// defaults, when not nil, fills in the kind's own defaults (before
	// the common ones) and checks its settings; New zeroes Config.ODE
	// for a kind without.
	defaults func(c *Config) error
	// image says the kind models images of Config.Shape (see image.go).
	image bool
	// block returns the layers of one block, given a Config with its
	// defaults filled in and the number of data columns.
	block func(c Config, dim int) []flows.InitFunc
	// revision is the kind's latest revision (see Config.Revision), which
	// New gives new models; 0 for a kind never revised.
	revision int
}

// couplingWhy is why the coupling kinds need two columns.
const couplingWhy = "its coupling layers split the columns in two"

// KindMAF is a masked autoregressive flow (Papamakarios et al., 2017):
// blocks of [MAF(MADEConfig{Hidden, Activation, NaturalOrder,
// SortedDegrees}), Reverse] (revision 1; revision 0, which model files
// without a revision hold, has CyclicDegrees: see Config.made).
// Each hidden width should be at least dim−1 (see flows.MADE).
const KindMAF Kind = "maf"

var kindMAF = kindSpec{
	KindInfo: KindInfo{Kind: KindMAF, Summary: "masked autoregressive flow (affine)", MinDim: 1},
	affine:   true,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.MAFBound(c.made(1), c.LogScaleBound), flows.Reverse()}
	},
	revision: 1,
}

// KindRealNVP is RealNVP (Dinh et al., 2017): blocks of
// [AffineCoupling(MLP(Hidden, Activation)), Reverse].
const KindRealNVP Kind = "realnvp"

var kindRealNVP = kindSpec{
	KindInfo: KindInfo{Kind: KindRealNVP, Summary: "RealNVP: affine couplings and reversals", MinDim: 2},
	why:      couplingWhy, affine: true,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.AffineCouplingBound(c.mlp(), c.LogScaleBound), flows.Reverse()}
	},
}

// KindGlow is Glow (Kingma & Dhariwal, 2018) on vectors: blocks of
// [ActNorm, InvertibleLinear, AffineCoupling(MLP(Hidden, Activation))]. New
// runs ActNorm's data-dependent initialisation on the data.
const KindGlow Kind = "glow"

var kindGlow = kindSpec{
	KindInfo: KindInfo{Kind: KindGlow, Summary: "Glow: ActNorm, invertible linear maps and affine couplings", MinDim: 2},
	why:      couplingWhy, linear: true, affine: true,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.ActNorm(), flows.InvertibleLinearFrom(c.Linear), flows.AffineCouplingBound(c.mlp(), c.LogScaleBound)}
	},
}

// KindNSFCoupling is a rational-quadratic neural spline flow with coupling
// layers, RQ-NSF (C) (Durkan et al., 2019): blocks of
// [NeuralSplineCoupling(MLP(Hidden, Activation), SplineConfig{Bins, Bound}),
// InvertibleLinear].
const KindNSFCoupling Kind = "nsf-coupling"

var kindNSFCoupling = kindSpec{
	KindInfo: KindInfo{Kind: KindNSFCoupling, Summary: "neural spline flow: spline couplings and invertible linear maps", MinDim: 2, Splines: true},
	why:      couplingWhy, linear: true,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.NeuralSplineCoupling(c.mlp(), c.spline()), flows.InvertibleLinearFrom(c.Linear)}
	},
}

// KindNSFAutoregressive is a rational-quadratic neural spline flow with
// autoregressive layers, RQ-NSF (AR): blocks of
// [NeuralSplineAutoregressive(MADEConfig{Hidden, Activation, NaturalOrder,
// SortedDegrees}, SplineConfig{Bins, Bound}), Reverse] (revision 1;
// revision 0 has CyclicDegrees: see Config.made).
const KindNSFAutoregressive Kind = "nsf-autoregressive"

var kindNSFAutoregressive = kindSpec{
	KindInfo: KindInfo{Kind: KindNSFAutoregressive, Summary: "neural spline flow: autoregressive splines and reversals", MinDim: 1, Splines: true},
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.NeuralSplineAutoregressive(c.made(1), c.spline()), flows.Reverse()}
	},
	revision: 1,
}

// KindNAF is a neural autoregressive flow, NAF-DSF (Huang et al., 2018):
// blocks of [NeuralAutoregressiveBounded(MADEConfig{Hidden, Activation,
// NaturalOrder}, 8 units, 1 layer, bound 4), Reverse]: deep sigmoidal maps
// on [−4, 4] of the standardised data with a slope floor, and of slope 1
// beyond (revision 1). Revision 0, which model files without a revision
// hold, used NeuralAutoregressive, whose map saturates outside the bulk
// of the training rows, where a row could cost thousands of nats.
// Revision 2 gives the MADEs SortedDegrees (see Config.made).
const KindNAF Kind = "naf"

// nafUnits is the number of sigmoid units of KindNAF's transformers.
const nafUnits = 8

var kindNAF = kindSpec{
	KindInfo: KindInfo{Kind: KindNAF, Summary: "neural autoregressive flow: deep sigmoidal transformers (8 units) and reversals", MinDim: 1},
	block: func(c Config, _ int) []flows.InitFunc {
		if c.Revision == 0 {
			return []flows.InitFunc{flows.NeuralAutoregressive(c.made(2), nafUnits, 1), flows.Reverse()}
		}
		return []flows.InitFunc{flows.NeuralAutoregressiveBounded(c.made(2), nafUnits, 1, polyKindBound), flows.Reverse()}
	},
	revision: 2,
}

// KindBNAF is a block neural autoregressive flow (De Cao et al., 2019):
// blocks of [BNAF(BNAFConfig{Hidden: units}), ActNorm, Reverse], where hidden
// layer l has ⌈Hidden[l]/dim⌉ units per dimension, so that it is Hidden[l]
// wide rounded up to a multiple of dim. Its activation is BNAF's own
// (Activation is ignored). BNAF layers start near a random linear map, not
// the identity; New's data-dependent initialisation of the ActNorm layers
// standardises their outputs, so the initial density is close to the
// Gaussian fitted to the data.
const KindBNAF Kind = "bnaf"

var kindBNAF = kindSpec{
	KindInfo: KindInfo{Kind: KindBNAF, Summary: "block neural autoregressive flow: BNAF layers (hidden widths rounded up to multiples of the columns), ActNorm and reversals", MinDim: 1},
	block: func(c Config, dim int) []flows.InitFunc {
		units := make([]int, len(c.Hidden))
		for i, h := range c.Hidden {
			units[i] = (h + dim - 1) / dim
		}
		return []flows.InitFunc{flows.BNAF(flows.BNAFConfig{Hidden: units}), flows.ActNorm(), flows.Reverse()}
	},
}

// Settings of the polynomial kinds.
const (
	sosKindPolys, sosKindDegree = 3, 3
	bernKindDegree              = 16
	polyKindBound               = 4.0
)

// KindSOS is a sum-of-squares polynomial flow (Jaini et al., 2019): blocks
// of [MaskedAutoregressive(MADEConfig{Hidden, Activation, NaturalOrder},
// SumOfSquaresUnitTails(3, 3, 4)), Reverse]: three squared cubics per
// column on [−4, 4] of the standardised data, of slope 1 beyond (revision
// 1). Revision 0, which model files without a revision hold, continued
// with the polynomial's end slopes, which compound over the blocks: a row
// outside the bulk could cost thousands of nats. Revision 2 gives the
// MADEs SortedDegrees (see Config.made).
const KindSOS Kind = "sos"

var kindSOS = kindSpec{
	KindInfo: KindInfo{Kind: KindSOS, Summary: "sum-of-squares polynomial flow: autoregressive SOS polynomials and reversals", MinDim: 1},
	block: func(c Config, _ int) []flows.InitFunc {
		t := flows.SumOfSquaresUnitTails(sosKindPolys, sosKindDegree, polyKindBound)
		if c.Revision == 0 {
			t = flows.SumOfSquares(sosKindPolys, sosKindDegree, polyKindBound)
		}
		return []flows.InitFunc{flows.MaskedAutoregressive(c.made(2), t), flows.Reverse()}
	},
	revision: 2,
}

// KindBernstein is a Bernstein polynomial flow (as zuko's BPF): blocks of
// [MaskedAutoregressive(MADEConfig{Hidden, Activation, NaturalOrder},
// Bernstein(16, 4)), Reverse]: degree 16 on [−4, 4] of the standardised
// data, the identity beyond. Revision 1 gives the MADEs SortedDegrees (see
// Config.made).
const KindBernstein Kind = "bernstein"

var kindBernstein = kindSpec{
	KindInfo: KindInfo{Kind: KindBernstein, Summary: "Bernstein polynomial flow: autoregressive Bernstein polynomials (degree 16) and reversals", MinDim: 1},
	block: func(c Config, _ int) []flows.InitFunc {
		t := flows.Bernstein(bernKindDegree, polyKindBound)
		return []flows.InitFunc{flows.MaskedAutoregressive(c.made(1), t), flows.Reverse()}
	},
	revision: 1,
}

// kinds is the table of architectures, in the order Kinds lists them.
var kinds = []kindSpec{
	kindMAF, kindRealNVP, kindGlow, kindNSFCoupling, kindNSFAutoregressive,
	kindNAF, kindBNAF, kindSOS, kindBernstein, kindCNF, kindImageGlow,
}

// mlp is the conditioner of a Config's coupling blocks.
func (c Config) mlp() flows.NetInitFunc {
	return flows.MLPWith(flows.MLPConfig{Hidden: c.Hidden, Act: c.Activation, Init: c.Init, Precision: c.Precision})
}

// made is the MADE of a Config's autoregressive blocks. Its hidden units
// get sorted degrees (flows.SortedDegrees) from the kind's revision
// sortedFrom on, cyclic ones before. That is why the MADE kinds were
// revised (maf, nsf-autoregressive and bernstein to 1, naf and sos to 2):
// a new model's MADEs are the same nets with their hidden units sorted by
// degree, whose masked products skip their zero blocks when every hidden
// layer is at least 128 wide (a hidden→hidden product at 8 columns and
// width 128 then does 68% of the full product's multiply-adds; the
// default widths, 64, compute whole products), while a model file of an
// earlier revision keeps the cyclic degrees, and the bits, it was fitted
// with.
func (c Config) made(sortedFrom int) flows.MADEConfig {
	mc := flows.MADEConfig{Hidden: c.Hidden, Act: c.Activation, Init: c.Init, Precision: c.Precision}
	if c.Revision >= sortedFrom {
		mc.Degrees = flows.SortedDegrees
	}
	return mc
}

// spline is the spline of a Config's blocks.
func (c Config) spline() flows.SplineConfig {
	return flows.SplineConfig{Bins: c.Bins, Bound: c.Bound}
}

// Kinds lists the ready-made architectures New builds.
func Kinds() []KindInfo {
	out := make([]KindInfo, len(kinds))
	for i, k := range kinds {
		out[i] = k.KindInfo
	}
	return out
}

// Info returns the description of the architecture k, and false when k is
// not one New builds (the empty Kind included: a Config's default kind
// depends on the data).
func (k Kind) Info() (KindInfo, bool) {
	s, ok := k.spec()
	return s.KindInfo, ok
}

// spec returns the table entry of k.
func (k Kind) spec() (kindSpec, bool) {
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
