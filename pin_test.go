package flows

// Pins: what a refactor must not change.
//
// testdata/pins/layers.json holds, for every layer and distribution
// constructor, a SHA-256 of the bits of everything its functions compute at
// fixed keys on fixed inputs (outputs, log-dets, samples and gradients).
// The ready-made models' files are pinned in package model
// (model/pin_test.go). A change that moves any of these is
// a change of behaviour: of a layer's parameter layout, of its key use, or
// of its arithmetic. Regenerate with
//
//	go test . -run 'TestPinned' -update-pins
//
// only for such a deliberate change, say why in the commit, and bump the
// model-file format (with a tested migration) when saved models would load
// into a different function.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

var updatePins = flag.Bool("update-pins", false, "rewrite testdata/pins and testdata/models (a deliberate, documented change only)")

// pinHash accumulates the bits of matrices and vectors.
type pinHash map[string]string

func hashFloats(vs ...[]float64) string {
	h := sha256.New()
	var b [8]byte
	for _, v := range vs {
		for _, x := range v {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			h.Write(b[:])
		}
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func denseRows(m *mat.Dense) []float64 {
	if m == nil {
		return nil
	}
	r, c := m.Dims()
	out := make([]float64, 0, r*c)
	for i := range r {
		out = append(out, m.RawRowView(i)...)
	}
	return out
}

func pinBatch(key Key, n, dim int, unit bool) *mat.Dense {
	rng := key.Rand()
	x := mat.NewDense(n, dim, nil)
	for i := range n {
		for j := range dim {
			v := rng.NormFloat64()
			if unit {
				v = 1 / (1 + math.Exp(-v))
			}
			x.Set(i, j, v)
		}
	}
	return x
}

// pinPerturb moves the first k parameters (all when k < 0) by N(0, 0.3²).
func pinPerturb(p Params, k int) Params {
	q := slices.Clone(p)
	if k < 0 {
		k = len(q)
	}
	rng := NewKey(12).Rand()
	for i := range q[:k] {
		q[i] += 0.3 * rng.NormFloat64()
	}
	return q
}

type pinLayer struct {
	name    string
	init    InitFunc
	dim     int
	rows    int
	unit    bool // inputs in (0, 1)
	perturb int  // parameters to perturb, -1 all
}

// pinCondLayer is a layer given a context. Until the one-family change the
// conditional layers were separate constructors (CondAffineCoupling, …,
// CondSerial with Conditional(…) lifts); their pins keep those names.
type pinCondLayer struct {
	name string
	init InitFunc
	dim  int
	cdim int
	rows int
}

func pinLayers() []pinLayer {
	mlp := MLP([]int{8, 8}, Tanh)
	made := MADEConfig{Hidden: []int{8, 8}, Act: ReLU}
	madeRand := MADEConfig{Hidden: []int{7}, Act: SiLU, Order: RandomOrder}
	spline := SplineConfig{Bins: 5, Bound: 2.5}
	return []pinLayer{
		{"AffineCoupling", AffineCoupling(mlp), 3, 7, false, -1},
		{"AffineCouplingBound", AffineCouplingBound(MLP([]int{6}, ReLU), 2), 4, 7, false, -1},
		{"AffineCouplingSplit", AffineCouplingSplit(MLP([]int{5}, ELU), MLP([]int{5}, LeakyReLU)), 3, 7, false, -1},
		{"AdditiveCoupling", AdditiveCoupling(mlp), 3, 7, false, -1},
		{"ActNorm", ActNorm(), 3, 7, false, -1},
		{"InvertibleLinear", InvertibleLinear(), 4, 7, false, -1},
		{"FixedInvertibleLinear", FixedInvertibleLinear(), 4, 7, false, -1},
		{"MAF", MAF(made), 3, 7, false, -1},
		{"MAF/random-order", MAF(madeRand), 4, 300, false, -1},
		{"MAF/dim1", MAF(made), 1, 7, false, -1},
		{"NeuralSplineCoupling", NeuralSplineCoupling(mlp, spline), 3, 7, false, -1},
		{"NeuralSplineAutoregressive", NeuralSplineAutoregressive(made, spline), 3, 7, false, -1},
		{"NeuralSplineAutoregressive/random-order", NeuralSplineAutoregressive(madeRand, spline), 4, 300, false, -1},
		{"LogisticMixtureCoupling", LogisticMixtureCoupling(mlp, 3), 3, 7, false, -1},
		{"BatchNorm/eval", BatchNorm(BatchNormConfig{Momentum: 0.1, Eps: 1e-5}), 3, 7, false, 6},
		{"BatchNorm/train", BatchNorm(BatchNormConfig{Momentum: 0.1, Eps: 1e-5, Train: true}), 3, 7, false, 6},
		{"Sigmoid", Sigmoid(), 3, 7, false, -1},
		{"Logit", Logit(), 3, 7, true, -1},
		{"Standardize", Standardize([]float64{1, -2, 0.5}, []float64{2, 0.25, 1}), 3, 7, false, -1},
		{"Bounded", Bounded([]float64{-6, -9, math.Inf(-1), math.Inf(-1)}, []float64{7, math.Inf(1), 8, math.Inf(1)}), 4, 7, false, -1},
		{"Reverse", Reverse(), 3, 7, false, -1},
		{"Shuffle", Shuffle(), 5, 7, false, -1},
		{"Invert(MAF)", Invert(MAF(made)), 3, 7, false, -1},
		{"Serial", Serial(ActNorm(), AffineCoupling(mlp), Reverse(), MAF(made), InvertibleLinear()), 3, 7, false, -1},
		{"NeuralAutoregressive", NeuralAutoregressive(made, 4, 2), 3, 7, false, -1},
		{"BNAF", BNAF(BNAFConfig{Hidden: []int{2, 3}}), 3, 7, false, -1},
		{"SumOfSquares", MaskedAutoregressive(made, SumOfSquares(2, 3, 4)), 3, 7, false, -1},
		{"SumOfSquaresUnitTails", MaskedAutoregressive(made, SumOfSquaresUnitTails(2, 3, 1.5)), 3, 7, false, -1},
		{"NeuralAutoregressiveBounded", NeuralAutoregressiveBounded(made, 4, 2, 1.5), 3, 7, false, -1},
		{"Bernstein", MaskedAutoregressive(made, Bernstein(6, 4)), 3, 7, false, -1},
		{"CircularCoupling", CircularCoupling(mlp, CircularConfig{Angles: []int{0, 2}, Bins: 4}), 3, 7, false, -1},
		{"Planar", Planar(), 3, 7, false, -1},
		{"Radial", Radial(), 3, 7, false, -1},
		{"Sylvester", Sylvester(SylvesterConfig{Hidden: 2}), 3, 7, false, -1},
	}
}

func pinCondLayers() []pinCondLayer {
	mlp := MLP([]int{8}, Tanh)
	made := MADEConfig{Hidden: []int{8, 8}, Act: ReLU}
	spline := SplineConfig{Bins: 4}
	return []pinCondLayer{
		{"CondAffineCoupling", AffineCoupling(mlp), 3, 2, 7},
		{"CondAffineCouplingBound", AffineCouplingBound(mlp, 1.5), 3, 2, 7},
		{"CondAffineCouplingSplit", AffineCouplingSplit(MLP([]int{4}, ReLU), mlp), 3, 2, 7},
		{"CondAdditiveCoupling", AdditiveCoupling(mlp), 3, 2, 7},
		{"CondMAF", MAF(made), 3, 2, 300},
		{"CondMAF/no-hidden", MAF(MADEConfig{}), 3, 1, 7},
		{"CondNeuralSplineCoupling", NeuralSplineCoupling(mlp, spline), 3, 2, 7},
		{"CondNeuralSplineAutoregressive", NeuralSplineAutoregressive(made, spline), 3, 2, 7},
		{"CondNeuralAutoregressive", NeuralAutoregressive(made, 4, 2), 3, 2, 7},
		{"CondNeuralAutoregressiveBounded", NeuralAutoregressiveBounded(made, 4, 2, 1.5), 3, 2, 7},
		{"CondBNAF", BNAF(BNAFConfig{Hidden: []int{2, 3}}), 3, 2, 7},
		{"CondLogisticMixtureCoupling", LogisticMixtureCoupling(mlp, 2), 3, 2, 7},
		{"CondInvert(CondMAF)", Invert(MAF(made)), 3, 2, 7},
		{"CondSerial", Serial(ActNorm(), AffineCoupling(mlp), Reverse(), MAF(made)), 3, 2, 7},
	}
}

// pinBijection computes the hashes of one layer's functions.
func pinBijection(l pinLayer) (pinHash, error) {
	return pinLayerHashes(l.init, l.dim, 0, l.rows, l.unit, l.perturb)
}

// pinCondBijection computes the hashes of one layer's functions given a
// context (and of the context's gradients).
func pinCondBijection(l pinCondLayer) (pinHash, error) {
	return pinLayerHashes(l.init, l.dim, l.cdim, l.rows, false, -1)
}

// pinLayerHashes hashes what the layer of init computes on fixed batches of
// rows (standard normal, or in (0, 1) when unit), at its initial parameters
// perturbed (all, or the first perturb), with a context of cdim columns
// when cdim > 0.
func pinLayerHashes(init InitFunc, dim, cdim, rows int, unit bool, perturb int) (pinHash, error) {
	p0, b, err := init(NewKey(20261130), dim, cdim)
	if err != nil {
		return nil, err
	}
	h := pinHash{"init": hashFloats(p0)}
	p := pinPerturb(p0, perturb)
	x := pinBatch(NewKey(11), rows, dim, unit)
	var c, dc, idc *mat.Dense
	if cdim > 0 {
		c = pinBatch(NewKey(15), rows, cdim, false)
		dc, idc = mat.NewDense(rows, cdim, nil), mat.NewDense(rows, cdim, nil)
	}
	dz := pinBatch(NewKey(13), rows, dim, false)
	dl := denseRows(pinBatch(NewKey(14), rows, 1, false))
	z, ld := b.Direct(p, x, c)
	h["z"], h["ld"] = hashFloats(denseRows(z)), hashFloats(ld)
	xi, ild := b.Inverse(p, z, c)
	h["x"], h["ild"] = hashFloats(denseRows(xi)), hashFloats(ild)
	_, _, back := b.DirectVJP(p, x, c)
	dp := make(Params, len(p))
	dx := back(dz, dl, dp, dc)
	h["dx"], h["dp"] = hashFloats(denseRows(dx)), hashFloats(dp)
	if cdim > 0 {
		h["dc"] = hashFloats(denseRows(dc))
	}
	if b.InverseVJP != nil {
		_, _, iback := b.InverseVJP(p, z, c)
		idp := make(Params, len(p))
		idz := iback(dz, dl, idp, idc)
		h["idz"], h["idp"] = hashFloats(denseRows(idz)), hashFloats(idp)
		if cdim > 0 {
			h["idc"] = hashFloats(denseRows(idc))
		}
	}
	if b.InitFromData != nil {
		q := slices.Clone(p)
		y := b.InitFromData(q, x, c)
		h["initfromdata"] = hashFloats(q, denseRows(y))
	}
	if b.UpdateState != nil {
		q := slices.Clone(p)
		y := b.UpdateState(q, x, c)
		h["updatestate"] = hashFloats(q, denseRows(y))
	}
	return h, nil
}

type pinDist struct {
	name string
	init DistInitFunc
	dim  int
}

func pinDists() []pinDist {
	covs := []*mat.SymDense{
		mat.NewSymDense(2, []float64{1, 0.3, 0.3, 0.5}),
		mat.NewSymDense(2, []float64{0.4, -0.1, -0.1, 2}),
	}
	return []pinDist{
		{"Normal", Normal(), 3},
		{"DiagNormal", DiagNormal(), 3},
		{"GMM", GMM([][]float64{{0, 1}, {-1, 0.5}}, covs, []float64{0.3, 0.7}), 2},
		{"GMMRandom", GMMRandom(3), 2},
		{"Flow", Flow(Serial(AffineCoupling(MLP([]int{8}, Tanh)), Reverse(), MAF(MADEConfig{Hidden: []int{6}})), DiagNormal()), 3},
	}
}

func pinDistribution(d pinDist) (pinHash, error) {
	p0, dist, err := d.init(NewKey(20261130), d.dim, 0)
	if err != nil {
		return nil, err
	}
	h := pinHash{"init": hashFloats(p0)}
	p := pinPerturb(p0, -1)
	if d.name == "GMM" || d.name == "GMMRandom" {
		p = p0 // keep the covariances valid
	}
	x := pinBatch(NewKey(11), 9, d.dim, false)
	h["logpdf"] = hashFloats(dist.LogPDF(p, x, nil))
	h["sample"] = hashFloats(denseRows(dist.Sample(NewKey(16), p, 11, nil)))
	lp, back := dist.LogPDFVJP(p, x, nil)
	dp := make(Params, len(p))
	dx := back(denseRows(pinBatch(NewKey(14), 9, 1, false)), dp, nil)
	h["vjp"] = hashFloats(lp, denseRows(dx), dp)
	return h, nil
}

func pinCondDistribution() (pinHash, error) {
	made := MADEConfig{Hidden: []int{8}}
	p0, dist, err := Flow(Serial(AffineCoupling(MLP([]int{8}, Tanh)), Reverse(), MAF(made)), DiagNormal())(NewKey(20261130), 3, 2)
	if err != nil {
		return nil, err
	}
	h := pinHash{"init": hashFloats(p0)}
	p := pinPerturb(p0, -1)
	x := pinBatch(NewKey(11), 9, 3, false)
	c := pinBatch(NewKey(15), 9, 2, false)
	h["logpdf"] = hashFloats(dist.LogPDF(p, x, c))
	h["sample"] = hashFloats(denseRows(dist.Sample(NewKey(16), p, 9, c)))
	lp, back := dist.LogPDFVJP(p, x, c)
	dp := make(Params, len(p))
	dc := mat.NewDense(9, 2, nil)
	dx := back(denseRows(pinBatch(NewKey(14), 9, 1, false)), dp, dc)
	h["vjp"] = hashFloats(lp, denseRows(dx), denseRows(dc), dp)
	return h, nil
}

// allPins computes every layer and distribution pin.
func allPins(t *testing.T) map[string]pinHash {
	t.Helper()
	pins := map[string]pinHash{}
	add := func(name string, h pinHash, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, dup := pins[name]; dup {
			t.Fatalf("%s pinned twice", name)
		}
		pins[name] = h
	}
	for _, l := range pinLayers() {
		h, err := pinBijection(l)
		add("layer/"+l.name, h, err)
	}
	for _, l := range pinCondLayers() {
		h, err := pinCondBijection(l)
		add("layer/"+l.name, h, err)
	}
	for _, d := range pinDists() {
		h, err := pinDistribution(d)
		add("dist/"+d.name, h, err)
	}
	h, err := pinCondDistribution()
	add("dist/CondFlow", h, err)
	return pins
}

const layerPinFile = "testdata/pins/layers.json"

// skipOnOpenBLAS skips a test of exact bits in the openblas build: OpenBLAS
// sums a product in an order of its own choosing, which depends on the CPU
// it dispatches for and on the matrix's size, so neither the pins nor the
// independence of a row from its batch hold there (README, Reproducibility).
// CI runs these tests under each of our kernels.
func skipOnOpenBLAS(t testing.TB) {
	t.Helper()
	if linalg.Backend() == "openblas" {
		t.Skip("exact bits are our kernels' promise, not OpenBLAS's")
	}
}

func TestPinnedLayers(t *testing.T) {
	skipOnOpenBLAS(t)
	got := allPins(t)
	if *updatePins {
		writeJSON(t, layerPinFile, got)
		return
	}
	var want map[string]pinHash
	readJSON(t, layerPinFile, &want)
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g, ok := got[n]
		if !ok {
			t.Errorf("%s: pinned, but no longer computed", n)
			continue
		}
		for item, w := range want[n] {
			if g[item] != w {
				t.Errorf("%s: %s changed (hash %s, pinned %s)", n, item, g[item], w)
			}
		}
		for item := range g {
			if _, ok := want[n][item]; !ok {
				t.Errorf("%s: %s is computed but not pinned", n, item)
			}
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%s: computed but not pinned (run with -update-pins once it is right)", n)
		}
	}
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
