package linalg

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// randExtents draws extents for n columns and k steps: each group's k range
// and rows at random, some empty, some whole.
func randExtents(rng *rand.Rand, m, n, k int) *Extents {
	g := blocks(n, ExtentCols)
	e := &Extents{KLo: make([]int, g), KHi: make([]int, g), Rows: make([]int, g)}
	for i := range g {
		lo, hi := rng.IntN(k+1), rng.IntN(k+1)
		switch rng.IntN(4) {
		case 0:
			lo, hi = 0, k
		case 1:
			lo = 0
		}
		if rng.IntN(4) == 0 {
			hi = k + 1 + rng.IntN(3) // beyond k: all of it
		}
		e.KLo[i], e.KHi[i] = lo, hi
		e.Rows[i] = m + rng.IntN(2)
		if rng.IntN(3) == 0 {
			e.Rows[i] = rng.IntN(m + 1)
		}
	}
	return e
}

// zeroOutside zeroes op(b) (k×n) outside each group's k range.
func zeroOutside(e *Extents, tb bool, n, k int, b []float64) {
	for j := range n {
		g := j / ExtentCols
		for p := range k {
			if p >= e.KLo[g] && p < e.KHi[g] {
				continue
			}
			if tb {
				b[j*k+p] = 0
			} else {
				b[p*n+j] = 0
			}
		}
	}
}

// sameButZeroSign reports whether x and y have the same bits, or are both
// zeros (of either sign).
func sameButZeroSign(x, y float64) bool {
	return math.Float64bits(x) == math.Float64bits(y) || (x == 0 && y == 0)
}

// TestGemmExtMatchesGemm: on b zero outside the extents, GemmExt and
// GemmExtF32Of give Gemm's and GemmF32's bits (up to the sign of an exact
// zero) on the rows they compute, on every kernel, serial or not, and leave
// the other rows alone.
func TestGemmExtMatchesGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, kn := range kernels() {
		for trial := range 60 {
			m, n, k := 1+rng.IntN(130), 1+rng.IntN(140), 1+rng.IntN(300)
			if trial%10 == 0 {
				k = 257 + rng.IntN(400) // several k-blocks
			}
			ta, tb := rng.IntN(2) == 0, rng.IntN(2) == 0
			beta := float64(rng.IntN(2))
			e := randExtents(rng, m, n, k)
			a, b := randSlice(rng, m*k), randSlice(rng, k*n)
			zeroOutside(e, tb, n, k, b)
			c0 := randSlice(rng, m*n)
			for f32 := range 2 {
				if f32 == 1 && kn.mr32 == 0 {
					continue
				}
				want := slices.Clone(c0)
				if f32 == 1 {
					gemm32(kn, ta, tb, m, n, k, 1, a, b, beta, want, 1)
				} else {
					gemm(kn, ta, tb, m, n, k, 1, a, b, beta, want, 1)
				}
				for _, serial := range []bool{true, false} {
					got := slices.Clone(c0)
					if f32 == 1 {
						gemmExt32(kn, serial, ta, tb, m, n, k, a, b, beta, got, e)
					} else {
						gemmExt64(kn, serial, ta, tb, m, n, k, a, b, beta, got, e)
					}
					for i := range m {
						for j := range n {
							w := want[i*n+j]
							if i >= e.Rows[j/ExtentCols] {
								w = c0[i*n+j]
							}
							if g := got[i*n+j]; !sameButZeroSign(g, w) {
								t.Fatalf("%s f32=%d serial=%v ta=%v tb=%v beta=%v m=%d n=%d k=%d %+v: c[%d,%d] = %v, want %v",
									kn.name, f32, serial, ta, tb, beta, m, n, k, *e, i, j, g, w)
							}
						}
					}
				}
			}
		}
	}
}

// TestGemmExtPanics: extents that do not fit the product panic.
func TestGemmExtPanics(t *testing.T) {
	c := make([]float64, 4*40)
	a, b := make([]float64, 4*8), make([]float64, 8*40)
	for _, e := range []*Extents{
		{KLo: []int{0}, KHi: []int{8}, Rows: []int{4}},
		{KLo: []int{0, 0}, KHi: []int{-1, 8}, Rows: []int{4, 4}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: no panic", *e)
				}
			}()
			GemmExt(true, false, false, 4, 40, 8, a, b, 0, c, e)
		}()
	}
}

// TestGemmExtSameOnEveryKernel: GemmExt and GemmExtF32Of give the same
// bits, zeros' signs included, on every kernel, serial or not, with c
// holding −0 where groups are skipped.
func TestGemmExtSameOnEveryKernel(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	for trial := range 40 {
		m, n, k := 1+rng.IntN(100), 1+rng.IntN(140), 1+rng.IntN(600)
		ta, tb := rng.IntN(2) == 0, rng.IntN(2) == 0
		e := randExtents(rng, m, n, k)
		a, b := randSlice(rng, m*k), randSlice(rng, k*n)
		zeroOutside(e, tb, n, k, b)
		c0 := randSlice(rng, m*n)
		for i := range c0 {
			if i%3 == 0 {
				c0[i] = math.Copysign(0, -1)
			}
		}
		for f32 := range 2 {
			var first []float64
			for _, kn := range kernels() {
				if f32 == 1 && kn.mr32 == 0 {
					continue
				}
				for _, serial := range []bool{true, false} {
					got := slices.Clone(c0)
					if f32 == 1 {
						gemmExt32(kn, serial, ta, tb, m, n, k, a, b, 1, got, e)
					} else {
						gemmExt64(kn, serial, ta, tb, m, n, k, a, b, 1, got, e)
					}
					if first == nil {
						first = got
					} else if i := firstDiff(got, first); i >= 0 {
						t.Fatalf("trial %d f32=%d %s serial=%v: c[%d] = %v, first kernel %v", trial, f32, kn.name, serial, i, got[i], first[i])
					}
				}
			}
		}
	}
}

// TestMulExtMatchesMulAdd: on B zero outside the extents, MulExt and
// MulExt32 give MulAdd's and MulAdd32's bits (up to the sign of an exact
// zero) on the rows they compute, on every kernel that packs float32
// panels, and leave the other rows alone.
func TestMulExtMatchesMulAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(35, 36))
	for trial := range 60 {
		m, n, k := 1+rng.IntN(60), 1+rng.IntN(140), 1+rng.IntN(300)
		if trial%10 == 0 {
			k = 257 + rng.IntN(300)
		}
		e := randExtents(rng, m, n, k)
		a, b := randSlice(rng, m*k), randSlice(rng, k*n)
		zeroOutside(e, false, n, k, b)
		c0 := randSlice(rng, m*n)
		check := func(what string, got, want []float64) {
			t.Helper()
			for i := range m {
				for j := range n {
					w := want[i*n+j]
					if i >= e.Rows[j/ExtentCols] {
						w = c0[i*n+j]
					}
					if g := got[i*n+j]; !sameButZeroSign(g, w) {
						t.Fatalf("%s m=%d n=%d k=%d %+v: c[%d,%d] = %v, want %v", what, m, n, k, *e, i, j, g, w)
					}
				}
			}
		}
		pb := PackB(k, n, b)
		want, got := slices.Clone(c0), slices.Clone(c0)
		pb.MulAdd(m, a, want)
		MulExt(pb, m, a, 1, got, e)
		check("MulExt", got, want)
		want, got = slices.Clone(c0), slices.Clone(c0)
		pb.Mul(m, a, want)
		MulExt(pb, m, a, 0, got, e)
		check("MulExt, beta 0", got, want)
		for _, kn := range kernels32() {
			pb32 := packB32(kn, k, n, b)
			want, got := slices.Clone(c0), slices.Clone(c0)
			MulAdd32(pb32, m, a, want)
			MulExt32(pb32, m, a, 1, got, e)
			check("MulExt32/"+kn.name, got, want)
			gemm32(kn, false, false, m, n, k, 1, a, b, 0, want, 1)
			got = slices.Clone(c0)
			MulExt32(pb32, m, a, 0, got, e)
			check("MulExt32, beta 0/"+kn.name, got, want)
		}
	}
}

// TestMulExtNoAllocs: MulExt and MulExt32 allocate nothing.
func TestMulExtNoAllocs(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("the race detector's sync.Pool drops buffers")
	}
	rng := rand.New(rand.NewPCG(37, 38))
	const m, n, k = 16, 128, 128
	e := randExtents(rng, m, n, k)
	b := randSlice(rng, k*n)
	zeroOutside(e, false, n, k, b)
	pb, pb32 := PackB(k, n, b), PackB32(k, n, b)
	a, c := randSlice(rng, m*k), make([]float64, m*n)
	MulExt(pb, m, a, 1, c, e) // warm the pools
	MulExt32(pb32, m, a, 1, c, e)
	if allocs := testing.AllocsPerRun(20, func() { MulExt(pb, m, a, 1, c, e) }); allocs != 0 {
		t.Errorf("MulExt: %v allocations a call", allocs)
	}
	if allocs := testing.AllocsPerRun(20, func() { MulExt32(pb32, m, a, 1, c, e) }); allocs != 0 {
		t.Errorf("MulExt32: %v allocations a call", allocs)
	}
}
