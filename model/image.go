package model

// The image kind: a ready-made flows.Glow over rows of pixels. Its data
// domain is fixed rather than learned from the data: every column is a
// pixel value, an integer 0 to 255, dequantised as Config.Dequantize
// describes (New fills Dequantize with every column), and the first layer's
// standardisation is not computed from the data but maps a dequantised
// value v ∈ [0, 256) to s = λ + (1 − 2λ)·v/256 (λ = 0.05, RealNVP's choice
// for images), which a Logit layer then maps to the real line, as in
// examples/glow. A per-column standardisation from the data would give the
// always-black border pixels of MNIST a scale of zero and would break the
// convolutions' sharing of weights across positions.

import (
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// KindImageGlow is Glow (Kingma & Dhariwal, 2018) on images: the
// multi-scale convolutional flows.Glow of images of Config.Shape, configured
// by Config.Glow, after a fixed logit preprocessing of pixel values 0 to
// 255 (see Config.Shape). Its rows hold one image each, channel-major.
const KindImageGlow Kind = "image-glow"

var kindImageGlow = kindSpec{
	KindInfo: KindInfo{Kind: KindImageGlow, Summary: "Glow on images: multi-scale ActNorm, 1×1 convolutions and convolutional couplings (needs a shape)", MinDim: 4},
	why:      "a 1×2×2 image is the smallest that a Squeeze halves",
	image:    true,
	block: func(c Config, _ int) []flows.InitFunc {
		return []flows.InitFunc{flows.Logit(), flows.Glow(c.Shape, c.Glow)}
	},
}

// pixelLambda keeps the image kinds' logit away from 0 and 1.
const pixelLambda = 0.05

// Defaults of Config.Glow for the image kinds (flows.Glow's).
const (
	defaultGlowSteps  = 4
	defaultGlowHidden = 32
	maxGlowScales     = 3
)

// pixelScaling returns the fixed standardisation of dim pixel columns of an
// image kind: mean and scale such that (v − mean)/scale = λ + (1 − 2λ)·v/256.
func pixelScaling(dim int) (mean, scale []float64) {
	mean, scale = make([]float64, dim), make([]float64, dim)
	for j := range mean {
		scale[j] = 256 / (1 - 2*pixelLambda)
		mean[j] = -pixelLambda * scale[j]
	}
	return mean, scale
}

// checkImage returns an error when c (kind spec) sets image fields that its
// kind does not take: a Shape or Glow for a kind of vectors, or for an image
// kind Layers other than 0 or 1, Hidden, an Activation or Bounds (its sizes
// come from Glow and its domain is fixed).
func (c Config) checkImage(spec kindSpec) error {
	if !spec.image {
		if c.Shape != (flows.Shape{}) || c.Glow != (flows.GlowConfig{}) {
			return fmt.Errorf("flows: Config: kind %q takes no Shape or Glow (those are for %q)", string(c.Kind), string(KindImageGlow))
		}
		return nil
	}
	who := fmt.Sprintf("flows: Config: kind %q", string(c.Kind))
	switch {
	case c.Shape.C < 1 || c.Shape.H < 1 || c.Shape.W < 1:
		return fmt.Errorf("%s needs a Shape with C, H and W positive, not %v", who, c.Shape)
	case c.Layers > 1 || len(c.Hidden) > 0 || c.Activation != 0:
		return fmt.Errorf("%s takes its sizes from Config.Glow, not Layers, Hidden or Activation", who)
	case len(c.Bounds) > 0:
		return fmt.Errorf("%s has a fixed domain, pixels 0 to 255, and takes no Bounds", who)
	case c.Glow.Steps < 0 || c.Glow.Hidden < 0 || c.Glow.Blocks < 0 || c.Glow.Scales < 0:
		return fmt.Errorf("%s: Glow has a negative size: %+v", who, c.Glow)
	case c.Glow.Prior != flows.PriorLearned && c.Glow.Prior != flows.PriorNormal:
		return fmt.Errorf("%s: unknown Glow prior %d", who, int(c.Glow.Prior))
	case c.Glow.Precision != flows.Float64 && c.Glow.Precision != flows.Float32:
		return fmt.Errorf("%s: unknown Glow precision %d", who, int(c.Glow.Precision))
	}
	dim := c.Shape.Size()
	if len(c.Dequantize) > 0 && (len(c.Dequantize) != dim || !slices.IsSortedFunc(c.Dequantize, func(a, b int) int { return a - b }) ||
		c.Dequantize[0] != 0 || c.Dequantize[dim-1] != dim-1) {
		return fmt.Errorf("%s dequantises every column; leave Dequantize empty", who)
	}
	return nil
}

// imageDefaults returns c, of an image kind (checked by checkImage), with
// its defaults filled in: one block, no Hidden, every column dequantised
// and Glow's zero sizes set as flows.Glow sets them.
func (c Config) imageDefaults() Config {
	dim := c.Shape.Size()
	c.Layers, c.Hidden = 1, nil
	if len(c.Dequantize) == 0 {
		c.Dequantize = make([]int, dim)
		for j := range c.Dequantize {
			c.Dequantize[j] = j
		}
	}
	if c.Glow.Steps == 0 {
		c.Glow.Steps = defaultGlowSteps
	}
	if c.Glow.Hidden == 0 {
		c.Glow.Hidden = defaultGlowHidden
	}
	if c.Glow.Scales == 0 {
		for h, w := c.Shape.H, c.Shape.W; h%2 == 0 && w%2 == 0 && c.Glow.Scales < maxGlowScales; h, w = h/2, w/2 {
			c.Glow.Scales++
		}
	}
	return c
}

// leastImageParams returns a lower bound on the parameters of an image
// kind's Glow (defaults filled in), saturating at MaxUint64: each of the
// Scales·Steps couplings' conv nets has a 3×3 convolution into Hidden
// channels from at least one and one out of them to at least one, and
// Blocks residual blocks of two Hidden→Hidden 3×3 convolutions. Load checks
// it before building, so a header cannot ask for a net far larger than
// the file.
func (c Config) leastImageParams() uint64 {
	g := c.Glow
	if g.Scales < 0 || g.Steps < 0 || g.Hidden < 0 || g.Blocks < 0 {
		return 0
	}
	h := uint64(g.Hidden)
	perNet, ok := mulSatOK(2*9, h)
	if b, ok2 := mulSatOK(uint64(g.Blocks)*2*9, h); ok && ok2 {
		if b, ok2 = mulSatOK(b, h); ok2 && perNet+b >= perNet {
			perNet += b
		} else {
			ok = false
		}
	} else {
		ok = false
	}
	nets, ok2 := mulSatOK(uint64(g.Scales), uint64(g.Steps))
	total, ok3 := mulSatOK(nets, perNet)
	if !ok || !ok2 || !ok3 {
		return math.MaxUint64
	}
	return total
}

// mulSatOK returns a·b and true, or MaxUint64 and false when it overflows.
func mulSatOK(a, b uint64) (uint64, bool) {
	if b != 0 && a > math.MaxUint64/b {
		return math.MaxUint64, false
	}
	return a * b, true
}

// checkShape returns an error unless dim columns fit c's Shape (for an
// image kind).
func (c Config) checkShape(dim int) error {
	if c.Shape != (flows.Shape{}) && dim != c.Shape.Size() {
		return fmt.Errorf("flows: kind %q: %d columns, but images of shape %v have C·H·W = %d", string(c.Kind), dim, c.Shape, c.Shape.Size())
	}
	return nil
}

// pixelError returns the error for a value v at row i, column j that is
// not a pixel value of an image kind, or nil.
func (c Config) pixelError(who string, i, j int, v float64) error {
	if c.Shape == (flows.Shape{}) || (v >= 0 && v <= 255) {
		return nil
	}
	return fmt.Errorf("flows: %s: %w", who, c.dataError(i, j, v, "is not a pixel value 0 to 255"))
}

// clampPixels moves the values of a sample of an image kind into 0 to
// 255, in place: the logit's inverse reaches a little beyond [0, 256).
func (c Config) clampPixels(x *mat.Dense) {
	if c.Shape == (flows.Shape{}) {
		return
	}
	n, _ := x.Dims()
	for i := range n {
		row := x.RawRowView(i)
		for j, v := range row {
			row[j] = math.Min(math.Max(v, 0), 255)
		}
	}
}

// SampleTemperature draws n rows from an unconditional model at the given
// temperature: latents from N(0, T²·I) mapped back through the flow
// (Glow's reduced-temperature sampling, sharper images for T < 1), in the
// data's units, finished as Sample finishes them. At T = 1 it gives Sample's
// rows, bit for bit, from the same key. It returns an error for a
// conditional or mixed model and for a temperature that is negative or not
// finite.
func (m *Model) SampleTemperature(key flows.Key, n int, temperature float64) (*mat.Dense, error) {
	if m.ContextDim > 0 || m.Categories != nil {
		return nil, fmt.Errorf("flows: Model.SampleTemperature: a conditional model; use Sample")
	}
	if !(temperature >= 0) || math.IsInf(temperature, 1) {
		return nil, fmt.Errorf("flows: Model.SampleTemperature: temperature %v, want a finite value ≥ 0", temperature)
	}
	cfg, spec, err := m.Config.withDefaults()
	if err != nil {
		return nil, err
	}
	// Flow's keys: the bijection's is the first of Split2.
	kb, _ := flows.NewKey(cfg.Seed).Split2()
	pb, b, err := cfg.bijection(spec, m.Dim, m.Mean, m.Scale)(kb, m.Dim, 0)
	if err != nil {
		return nil, err
	}
	if len(pb) != len(m.Params) {
		return nil, fmt.Errorf("flows: Model.SampleTemperature: the flow has %d parameters, the model %d", len(pb), len(m.Params))
	}
	_, prior, err := flows.Normal()(flows.Key{}, m.Dim, 0)
	if err != nil {
		return nil, err
	}
	z := prior.Sample(key, nil, n, nil)
	z.Scale(temperature, z)
	x, _ := b.Inverse(m.Params, z, nil)
	return cfg.finishSample(x), nil
}
