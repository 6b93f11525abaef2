package flows_test

import (
	"math"
	"strings"
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/linalg"
	"gonum.org/v1/gonum/mat"
)

// randBatch returns n rows of width d with standard normal entries.
func randBatch(seed uint64, n, d int) *mat.Dense {
	r := flows.NewKey(seed).Rand()
	x := mat.NewDense(n, d, nil)
	for i := range n {
		for j := range d {
			x.Set(i, j, r.NormFloat64())
		}
	}
	return x
}

// TestSqueezeKnown checks Squeeze's order on a 1×2×4 image, values 0…7 row
// by row: channel 4c + 2dy + dx holds the pixels (2y+dy, 2x+dx).
func TestSqueezeKnown(t *testing.T) {
	s := flows.Shape{C: 1, H: 2, W: 4}
	_, b, err := flows.Squeeze(s)(flows.NewKey(1), s.Size(), 0)
	if err != nil {
		t.Fatal(err)
	}
	x := mat.NewDense(1, 8, []float64{0, 1, 2, 3, 4, 5, 6, 7})
	z, _ := b.Direct(flows.Params{}, x, nil)
	want := []float64{0, 2, 1, 3, 4, 6, 5, 7}
	for j, w := range want {
		if z.At(0, j) != w {
			t.Fatalf("Squeeze gives %v, want %v", z.RawRowView(0), want)
		}
	}
	if got := s.Squeezed(); got != (flows.Shape{C: 4, H: 1, W: 2}) {
		t.Errorf("Squeezed() = %v, want 4×1×2", got)
	}
}

// TestConv1x1IsPerPixelLinear checks that Conv1x1 maps every pixel's
// channel values by InvertibleLinear's W (made from the same key), and that
// its log-det is H·W·log|det W|.
func TestConv1x1IsPerPixelLinear(t *testing.T) {
	s := flows.Shape{C: 3, H: 2, W: 3}
	key := flows.NewKey(5)
	p, b, err := flows.Conv1x1(s)(key, s.Size(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pl, lin, err := flows.InvertibleLinear()(key, s.C, 0)
	if err != nil {
		t.Fatal(err)
	}
	for j := range p {
		p[j] += 0.1 * float64(j%5-2) // away from the orthogonal start
		pl[j] = p[j]
	}
	w, _ := lin.Direct(pl, eye(s.C), nil) // rows of W
	x := randBatch(2, 2, s.Size())
	z, ld := b.Direct(p, x, nil)
	hw := s.H * s.W
	for i := range 2 {
		for q := range hw {
			for o := range s.C {
				var want float64
				for c := range s.C {
					want += x.At(i, c*hw+q) * w.At(c, o)
				}
				if got := z.At(i, o*hw+q); math.Abs(got-want) > 1e-12 {
					t.Fatalf("image %d pixel %d channel %d: %v, want %v", i, q, o, got, want)
				}
			}
		}
	}
	lu, _ := mat.LogDet(w)
	if want := float64(hw) * lu; math.Abs(ld[0]-want) > 1e-10 {
		t.Errorf("log-det %v, want H·W·log|det W| = %v", ld[0], want)
	}
}

// eye returns the n×n identity.
func eye(n int) *mat.Dense {
	m := mat.NewDense(n, n, nil)
	for i := range n {
		m.Set(i, i, 1)
	}
	return m
}

// TestImageActNormInitFromData checks that after the data-dependent
// initialisation every channel has mean 0 and variance 1 over the batch
// and all its pixels.
func TestImageActNormInitFromData(t *testing.T) {
	s := flows.Shape{C: 3, H: 4, W: 2}
	p, b, err := flows.ImageActNorm(s)(flows.NewKey(1), s.Size(), 0)
	if err != nil {
		t.Fatal(err)
	}
	x := randBatch(3, 6, s.Size())
	x.Apply(func(_, j int, v float64) float64 { return float64(j/8+1)*v + float64(j/8) - 3 }, x) // channel c: scale c+1, mean c−3
	z := b.InitFromData(p, x, nil)
	hw := s.H * s.W
	for c := range s.C {
		var m, v float64
		for i := range 6 {
			for q := range hw {
				m += z.At(i, c*hw+q)
			}
		}
		m /= float64(6 * hw)
		for i := range 6 {
			for q := range hw {
				v += (z.At(i, c*hw+q) - m) * (z.At(i, c*hw+q) - m)
			}
		}
		v /= float64(6 * hw)
		if math.Abs(m) > 1e-12 || math.Abs(v-1) > 1e-12 {
			t.Errorf("channel %d: mean %v, variance %v after InitFromData", c, m, v)
		}
	}
}

// TestImageLayersStartAsIdentity checks that the couplings and the
// learned split prior start as the identity with log-det zero.
func TestImageLayersStartAsIdentity(t *testing.T) {
	s := flows.Shape{C: 4, H: 4, W: 4}
	net := flows.ConvNet(4, 4, flows.ConvNetConfig{Hidden: 4, Blocks: 1, WeightNorm: true})
	for name, init := range map[string]flows.InitFunc{
		"ImageCoupling/channels":     flows.ImageCoupling(s, flows.MaskChannels, net),
		"ImageCoupling/checkerboard": flows.ImageCoupling(s, flows.MaskCheckerboard, net),
		"FactorOut/learned":          flows.FactorOut(s, flows.PriorLearned, flows.Squeeze(flows.Shape{C: 2, H: 4, W: 4})),
	} {
		p, b, err := init(flows.NewKey(1), s.Size(), 0)
		if err != nil {
			t.Fatal(name, err)
		}
		x := randBatch(4, 3, s.Size())
		z, ld := b.Direct(p, x, nil)
		if name == "FactorOut/learned" {
			// The staying half is squeezed; the leaving half is unchanged.
			z = mat.DenseCopyOf(z.Slice(0, 3, 32, 64))
			x = mat.DenseCopyOf(x.Slice(0, 3, 32, 64))
		}
		if !mat.Equal(z, x) || ld[0] != 0 {
			t.Errorf("%s is not the identity at init (log-det %v)", name, ld[0])
		}
	}
}

// TestImageInitErrorsNameShapes checks that impossible settings are init
// errors naming the image shape.
func TestImageInitErrorsNameShapes(t *testing.T) {
	odd := flows.Shape{C: 1, H: 3, W: 3}
	for name, c := range map[string]struct {
		init flows.InitFunc
		dim  int
		want string
	}{
		"Squeeze/odd":         {flows.Squeeze(odd), 9, "1×3×3"},
		"ImageActNorm/width":  {flows.ImageActNorm(odd), 10, "1×3×3"},
		"Conv1x1/side":        {flows.Conv1x1(flows.Shape{C: 2, H: 0, W: 3}), 0, "2×0×3"},
		"ImageCoupling/1chan": {flows.ImageCoupling(odd, flows.MaskChannels, flows.ConvNet(3, 3, flows.ConvNetConfig{})), 9, "1×3×3"},
		"FactorOut/1chan":     {flows.FactorOut(odd, flows.PriorNormal, flows.Reverse()), 9, "1×3×3"},
		"Glow/scales":         {flows.Glow(flows.Shape{C: 1, H: 4, W: 6}, flows.GlowConfig{Scales: 2}), 24, "1×4×6"},
		"Glow/none":           {flows.Glow(odd, flows.GlowConfig{}), 9, "1×3×3"},
	} {
		_, _, err := c.init(flows.NewKey(1), c.dim, 0)
		if err == nil || !strings.HasPrefix(err.Error(), "flows: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %s", name, err, c.want)
		}
	}
	if _, _, err := flows.ConvNet(3, 3, flows.ConvNetConfig{})(flows.NewKey(1), 10, 18); err == nil || !strings.Contains(err.Error(), "3×3") {
		t.Errorf("ConvNet on 10 columns of 3×3 images: error %v", err)
	}
}

// TestGlowWorkersBitIdentical runs a Glow's log-density pullback with the
// convolutions split over one worker and over four, and wants the same bits
// (the batch is large enough for several convolution tasks).
func TestGlowWorkersBitIdentical(t *testing.T) {
	s := flows.Shape{C: 2, H: 8, W: 8}
	p, d, err := flows.Flow(flows.Glow(s, flows.GlowConfig{Steps: 1, Hidden: 8, Blocks: 1}), flows.Normal())(flows.NewKey(8), s.Size(), 0)
	if err != nil {
		t.Fatal(err)
	}
	// The hidden convs at the first scale (8 channels of 4×4) take 113
	// images a task: four tasks.
	const n = 400
	x := randBatch(9, n, s.Size())
	flows.InitFromData(d, p, x, nil)
	run := func(workers int) ([]float64, flows.Params, *mat.Dense) {
		defer linalg.SetWorkers(linalg.SetWorkers(workers))
		lp, back := d.LogPDFVJP(p, x, nil)
		dp := make(flows.Params, len(p))
		w := make([]float64, n)
		for i := range w {
			w[i] = 1 + float64(i%3)
		}
		return lp, dp, back(w, dp, nil)
	}
	lp1, dp1, dx1 := run(1)
	lp4, dp4, dx4 := run(4)
	for i := range lp1 {
		if math.Float64bits(lp1[i]) != math.Float64bits(lp4[i]) {
			t.Fatalf("log density of row %d: %v on 1 worker, %v on 4", i, lp1[i], lp4[i])
		}
	}
	for j := range dp1 {
		if math.Float64bits(dp1[j]) != math.Float64bits(dp4[j]) {
			t.Fatalf("parameter gradient %d: %v on 1 worker, %v on 4", j, dp1[j], dp4[j])
		}
	}
	if !mat.Equal(dx1, dx4) {
		t.Fatal("input gradients differ between 1 and 4 workers")
	}
}

// TestImageMisuseNamesShape checks that a batch of the wrong width panics
// with a flows: message naming the image shape.
func TestImageMisuseNamesShape(t *testing.T) {
	s := flows.Shape{C: 2, H: 3, W: 3}
	for name, init := range map[string]flows.InitFunc{
		"ImageActNorm":  flows.ImageActNorm(s),
		"Conv1x1":       flows.Conv1x1(s),
		"ImageCoupling": flows.ImageCoupling(s, flows.MaskChannels, flows.ConvNet(3, 3, flows.ConvNetConfig{Hidden: 2})),
	} {
		p, b, err := init(flows.NewKey(1), s.Size(), 0)
		if err != nil {
			t.Fatal(name, err)
		}
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.HasPrefix(msg, "flows: "+name) || !strings.Contains(msg, "2×3×3") || !strings.Contains(msg, "17 columns") {
					t.Errorf("%s on 17 columns: panic %q, want a flows: message naming 17 columns and 2×3×3", name, msg)
				}
			}()
			b.Direct(p, mat.NewDense(2, 17, nil), nil)
		}()
	}
}
