package linalg

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
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
		for _, layout := range []string{"consecutive", "gathered", "mixed", "consecutive masked", "gathered masked"} {
			coff := make([]int, s.n)
			for j := range coff {
				switch layout {
				case "consecutive", "consecutive masked":
					coff[j] = j
				case "gathered", "gathered masked":
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
			var mask *GatherMask
			if strings.HasSuffix(layout, "masked") {
				mask = randMask(rng, s.n, s.k)
			}
			bm := make([]float32, s.k*s.n)
			for p := range s.k {
				for j := range s.n {
					if mask == nil || mask.Bits[int(mask.Class[p])*mask.Words+j/32]>>(j%32)&1 != 0 {
						bm[p*s.n+j] = b32[boff[p]+coff[j]]
					}
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
					gemmGather32(kn, s.m, s.n, s.k, at32, lda, b32, boff, coff, mask, beta, c)
					// With scratch rows (NaN) after c: the last row panel in place.
					cs := append(append([]float64(nil), c0...), make([]float64, (blocks(s.m, 12)*12-s.m)*s.n)...)
					for i := s.m * s.n; i < len(cs); i++ {
						cs[i] = math.NaN()
					}
					gemmGather32(kn, s.m, s.n, s.k, at32, lda, b32, boff, coff, mask, beta, cs)
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

// randMask returns a GatherMask of three masks with random bits over n
// columns (one word to spare) and random classes for k rows.
func randMask(rng *rand.Rand, n, k int) *GatherMask {
	m := &GatherMask{Class: make([]int32, k), Words: blocks(n, 32) + 1}
	for p := range m.Class {
		m.Class[p] = int32(rng.IntN(3))
	}
	m.Bits = make([]uint32, 3*m.Words)
	for i := range m.Bits {
		m.Bits[i] = rng.Uint32()
	}
	return m
}

// TestPackGatherMaskDropsNaN: a masked entry is zero even where b holds a
// NaN (the packing ANDs, it does not multiply), and a kept one is b's, in
// the assembly copy (32 and 16 consecutive columns) and the element loop.
func TestPackGatherMaskDropsNaN(t *testing.T) {
	for _, w := range []int{32, 16, 4} {
		for _, cols := range []int{w, w - 1} {
			b := make([]float32, 3*w)
			for i := range b {
				b[i] = float32(math.NaN())
				if i%2 == 0 {
					b[i] = float32(i)
				}
			}
			boff, coff := []int{0, w, 2 * w}, seqInts(cols)
			class := []int32{1, 0, 1}
			vec := make([]uint32, 2*w) // mask 0 keeps everything, mask 1 the even columns
			for j := range cols {
				vec[j] = ^uint32(0)
				if j%2 == 0 {
					vec[w+j] = ^uint32(0)
				}
			}
			dst := make([]float32, 3*w)
			for i := range dst {
				dst[i] = -1
			}
			packGatherMask(dst, w, b, boff, coff, class, vec)
			for p, o := range boff {
				for j := range w {
					want := uint32(0)
					if j < cols && vec[int(class[p])*w+j] != 0 {
						want = math.Float32bits(b[o+j])
					}
					if got := math.Float32bits(dst[p*w+j]); got != want {
						t.Fatalf("w=%d cols=%d: panel[%d][%d] has bits %#x, want %#x", w, cols, p, j, got, want)
					}
				}
			}
		}
	}
}

func seqInts(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestGemmGatherF32Panics: short slices, negative sizes, offsets outside
// b and masks too short or with a class out of range panic with a message
// naming the function.
func TestGemmGatherF32Panics(t *testing.T) {
	ok := func(m, n, k, lda, nb int) func() {
		return func() {
			GemmGatherF32(m, n, k, make([]float32, 8), lda, make([]float32, nb), make([]int, max(k, 0)), make([]int, max(n, 0)), 0, make([]float64, 8))
		}
	}
	masked := func(class int32, words int) func() {
		return func() {
			mask := &GatherMask{Class: []int32{0, class}, Bits: make([]uint32, 2*words), Words: words}
			GemmGatherMaskF32(2, 2, 2, make([]float32, 8), 2, make([]float32, 8), make([]int, 2), make([]int, 2), mask, 0, make([]float64, 8))
		}
	}
	for i, f := range []func(){ok(-1, 2, 2, 2, 8), ok(2, 2, 5, 2, 8), ok(3, 2, 2, 2, 8), ok(2, 5, 1, 2, 8), ok(2, 2, 1, 2, 0),
		masked(2, 1), masked(-1, 1), masked(0, 0)} {
		func() {
			defer func() {
				if r := recover(); r == nil || !containsName(fmt.Sprint(r)) {
					t.Errorf("case %d: panic %v, want one naming GemmGatherF32 or GemmGatherMaskF32", i, r)
				}
			}()
			f()
		}()
	}
}

func containsName(s string) bool {
	const name = "linalg: GemmGather"
	for i := 0; i+len(name) <= len(s); i++ {
		if s[i:i+len(name)] == name {
			return true
		}
	}
	return false
}
