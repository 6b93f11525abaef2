package flows

import "fmt"

// Squeeze returns RealNVP's and Glow's 2×2 space-to-depth map of images of
// the given shape: each 2×2 block of pixels of each channel becomes one
// pixel of four channels, turning a C×H×W image into a 4C×(H/2)×(W/2) one
// (shape.Squeezed()). In the channel-major layout (see Shape),
//
//	z[4c + 2·dy + dx, y, x] = x[c, 2y + dy, 2x + dx]   (dy, dx ∈ {0, 1})
//
// as Glow's squeeze2d orders the new channels. It is a permutation of the
// row: no parameters, log-det zero; Invert(Squeeze(shape)) is the inverse,
// depth to space. The context is ignored. Init returns an error unless H
// and W are even and dim is shape.Size().
func Squeeze(shape Shape) InitFunc {
	return func(_ Key, dim, contextDim int) (Params, Bijection, error) {
		const who = "Squeeze"
		if err := checkImageDim(who, shape, dim, contextDim); err != nil {
			return nil, Bijection{}, err
		}
		if shape.H%2 != 0 || shape.W%2 != 0 {
			return nil, Bijection{}, fmt.Errorf("flows: %s: image shape %v has an odd height or width", who, shape)
		}
		return Params{}, permutation(who, squeezePerm(shape)), nil
	}
}

// squeezePerm returns perm with Squeeze's z[j] = x[perm[j]].
func squeezePerm(s Shape) []int {
	out := s.Squeezed()
	perm := make([]int, s.Size())
	for c := 0; c < s.C; c++ {
		for dy := 0; dy < 2; dy++ {
			for dx := 0; dx < 2; dx++ {
				oc := 4*c + 2*dy + dx
				for y := 0; y < out.H; y++ {
					for x := 0; x < out.W; x++ {
						j := (oc*out.H+y)*out.W + x
						perm[j] = (c*s.H+2*y+dy)*s.W + 2*x + dx
					}
				}
			}
		}
	}
	return perm
}
