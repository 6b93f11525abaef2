package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestGemmGatherF32 checks GemmGatherF32 bit for bit against
// GemmSerialF32Of on the gathered matrix B (and at transposed), on the
// default kernel and each float32 kernel, with rows of B that are shifted
// and overlapping views of b, and columns consecutive (a panel's copy),
// gathered (the element loop) and a mix of the two, over shapes with edge
// tiles and several k-blocks, with and without scratch rows after c; beta
// 0 must not read c.
func TestGemmGatherF32(t *testing.T) {
	rng := rand.New(rand.NewPCG(44, 15))
	for _, s := range append([]shape{{32, 96, 520}, {4, 300, 288}, {36, 64, 7}, {32, 36, 600}}, testShapes...) {
		if s.m == 0 || s.n == 0 || s.k == 0 {
			continue
		}
		for _, layout := range []string{"consecutive", "gathered", "mixed"} {
			coff := make([]int, s.n)
			for j := range coff {
				switch layout {
				case "consecutive":
					coff[j] = j
				case "gathered":
					coff[j] = (j%3)*s.n + j/3
				default:
					coff[j] = j + 5*(j/40)
				}
			}
			span := 0
			for _, v := range coff {
				span = max(span, v+1)
			}
			boff := make([]int, s.k)
			for p := range boff {
				boff[p] = rng.IntN(2*s.n + 1) // rows may overlap
			}
			lda := s.m + 3
			at32, _ := round32(randSlice(rng, (s.k-1)*lda+s.m))
			b32, _ := round32(randSlice(rng, 2*s.n+span))
			a := make([]float32, s.m*s.k) // op(a) = the m × k matrix
			for i := range s.m {
				for p := range s.k {
					a[i*s.k+p] = at32[p*lda+i]
				}
			}
			bm := make([]float32, s.k*s.n)
			for p := range s.k {
				for j := range s.n {
					bm[p*s.n+j] = b32[boff[p]+coff[j]]
				}
			}
			c0 := randSlice(rng, s.m*s.n)
			for _, beta := range []float64{0, 1, 0.5} {
				want := append([]float64(nil), c0...)
				GemmSerialF32Of(false, false, s.m, s.n, s.k, 1, a, bm, beta, want)
				for _, kn := range append([]*kernelInfo{nil}, kernels32()...) {
					name := "default"
					if kn != nil {
						name = kn.name
					}
					c := append([]float64(nil), c0...)
					if beta == 0 {
						for i := range c {
							c[i] = math.NaN()
						}
					}
					gemmGather32(kn, s.m, s.n, s.k, at32, lda, b32, boff, coff, beta, c)
					// With scratch rows (NaN) after c: the last row panel in place.
					cs := append(append([]float64(nil), c0...), make([]float64, (blocks(s.m, 12)*12-s.m)*s.n)...)
					for i := s.m * s.n; i < len(cs); i++ {
						cs[i] = math.NaN()
					}
					gemmGather32(kn, s.m, s.n, s.k, at32, lda, b32, boff, coff, beta, cs)
					for i := range c {
						if math.Float64bits(c[i]) != math.Float64bits(want[i]) || math.Float64bits(cs[i]) != math.Float64bits(want[i]) {
							t.Fatalf("%v %s beta %v kernel %s: c[%d] = %v (%v with scratch rows), GemmSerialF32Of gives %v", s, layout, beta, name, i, c[i], cs[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestGemmGatherF32Panics: short slices, negative sizes and offsets
// outside b panic with a message naming the function.
func TestGemmGatherF32Panics(t *testing.T) {
	ok := func(m, n, k, lda, nb int) func() {
		return func() {
			GemmGatherF32(m, n, k, make([]float32, 8), lda, make([]float32, nb), make([]int, max(k, 0)), make([]int, max(n, 0)), 0, make([]float64, 8))
		}
	}
	for i, f := range []func(){ok(-1, 2, 2, 2, 8), ok(2, 2, 5, 2, 8), ok(3, 2, 2, 2, 8), ok(2, 5, 1, 2, 8), ok(2, 2, 1, 2, 0)} {
		func() {
			defer func() {
				if r := recover(); r == nil || !containsName(fmt.Sprint(r)) {
					t.Errorf("case %d: panic %v, want one naming GemmGatherF32", i, r)
				}
			}()
			f()
		}()
	}
}

func containsName(s string) bool {
	const name = "GemmGatherF32"
	for i := 0; i+len(name) <= len(s); i++ {
		if s[i:i+len(name)] == name {
			return true
		}
	}
	return false
}
