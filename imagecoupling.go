package flows

// RealNVP's and Glow's affine coupling on images, with a convolutional
// conditioner.
//
// A mask splits the C·H·W values of an image into kept values x_a and
// transformed values x_b. The conditioner net reads an image made of x_a
// (for a channel mask, the kept channels alone; for a checkerboard mask,
// every channel with the transformed positions zeroed) followed by one
// constant plane per context column (context value j repeated over the
// H·W pixels), and writes 2·C_b planes: a raw log-scale and a shift t for
// each transformed value (C_b = C for a checkerboard, the transformed
// channels' count for a channel mask; a checkerboard's outputs at kept
// positions are not used). Then, with Glow's sigmoid scale divided by its
// value at raw = 0 (so that a zero net gives the identity),
//
//	s = log σ(raw + 2) − log σ(2),  z_b = x_b·exp(s) + t,  z_a = x_a,  logDet = Σ s
//
// and Inverse computes x_b = (z_b − t)·exp(−s). The scale exp(s) lies in
// (0, 1/σ(2)) = (0, 1.135): a coupling can shrink a value as far as it
// likes but stretch it by at most 13.5%, so a stack of them cannot blow up
// an unusual image in the data-to-latent direction (a bounded tanh scale,
// e^{±3} per layer, did: one MNIST batch in a few hundred reached 10⁵
// bits/dim). FactorOut's learned prior, one layer at the end of a scale,
// uses AffineCoupling's s = 3·tanh(raw/3) instead, so the prior's standard
// deviation exp(−s) can be as small as e^{−3}. The pullbacks are the
// coupling's: through z_b to x_b, s and t, through s and t into the net
// and its input, and through the context planes into the context (a sum
// over their pixels).

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// ImageMask chooses which values of an image an ImageCoupling keeps.
type ImageMask int

const (
	// MaskChannels keeps the first C/2 channels and transforms the rest,
	// as Glow.
	MaskChannels ImageMask = iota
	// MaskChannelsSwapped keeps the last C/2 channels and transforms the
	// first C − C/2.
	MaskChannelsSwapped
	// MaskCheckerboard keeps the pixels with y+x even in every channel and
	// transforms those with y+x odd, as RealNVP.
	MaskCheckerboard
	// MaskCheckerboardSwapped keeps the pixels with y+x odd.
	MaskCheckerboardSwapped
)

// imageCouplingBound is the bound S on the coupling's log-scale, as
// AffineCoupling's.
const imageCouplingBound = affineCouplingBound

// ImageCoupling returns an affine coupling of images of the given shape
// with a convolutional conditioner made by net (ConvNet(shape.H, shape.W,
// …) for the usual one) and the given mask (the formulas are in
// imagecoupling.go's file comment). The net is made for (C_a + contextDim)
// planes in and 2·C_b planes out, with C_a, C_b the channels it reads and
// writes (C/2 and C − C/2 for MaskChannels; C and C for a checkerboard); its
// parameters are the layer's, in the net's layout. A net that starts with a
// zero output, as ConvNet does, makes the layer the identity at init. Init
// returns an error unless dim is shape.Size(), a channel mask has C ≥ 2 and
// a checkerboard H·W ≥ 2.
func ImageCoupling(shape Shape, mask ImageMask, net NetInitFunc) InitFunc {
	return imageCouplingInit(shape, mask, net, true)
}

// imageCouplingInit is ImageCoupling with Glow's sigmoid scale (sigmoid)
// or AffineCoupling's bounded tanh scale.
func imageCouplingInit(shape Shape, mask ImageMask, net NetInitFunc, sigmoid bool) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "ImageCoupling"
		if err := checkImageDim(who, shape, dim, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		if net == nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: nil net", who)
		}
		ic, err := newImageCoupling(shape, mask, contextDim)
		if err != nil {
			return nil, Bijection{}, err
		}
		hw := shape.H * shape.W
		p, nt, err := net(key, ic.netIn, 2*ic.cb*hw)
		if err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		ic.net, ic.np, ic.sigmoid = nt, len(p), sigmoid
		return p, ic.bijection(), nil
	}
}

// imageCoupling is an ImageCoupling's immutable shape.
type imageCoupling struct {
	s       Shape
	cdim    int
	cb      int   // channels the net writes per output half
	netIn   int   // net input width
	src     []int // net input column j (below C_a·H·W) reads x[src[j]], or −1 for a zero
	tr      []int // transformed columns of x
	out     []int // transformed value tr[k] uses net raw output out[k] and shift out[k] + cb·H·W
	net     Net
	np      int
	sigmoid bool // Glow's sigmoid scale, else the bounded tanh
}

// newImageCoupling lays out the mask.
func newImageCoupling(s Shape, mask ImageMask, cdim int) (*imageCoupling, error) {
	hw := s.H * s.W
	ic := &imageCoupling{s: s, cdim: cdim}
	switch mask {
	case MaskChannels, MaskChannelsSwapped:
		if s.C < 2 {
			return nil, fmt.Errorf("flows: ImageCoupling: a channel mask needs at least 2 channels, image shape %v", s)
		}
		ca := s.C / 2
		keep0, tr0 := 0, ca // MaskChannels
		if mask == MaskChannelsSwapped {
			keep0, tr0 = s.C-ca, 0
		}
		ic.cb = s.C - ca
		for j := 0; j < ca*hw; j++ {
			ic.src = append(ic.src, keep0*hw+j)
		}
		for k := 0; k < ic.cb*hw; k++ {
			ic.tr = append(ic.tr, tr0*hw+k)
			ic.out = append(ic.out, k)
		}
	case MaskCheckerboard, MaskCheckerboardSwapped:
		if hw < 2 {
			return nil, fmt.Errorf("flows: ImageCoupling: a checkerboard mask needs at least 2 pixels, image shape %v", s)
		}
		parity := 0
		if mask == MaskCheckerboardSwapped {
			parity = 1
		}
		ic.cb = s.C
		for j := 0; j < s.Size(); j++ {
			q := j % hw
			if (q/s.W+q%s.W)%2 == parity {
				ic.src = append(ic.src, j)
			} else {
				ic.src = append(ic.src, -1)
				ic.tr = append(ic.tr, j)
				ic.out = append(ic.out, j)
			}
		}
	default:
		return nil, fmt.Errorf("flows: ImageCoupling: unknown mask %d", int(mask))
	}
	ic.netIn = len(ic.src) + cdim*hw
	return ic, nil
}

// netInput builds the net's input from x (or z: they agree on the kept
// values) and the context.
func (ic *imageCoupling) netInput(xs []float64, n int, c *mat.Dense) *mat.Dense {
	hw, dim := ic.s.H*ic.s.W, ic.s.Size()
	in := make([]float64, n*ic.netIn)
	for i := 0; i < n; i++ {
		row, xr := in[i*ic.netIn:(i+1)*ic.netIn], xs[i*dim:(i+1)*dim]
		for j, k := range ic.src {
			if k >= 0 {
				row[j] = xr[k]
			}
		}
		for j := 0; j < ic.cdim; j++ {
			v := c.At(i, j)
			plane := row[len(ic.src)+j*hw : len(ic.src)+(j+1)*hw]
			for q := range plane {
				plane[q] = v
			}
		}
	}
	return mat.NewDense(n, ic.netIn, in)
}

// netInputBack adds the gradient of the net's input din to dx (kept
// values) and dc (when not nil).
func (ic *imageCoupling) netInputBack(din *mat.Dense, dx []float64, dc *mat.Dense) {
	hw, dim := ic.s.H*ic.s.W, ic.s.Size()
	g, n, _ := rawRows(din)
	for i := 0; i < n; i++ {
		row, dxr := g[i*ic.netIn:(i+1)*ic.netIn], dx[i*dim:(i+1)*dim]
		for j, k := range ic.src {
			if k >= 0 {
				dxr[k] += row[j]
			}
		}
		if dc == nil || dc.IsEmpty() {
			continue
		}
		for j := 0; j < ic.cdim; j++ {
			var s float64
			for _, v := range row[len(ic.src)+j*hw : len(ic.src)+(j+1)*hw] {
				s += v
			}
			dc.Set(i, j, dc.At(i, j)+s)
		}
	}
}

// scaleShift returns, for row i and transformed value k, the log-scale s,
// its derivative ds/draw and the shift t from the net's output y.
func (ic *imageCoupling) scaleShift(y []float64, i, k int) (s, ds, t float64) {
	w, half := 2*ic.cb*ic.s.H*ic.s.W, ic.cb*ic.s.H*ic.s.W
	row := y[i*w : (i+1)*w]
	raw := row[ic.out[k]]
	if ic.sigmoid {
		// log σ(a) = −softplus(−a); d/da log σ(a) = σ(−a).
		a := raw + 2
		return logSigmoid(a) - logSigmoid(2), 1 / (1 + math.Exp(a)), row[ic.out[k]+half]
	}
	th := math.Tanh(raw / imageCouplingBound)
	return imageCouplingBound * th, 1 - th*th, row[ic.out[k]+half]
}

// logSigmoid returns log σ(a) = −log(1 + e^{−a}) without overflow.
func logSigmoid(a float64) float64 {
	if a < 0 {
		return a - math.Log1p(math.Exp(a))
	}
	return -math.Log1p(math.Exp(-a))
}

// pass runs the coupling in either direction on u (x for Direct, z for
// Inverse) and returns the output, the log-dets and, when vjp, the
// pullback.
func (ic *imageCoupling) pass(p Params, u, c *mat.Dense, inverse, vjp bool) (*mat.Dense, []float64, Pullback) {
	const who = "ImageCoupling"
	dim := ic.s.Size()
	checkImageWidth(who, u, ic.s)
	checkParams(who, p, ic.np)
	us, n, _ := rawRows(u)
	checkContext(who, c, n, ic.cdim)
	in := ic.netInput(us, n, c)
	var y *mat.Dense
	var netBack NetPullback
	if vjp {
		y, netBack = ic.net.ApplyVJP(p, in)
	} else {
		y = ic.net.Apply(p, in)
	}
	ys, _, _ := rawRows(y)
	out := append([]float64(nil), us...)
	ld := make([]float64, n)
	for i := 0; i < n; i++ {
		o := out[i*dim : (i+1)*dim]
		for k, j := range ic.tr {
			s, _, t := ic.scaleShift(ys, i, k)
			if inverse {
				o[j] = (o[j] - t) * math.Exp(-s)
				ld[i] -= s
			} else {
				o[j] = o[j]*math.Exp(s) + t
				ld[i] += s
			}
		}
	}
	if !vjp {
		return mat.NewDense(n, dim, out), ld, nil
	}
	// x_b, the untransformed values, for the pullback: u itself in the
	// Direct direction, the output in the Inverse one. Private copies.
	xb := append([]float64(nil), us...)
	if inverse {
		xb = append([]float64(nil), out...)
	}
	back := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
		checkPullback(who, dz, dLogDet, dp, dc, n, dim, ic.np, ic.cdim)
		g, _, _ := rawRows(dz)
		du := append([]float64(nil), g...)
		dy := make([]float64, len(ys))
		w, half := 2*ic.cb*ic.s.H*ic.s.W, ic.cb*ic.s.H*ic.s.W
		for i := 0; i < n; i++ {
			gr, dur, xr, dyr := g[i*dim:(i+1)*dim], du[i*dim:(i+1)*dim], xb[i*dim:(i+1)*dim], dy[i*w:(i+1)*w]
			for k, j := range ic.tr {
				s, dsRaw, _ := ic.scaleShift(ys, i, k)
				var ds, dt float64
				if inverse {
					// x_b = (z_b − t)·e^{−s}, logDet = −Σ s.
					e := math.Exp(-s)
					dur[j] = gr[j] * e
					dt = -gr[j] * e
					ds = -gr[j]*xr[j] - dLogDet[i]
				} else {
					// z_b = x_b·e^{s} + t, logDet = Σ s.
					e := math.Exp(s)
					dur[j] = gr[j] * e
					dt = gr[j]
					ds = gr[j]*xr[j]*e + dLogDet[i]
				}
				dyr[ic.out[k]] = ds * dsRaw
				dyr[ic.out[k]+half] = dt
			}
		}
		din := netBack(mat.NewDense(n, w, dy), dp)
		ic.netInputBack(din, du, dc)
		return mat.NewDense(n, dim, du)
	}
	return mat.NewDense(n, dim, out), ld, back
}

// bijection returns the coupling's Bijection.
func (ic *imageCoupling) bijection() Bijection {
	return Bijection{
		Direct: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			z, ld, _ := ic.pass(p, x, c, false, false)
			return z, ld
		},
		Inverse: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64) {
			x, ld, _ := ic.pass(p, z, c, true, false)
			return x, ld
		},
		DirectVJP: func(p Params, x, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return ic.pass(p, x, c, false, true)
		},
		InverseVJP: func(p Params, z, c *mat.Dense) (*mat.Dense, []float64, Pullback) {
			return ic.pass(p, z, c, true, true)
		},
	}
}
