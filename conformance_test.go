package flows_test

// The conformance registry: every exported constructor of package flows
// that returns a layer (InitFunc), a distribution (DistInitFunc), a
// conditioner net (NetInitFunc) or a transformer has cases here, and every
// case passes flowstest, layers and distributions both without a context
// and with one. TestRegistryComplete fails when a constructor is added
// without cases, as FlowJAX's test suite keeps its bijections in one list.
// The per-layer test files go further (more widths, extreme inputs, known
// values); this file is the one place that says "every layer".

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"gonum.org/v1/gonum/mat"
)

// registryEntry is one constructor's cases. Bijections and distributions
// are made for a context width, and run at 0 and 2.
type registryEntry struct {
	bijections    func(cdim int) []flowstest.Bijection
	distributions func(cdim int) []flowstest.Distribution
	nets          []flowstest.Net
	transformers  []flowstest.Transformer
}

// bij is one bijection case at context width cdim.
func bij(name string, init flows.InitFunc, dim int) func(int) []flowstest.Bijection {
	return func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{{Name: name, Init: init, Dim: dim, ContextDim: cdim}}
	}
}

var (
	// imgShape is the image shape of most image cases: 2×4×4, 32 columns.
	imgShape = flows.Shape{C: 2, H: 4, W: 4}
	regMLP   = flows.MLP([]int{8, 8}, flows.Tanh)
	regMADE  = flows.MADEConfig{Hidden: []int{8, 8}, Act: flows.Tanh, Order: flows.ReversedOrder}
)

var registry = map[string]registryEntry{
	"ActNorm":             {bijections: bij("ActNorm", flows.ActNorm(), 3)},
	"AffineCoupling":      {bijections: bij("AffineCoupling", flows.AffineCoupling(regMLP), 3)},
	"AffineCouplingBound": {bijections: bij("AffineCouplingBound", flows.AffineCouplingBound(regMLP, 1.5), 4)},
	"AffineCouplingSplit": {bijections: bij("AffineCouplingSplit", flows.AffineCouplingSplit(regMLP, flows.MLP([]int{6}, flows.ReLU)), 3)},
	"AdditiveCoupling":    {bijections: bij("AdditiveCoupling", flows.AdditiveCoupling(regMLP), 3)},
	"Bounded": {bijections: func(cdim int) []flowstest.Bijection {
		inf := math.Inf(1)
		return []flowstest.Bijection{
			// Two-sided, bounded below, bounded above, open.
			{Name: "Bounded", Init: flows.Bounded([]float64{-6, -9, -inf, -inf}, []float64{7, inf, 8, inf}), Dim: 4, ContextDim: cdim},
			{Name: "Bounded/unit", Init: flows.Bounded([]float64{0, 0}, []float64{1, 1}), Dim: 2, ContextDim: cdim, Inputs: unitInputs},
		}
	}},
	"BNAF": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "BNAF", Init: flows.BNAF(flows.BNAFConfig{Hidden: []int{2, 3}}), Dim: 3, ContextDim: cdim},
			{Name: "BNAF/dim=1", Init: flows.BNAF(flows.BNAFConfig{Hidden: []int{3}, Leak: 0.3}), Dim: 1, ContextDim: cdim},
			{Name: "BNAF/one-unit", Init: flows.BNAF(flows.BNAFConfig{Hidden: []int{1}}), Dim: 2, ContextDim: cdim},
			{Name: "BNAF/dim=5", Init: flows.BNAF(flows.BNAFConfig{Hidden: []int{2, 2, 3}, Leak: 0.05}), Dim: 5, ContextDim: cdim},
		}
	}},
	"BatchNorm": {bijections: func(cdim int) []flowstest.Bijection {
		const dim, rows = 3, 6
		cfg := flows.BatchNormConfig{Momentum: 0.1, Eps: 1e-5}
		train := cfg
		train.Train = true
		// The training map's Inverse is the evaluation map's, so the
		// round trip holds where the running statistics are the test
		// batch's own (see TestBatchNormTrainConformance).
		mean, variance := bnColumnStats(bnBatch(11, rows, dim))
		return []flowstest.Bijection{
			{Name: "BatchNorm/eval", Init: flows.BatchNorm(cfg), Dim: dim, ContextDim: cdim, State: bnState(dim),
				Perturb: bnPerturb([]float64{0.5, -0.2, 1}, []float64{0.7, 1.3, 0.4})},
			{Name: "BatchNorm/train", Init: flows.BatchNorm(train), Dim: dim, ContextDim: cdim, State: bnState(dim),
				Perturb: bnPerturb(mean, variance), RowCoupled: true, Rows: rows,
				Inputs: func(_ flows.Key, n, d int) *mat.Dense { return bnBatch(11, n, d) }},
		}
	}},
	"CNF": {bijections: func(cdim int) []flowstest.Bijection {
		// RK4 with a fixed number of steps: the pullbacks are then smooth
		// functions of the parameters and inputs, as finite differences
		// need. At these parameters 24 steps leave a round-trip error of
		// 1.5e-9 and 8 steps fail the Jacobian and adjoint checks too;
		// 48 steps put the round trip near 1e-10 (RK4's error falls 16-fold
		// per doubling, cnf_test.go measures its order).
		rk := flows.ODESolver{Method: flows.RK4, Steps: 48}
		small := []int{8}
		// Larger moves than the default N(0, 0.2²) make the flow far from
		// the identity (a map whose log-det is O(1)), so that a wrong term
		// of the adjoint or of the trace shows.
		strong := func(key flows.Key, p flows.Params) flows.Params {
			q := slices.Clone(p)
			rng := key.Rand()
			for i := range q {
				q[i] += 0.7 * rng.NormFloat64()
			}
			return q
		}
		return []flowstest.Bijection{
			{Name: "CNF/backprop", Init: flows.CNF(flows.CNFConfig{Hidden: small, Solver: rk, Gradient: flows.BackpropSteps}), Dim: 2, ContextDim: cdim, Perturb: strong},
			{Name: "CNF/adjoint/silu", Init: flows.CNF(flows.CNFConfig{Hidden: small, Activation: flows.SiLU, Solver: rk}), Dim: 3, ContextDim: cdim, Perturb: strong},
		}
	}},
	"CircularCoupling": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "CircularCoupling/mixed", Init: flows.CircularCoupling(regMLP, flows.CircularConfig{Angles: []int{0, 2}, Bins: 4}), Dim: 3, ContextDim: cdim},
			{Name: "CircularCoupling/torus", Init: flows.CircularCoupling(regMLP, flows.CircularConfig{Angles: []int{0, 1}, Bins: 5}), Dim: 2, ContextDim: cdim},
			{Name: "CircularCoupling/reals", Init: flows.CircularCoupling(regMLP, flows.CircularConfig{Bins: 3, Bound: 2}), Dim: 4, ContextDim: cdim},
		}
	}},
	"Coupling": {bijections: func(cdim int) []flowstest.Bijection {
		var bs []flowstest.Bijection
		for _, t := range []flows.Transformer{flows.Affine(2), flows.Shift(), flows.Spline(flows.SplineConfig{Bins: 5}), flows.LogisticMixture(2)} {
			bs = append(bs, flowstest.Bijection{Name: "Coupling/" + t.Name, Init: flows.Coupling(regMLP, t), Dim: 3, ContextDim: cdim})
		}
		return bs
	}},
	"FixedInvertibleLinear": {bijections: bij("FixedInvertibleLinear", flows.FixedInvertibleLinear(), 4)},
	"Invert": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Invert(MAF)", Init: flows.Invert(flows.MAF(regMADE)), Dim: 3, ContextDim: cdim},
			{Name: "Invert(AffineCoupling)", Init: flows.Invert(flows.AffineCoupling(regMLP)), Dim: 3, ContextDim: cdim},
		}
	}},
	"InvertibleLinear": {bijections: bij("InvertibleLinear", flows.InvertibleLinear(), 4)},
	"InvertibleLinearFrom": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "InvertibleLinearFrom/permutation", Init: flows.InvertibleLinearFrom(flows.LinearPermutation), Dim: 4, ContextDim: cdim},
			{Name: "InvertibleLinearFrom/orthogonal", Init: flows.InvertibleLinearFrom(flows.LinearOrthogonal), Dim: 3, ContextDim: cdim},
		}
	}},
	"Logit": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{{Name: "Logit", Init: flows.Logit(), Dim: 3, ContextDim: cdim, Inputs: unitInputs}}
	}},
	"LogisticMixtureCoupling": {bijections: bij("LogisticMixtureCoupling", flows.LogisticMixtureCoupling(regMLP, 3), 3)},
	"MAF": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "MAF", Init: flows.MAF(regMADE), Dim: 3, ContextDim: cdim},
			{Name: "MAF/dim=1", Init: flows.MAF(regMADE), Dim: 1, ContextDim: cdim},
			{Name: "MAF/no-hidden", Init: flows.MAF(flows.MADEConfig{}), Dim: 3, ContextDim: cdim},
			// More rows than one chunk of the sequential inverse.
			{Name: "MAF/chunks", Init: flows.MAF(flows.MADEConfig{Hidden: []int{4}, Act: flows.ReLU}), Dim: 2, ContextDim: cdim, Rows: 300},
		}
	}},
	"MAFBound": {bijections: bij("MAFBound", flows.MAFBound(regMADE, 6), 3)},
	"MaskedAutoregressive": {bijections: func(cdim int) []flowstest.Bijection {
		var bs []flowstest.Bijection
		for _, t := range []flows.Transformer{flows.Affine(2), flows.Shift(), flows.Spline(flows.SplineConfig{Bins: 5}), flows.LogisticMixture(2)} {
			bs = append(bs, flowstest.Bijection{Name: "MaskedAutoregressive/" + t.Name, Init: flows.MaskedAutoregressive(regMADE, t), Dim: 3, ContextDim: cdim})
		}
		return bs
	}},
	"NeuralAutoregressive": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "NeuralAutoregressive", Init: flows.NeuralAutoregressive(regMADE, 3, 2), Dim: 3, ContextDim: cdim},
			{Name: "NeuralAutoregressive/dim=1", Init: flows.NeuralAutoregressive(regMADE, 2, 1), Dim: 1, ContextDim: cdim},
		}
	}},
	"NeuralAutoregressiveBounded": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "NeuralAutoregressiveBounded", Init: flows.NeuralAutoregressiveBounded(regMADE, 3, 2, 1.5), Dim: 3, ContextDim: cdim},
			{Name: "NeuralAutoregressiveBounded/dim=1", Init: flows.NeuralAutoregressiveBounded(regMADE, 2, 1, 1.5), Dim: 1, ContextDim: cdim},
		}
	}},
	"NeuralSplineAutoregressive": {bijections: bij("NeuralSplineAutoregressive", flows.NeuralSplineAutoregressive(regMADE, flows.SplineConfig{Bins: 4}), 3)},
	"NeuralSplineCoupling":       {bijections: bij("NeuralSplineCoupling", flows.NeuralSplineCoupling(regMLP, flows.SplineConfig{Bins: 4, Bound: 2}), 3)},
	"Reverse":                    {bijections: bij("Reverse", flows.Reverse(), 3)},
	"Planar": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Planar", Init: flows.Planar(), Dim: 3, ContextDim: cdim},
			{Name: "Planar/dim=1", Init: flows.Planar(), Dim: 1, ContextDim: cdim},
			// Moved further from the identity, where wᵀû is far from 0.
			{Name: "Planar/far", Init: flows.Planar(), Dim: 2, ContextDim: cdim, Perturb: scalePerturb(1)},
		}
	}},
	"Radial": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Radial", Init: flows.Radial(), Dim: 3, ContextDim: cdim},
			{Name: "Radial/dim=1", Init: flows.Radial(), Dim: 1, ContextDim: cdim},
			{Name: "Radial/far", Init: flows.Radial(), Dim: 2, ContextDim: cdim, Perturb: scalePerturb(1)},
		}
	}},
	"Sylvester": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Sylvester", Init: flows.Sylvester(flows.SylvesterConfig{}), Dim: 3, ContextDim: cdim},
			{Name: "Sylvester/M=2/K=4", Init: flows.Sylvester(flows.SylvesterConfig{Hidden: 2, Reflections: 4}), Dim: 4, ContextDim: cdim},
			{Name: "Sylvester/dim=1", Init: flows.Sylvester(flows.SylvesterConfig{}), Dim: 1, ContextDim: cdim},
			{Name: "Sylvester/far", Init: flows.Sylvester(flows.SylvesterConfig{Hidden: 3, Reflections: 2}), Dim: 3, ContextDim: cdim, Perturb: scalePerturb(1)},
		}
	}},
	"Serial": {bijections: bij("Serial", flows.Serial(flows.ActNorm(), flows.AffineCoupling(regMLP), flows.Reverse(),
		flows.InvertibleLinear(), flows.MAF(regMADE)), 3)},
	"Shuffle":     {bijections: bij("Shuffle", flows.Shuffle(), 5)},
	"Sigmoid":     {bijections: bij("Sigmoid", flows.Sigmoid(), 3)},
	"Standardize": {bijections: bij("Standardize", flows.Standardize([]float64{1, -2, 0.5}, []float64{2, 0.25, 1}), 3)},

	"Squeeze": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Squeeze/2x4x4", Init: flows.Squeeze(imgShape), Dim: imgShape.Size(), ContextDim: cdim},
			{Name: "Invert(Squeeze)/1x2x6", Init: flows.Invert(flows.Squeeze(flows.Shape{C: 1, H: 2, W: 6})), Dim: 12, ContextDim: cdim},
		}
	}},
	"FactorOut": {bijections: func(cdim int) []flowstest.Bijection {
		half := flows.Shape{C: 1, H: 4, W: 4}
		rest := flows.Serial(flows.ImageActNorm(half), flows.ImageCoupling(half, flows.MaskCheckerboard, flows.ConvNet(4, 4, flows.ConvNetConfig{Hidden: 2})))
		return []flowstest.Bijection{
			{Name: "FactorOut/learned", Init: flows.FactorOut(imgShape, flows.PriorLearned, rest), Dim: imgShape.Size(), ContextDim: cdim},
			{Name: "FactorOut/normal", Init: flows.FactorOut(flows.Shape{C: 3, H: 2, W: 2}, flows.PriorNormal, flows.Conv1x1(flows.Shape{C: 1, H: 2, W: 2})), Dim: 12, ContextDim: cdim},
		}
	}},
	"Glow": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Glow/1x4x4", Init: flows.Glow(flows.Shape{C: 1, H: 4, W: 4}, flows.GlowConfig{Steps: 1, Hidden: 2}), Dim: 16, ContextDim: cdim},
		}
	}},
	"ImageActNorm": {bijections: bij("ImageActNorm/2x4x4", flows.ImageActNorm(imgShape), imgShape.Size())},
	"Conv1x1": {bijections: func(cdim int) []flowstest.Bijection {
		return []flowstest.Bijection{
			{Name: "Conv1x1/2x4x4", Init: flows.Conv1x1(imgShape), Dim: imgShape.Size(), ContextDim: cdim},
			{Name: "Conv1x1/3x2x3", Init: flows.Conv1x1(flows.Shape{C: 3, H: 2, W: 3}), Dim: 18, ContextDim: cdim},
		}
	}},
	"ImageCoupling": {bijections: func(cdim int) []flowstest.Bijection {
		net := flows.ConvNet(4, 4, flows.ConvNetConfig{Hidden: 3, Blocks: 1})
		wn := flows.ConvNet(4, 4, flows.ConvNetConfig{Hidden: 3, WeightNorm: true})
		odd := flows.Shape{C: 3, H: 3, W: 3}
		return []flowstest.Bijection{
			{Name: "ImageCoupling/channels", Init: flows.ImageCoupling(imgShape, flows.MaskChannels, net), Dim: imgShape.Size(), ContextDim: cdim},
			{Name: "ImageCoupling/channels-swapped/odd", Init: flows.ImageCoupling(odd, flows.MaskChannelsSwapped, flows.ConvNet(3, 3, flows.ConvNetConfig{Hidden: 2})), Dim: odd.Size(), ContextDim: cdim},
			{Name: "ImageCoupling/checkerboard/weightnorm", Init: flows.ImageCoupling(imgShape, flows.MaskCheckerboard, wn), Dim: imgShape.Size(), ContextDim: cdim},
			{Name: "ImageCoupling/checkerboard-swapped/odd", Init: flows.ImageCoupling(odd, flows.MaskCheckerboardSwapped, flows.ConvNet(3, 3, flows.ConvNetConfig{Hidden: 2})), Dim: odd.Size(), ContextDim: cdim},
		}
	}},

	"Normal":     {distributions: distCases("Normal", flows.Normal(), 1, 2, 3)},
	"DiagNormal": {distributions: distCases("DiagNormal", flows.DiagNormal(), 1, 2, 3)},
	"GMM":        {distributions: distCases("GMM", gmm2D.init(), 2)},
	"GMMRandom":  {distributions: distCases("GMMRandom", flows.GMMRandom(3), 2)},
	"Flow": {distributions: func(cdim int) []flowstest.Distribution {
		// Box 12: the perturbed flows spread wider than the default 8.
		return []flowstest.Distribution{
			{Name: "Flow/MAF/dim=1", Init: flows.Flow(flows.MAF(regMADE), flows.DiagNormal()), Dim: 1, ContextDim: cdim, Box: 12},
			{Name: "Flow/Serial/dim=2", Init: flows.Flow(flows.Serial(flows.AffineCoupling(regMLP), flows.Reverse(), flows.MAF(regMADE)),
				flows.DiagNormal()), Dim: 2, ContextDim: cdim, Box: 12},
		}
	}},

	"ConvNet": {nets: []flowstest.Net{
		{Name: "ConvNet/blocks=2", Init: flows.ConvNet(3, 4, flows.ConvNetConfig{Hidden: 3, Blocks: 2}), In: 2 * 12, Out: 4 * 12},
		{Name: "ConvNet/weightnorm", Init: flows.ConvNet(4, 2, flows.ConvNetConfig{Hidden: 2, Blocks: 1, WeightNorm: true}), In: 8, Out: 16},
	}},
	"MLP":  {nets: []flowstest.Net{{Name: "MLP", Init: regMLP, In: 3, Out: 4}}},
	"MADE": {nets: []flowstest.Net{{Name: "MADE", Init: flows.MADE(regMADE), In: 3, Out: 6}}},
	// The float64 mode; Float32's products are checked against it in
	// precision_test.go (finite differences cannot resolve float32 rounding).
	"MLPWith": {nets: []flowstest.Net{
		{Name: "MLPWith/SiLU", Init: flows.MLPWith(flows.MLPConfig{Hidden: []int{6, 5}, Act: flows.SiLU, Init: flows.InitTorch}), In: 3, Out: 2},
	}},
	"MLPFrom": {nets: []flowstest.Net{
		{Name: "MLPFrom/torch", Init: flows.MLPFrom([]int{8, 8}, flows.ReLU, flows.InitTorch), In: 3, Out: 4},
		{Name: "MLPFrom/he", Init: flows.MLPFrom([]int{5}, flows.Tanh, flows.InitHe), In: 2, Out: 3},
	}},

	"Affine":          {transformers: []flowstest.Transformer{{Name: "Affine", Transformer: flows.Affine(3)}}},
	"Shift":           {transformers: []flowstest.Transformer{{Name: "Shift", Transformer: flows.Shift()}}},
	"Spline":          {transformers: []flowstest.Transformer{{Name: "Spline", Transformer: flows.Spline(flows.SplineConfig{Bins: 6, Bound: 2.5})}}},
	"LogisticMixture": {transformers: []flowstest.Transformer{{Name: "LogisticMixture", Transformer: flows.LogisticMixture(3)}}},
	"SumOfSquares": {transformers: []flowstest.Transformer{
		{Name: "SumOfSquares/2x3", Transformer: flows.SumOfSquares(2, 3, 2.5)},
		{Name: "SumOfSquares/1x0", Transformer: flows.SumOfSquares(1, 0, 1)},
	}},
	"Bernstein": {transformers: []flowstest.Transformer{
		{Name: "Bernstein/4", Transformer: flows.Bernstein(4, 2.5)},
		{Name: "Bernstein/12", Transformer: flows.Bernstein(12, 3)},
	}},
	"CircularSpline": {transformers: []flowstest.Transformer{
		{Name: "CircularSpline/2", Transformer: flows.CircularSpline(2)},
		{Name: "CircularSpline/6", Transformer: flows.CircularSpline(6)},
	}},
	"DeepSigmoidal": {transformers: []flowstest.Transformer{
		{Name: "DeepSigmoidal/units=3/layers=1", Transformer: flows.DeepSigmoidal(3, 1)},
		{Name: "DeepSigmoidal/units=4/layers=3", Transformer: flows.DeepSigmoidal(4, 3)},
	}},
	"SumOfSquaresUnitTails": {transformers: []flowstest.Transformer{
		// The slope jumps at ±bound (the map is C⁰ there): finite
		// differences straddling it disagree with either one-sided
		// derivative, so the bound keeps the suite's points off it (a
		// bound of 1 or 3 puts some on it).
		{Name: "SumOfSquaresUnitTails/2x3", Transformer: flows.SumOfSquaresUnitTails(2, 3, 2.5)},
	}},
	"DeepSigmoidalBounded": {transformers: []flowstest.Transformer{
		{Name: "DeepSigmoidalBounded/units=3/layers=1", Transformer: flows.DeepSigmoidalBounded(3, 1, 2.5)},
		{Name: "DeepSigmoidalBounded/units=4/layers=3", Transformer: flows.DeepSigmoidalBounded(4, 3, 2.5)},
	}},
}

// distCases is one distribution case per dimension at context width cdim.
func distCases(name string, init flows.DistInitFunc, dims ...int) func(int) []flowstest.Distribution {
	return func(cdim int) []flowstest.Distribution {
		var ds []flowstest.Distribution
		for _, d := range dims {
			ds = append(ds, flowstest.Distribution{Name: fmt.Sprintf("%s/dim=%d", name, d), Init: init, Dim: d, ContextDim: cdim})
		}
		return ds
	}
}

// TestConformance runs every registry case through the suite.
func TestConformance(t *testing.T) {
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range registry {
			if !yield(k) {
				return
			}
		}
	}) {
		e := registry[name]
		for _, cdim := range []int{0, 2} {
			if e.bijections != nil {
				for _, b := range e.bijections(cdim) {
					b.Name = fmt.Sprintf("%s/context=%d", b.Name, cdim)
					flowstest.TestBijection(t, b)
				}
			}
			if e.distributions != nil {
				for _, d := range e.distributions(cdim) {
					d.Name = fmt.Sprintf("%s/context=%d", d.Name, cdim)
					flowstest.TestDistribution(t, d)
				}
			}
		}
		for _, n := range e.nets {
			flowstest.TestNet(t, n)
		}
		for _, tr := range e.transformers {
			flowstest.TestTransformer(t, tr)
		}
	}
}

// TestRegistryComplete fails for an exported constructor of package flows
// without conformance cases: every exported function whose result is an
// InitFunc, DistInitFunc, NetInitFunc or Transformer.
func TestRegistryComplete(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]bool{"InitFunc": true, "DistInitFunc": true, "NetInitFunc": true, "Transformer": true}
	var found []string
	for _, f := range pkgs["flows"].Files {
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fn.Type.Results.List[0].Type.(*ast.Ident); ok && kinds[id.Name] {
				found = append(found, fn.Name.Name)
			}
		}
	}
	if len(found) < 30 {
		t.Fatalf("found only %d constructors (%v): the parse is wrong", len(found), found)
	}
	for _, name := range found {
		if _, ok := registry[name]; !ok {
			t.Errorf("%s has no conformance case in the registry (conformance_test.go)", name)
		}
	}
	for name := range registry {
		if !slices.Contains(found, name) {
			t.Errorf("the registry has %s, which is not an exported constructor", name)
		}
	}
}
