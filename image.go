package flows

// Images as rows, and layers that act on every pixel alike.
//
// An image of shape C×H×W is one row of C·H·W values in channel-major
// order: value (c, y, x) sits at column c·H·W + y·W + x, so each channel is
// a contiguous H·W plane and the first k channels are the row's first
// k·H·W columns. Every image layer is then an ordinary InitFunc of width
// C·H·W: it composes with Serial, Flow and Invert, takes a context, and goes
// through the conformance suite like any other layer.
//
// A per-pixel layer (ImageActNorm, Conv1x1) is a C-column layer applied to
// each of the H·W pixels of each image: the batch is transposed to
// (n·H·W)×C rows (pixel-major), the inner layer runs on those rows, and its
// output is transposed back. The per-image log-det is the sum of the
// pixels' in pixel order; in a pullback every pixel of image i receives
// image i's log-det gradient. The inner layer's parameters, layout and
// data-dependent initialisation are the layer's own: InitFromData over the
// pixel rows computes per-channel statistics over the batch and every pixel.

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// Shape is the shape of an image: C channels of H rows of W pixels. A batch
// of images is an n×(C·H·W) matrix whose row i holds image i in
// channel-major order: value (c, y, x) at column c·H·W + y·W + x.
type Shape struct {
	C int `json:"c"`
	H int `json:"h"`
	W int `json:"w"`
}

// Size returns C·H·W, the width of a row holding one image.
func (s Shape) Size() int { return s.C * s.H * s.W }

// String returns the shape as "C×H×W".
func (s Shape) String() string { return fmt.Sprintf("%d×%d×%d", s.C, s.H, s.W) }

// Squeezed returns the shape after Squeeze: 4C×(H/2)×(W/2).
func (s Shape) Squeezed() Shape { return Shape{4 * s.C, s.H / 2, s.W / 2} }

// valid returns an error naming who and the shape unless every side is
// positive.
func (s Shape) valid(who string) error {
	if s.C < 1 || s.H < 1 || s.W < 1 {
		return fmt.Errorf("flows: %s: image shape %v has a side below 1", who, s)
	}
	return nil
}

// checkImageDim returns an init error unless the shape is valid and dim is
// its C·H·W and contextDim is not negative.
func checkImageDim(who string, s Shape, dim, contextDim int) error {
	if err := s.valid(who); err != nil {
		return err
	}
	if dim != s.Size() {
		return fmt.Errorf("flows: %s: width %d is not the image shape %v's C·H·W = %d", who, dim, s, s.Size())
	}
	return checkContextDim(who, contextDim)
}

// checkImageWidth panics with a flows: message naming the image shape
// when x does not have s.Size() columns.
func checkImageWidth(who string, x *mat.Dense, s Shape) {
	if x == nil {
		panic("flows: " + who + ": nil batch")
	}
	if _, c := x.Dims(); c != s.Size() {
		panic(fmt.Sprintf("flows: %s: batch has %d columns, want %d for images of shape %v", who, c, s.Size(), s))
	}
}

// toPixels returns the n×(C·H·W) batch x as (n·H·W)×C rows, one per pixel
// (image-major, then pixel-major).
func toPixels(x *mat.Dense, s Shape) *mat.Dense {
	xs, n, _ := rawRows(x)
	hw, c := s.H*s.W, s.C
	out := make([]float64, len(xs))
	forRows(n, s.Size(), func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			img, dst := xs[i*c*hw:(i+1)*c*hw], out[i*c*hw:(i+1)*c*hw]
			for ch := 0; ch < c; ch++ {
				plane := img[ch*hw : (ch+1)*hw]
				for q, v := range plane {
					dst[q*c+ch] = v
				}
			}
		}
	})
	return mat.NewDense(n*hw, c, out)
}

// fromPixels undoes toPixels: (n·H·W)×C pixel rows back to an n×(C·H·W)
// batch.
func fromPixels(p *mat.Dense, s Shape) *mat.Dense {
	ps, rows, _ := rawRows(p)
	hw, c := s.H*s.W, s.C
	n := rows / hw
	out := make([]float64, len(ps))
	forRows(n, s.Size(), func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			src, img := ps[i*c*hw:(i+1)*c*hw], out[i*c*hw:(i+1)*c*hw]
			for ch := 0; ch < c; ch++ {
				plane := img[ch*hw : (ch+1)*hw]
				for q := range plane {
					plane[q] = src[q*c+ch]
				}
			}
		}
	})
	return mat.NewDense(n, s.Size(), out)
}

// sumPixels returns the per-image sums of per-pixel log-dets, in pixel
// order.
func sumPixels(ld []float64, hw int) []float64 {
	out := make([]float64, len(ld)/hw)
	for i := range out {
		var s float64
		for _, v := range ld[i*hw : (i+1)*hw] {
			s += v
		}
		out[i] = s
	}
	return out
}

// spreadPixels returns each image's log-det gradient repeated over its
// pixels.
func spreadPixels(d []float64, hw int) []float64 {
	out := make([]float64, len(d)*hw)
	for i, v := range d {
		for q := range hw {
			out[i*hw+q] = v
		}
	}
	return out
}

// ImageActNorm returns Glow's per-channel activation normalisation of
// images of the given shape: ActNorm over the C channels, one location and
// log-scale per channel shared by every pixel, so
//
//	z[c,y,x] = (x[c,y,x] − bias_c)·exp(−logScale_c)
//
// with per-image log-det −H·W·Σ_c logScale_c. Its parameters are ActNorm's
// at width C, [logScale (C) | bias (C)], zero at init (the identity).
// InitFromData sets each channel's bias and scale to the mean and standard
// deviation of that channel over the batch and every pixel (see ActNorm).
// The context is ignored. Init returns an error unless dim is shape.Size().
func ImageActNorm(shape Shape) InitFunc {
	return pixelwise("ImageActNorm", shape, ActNorm())
}

// Conv1x1 returns Glow's invertible 1×1 convolution of images of the given
// shape: InvertibleLinear over the C channels applied at every pixel, in its
// LU parameterisation, z[:,y,x] = x[:,y,x]·W (a row of C channel values
// times the C×C matrix W), with per-image log-det H·W·log|det W|. The
// parameters, their layout and the random orthogonal start drawn from the
// key are InvertibleLinear's at width C. The context is ignored. Init
// returns an error unless dim is shape.Size().
func Conv1x1(shape Shape) InitFunc {
	return pixelwise("Conv1x1", shape, InvertibleLinear())
}

// pixelwise applies the C-column layer inner to every pixel of images of
// shape s (see the file comment). The context is not passed on: inner
// layers are unconditional.
func pixelwise(who string, s Shape, inner InitFunc) InitFunc {
	return func(key Key, dim, contextDim int) (Params, Bijection, error) {
		if err := checkImageDim(who, s, dim, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		p, b, err := inner(key, s.C, 0)
		if err != nil {
			return nil, Bijection{}, fmt.Errorf("flows: %s: %w", who, err)
		}
		hw, np := s.H*s.W, len(p)
		pass := func(f func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64)) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64) {
			return func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
				checkImageWidth(who, x, s)
				checkParams(who, p, np)
				z, ld := f(p, toPixels(x, s), nil)
				return fromPixels(z, s), sumPixels(ld, hw)
			}
		}
		passVJP := func(f func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, Pullback)) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, Pullback) {
			if f == nil {
				return nil
			}
			return func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
				checkImageWidth(who, x, s)
				checkParams(who, p, np)
				n, _ := x.Dims()
				z, ld, back := f(p, toPixels(x, s), nil)
				pb := func(dz *mat.Dense, dLogDet []float64, dp Params, dc *mat.Dense) *mat.Dense {
					checkPullback(who, dz, dLogDet, dp, dc, n, dim, np, contextDim)
					return fromPixels(back(toPixels(dz, s), spreadPixels(dLogDet, hw), dp, nil), s)
				}
				return fromPixels(z, s), sumPixels(ld, hw), pb
			}
		}
		out := Bijection{
			Direct:     pass(b.Direct),
			Inverse:    pass(b.Inverse),
			DirectVJP:  passVJP(b.DirectVJP),
			InverseVJP: passVJP(b.InverseVJP),
		}
		if b.InitFromData != nil {
			out.InitFromData = func(p Params, x, _ *mat.Dense) *mat.Dense {
				checkImageWidth(who, x, s)
				checkParams(who, p, np)
				return fromPixels(b.InitFromData(p, toPixels(x, s), nil), s)
			}
		}
		return p, out, nil
	}
}
