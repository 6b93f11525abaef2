package optim_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/gonormflows/flows/optim"
)

// adamRun takes steps Adam steps on p from a, with gradients drawn from
// rng, at learning rates that change every step (a schedule).
func adamRun(a *optim.Adam, p []float64, rng *rand.Rand, from, steps int) {
	g := make([]float64, len(p))
	for s := from; s < from+steps; s++ {
		for i := range g {
			g[i] = rng.NormFloat64() + p[i]
		}
		a.StepLR(p, g, 1e-2/float64(s+1))
	}
}

// TestAdamStateResume checks that an Adam restored by UnmarshalBinary from
// another's MarshalBinary continues bit for bit as the original does: the
// same parameters after 7 more steps, and the same state. The
// hyperparameters differ from NewAdam's defaults, so that restoring them
// matters, and the parameters number 2¹⁵ + 3, so that the split update runs
// too.
func TestAdamStateResume(t *testing.T) {
	for _, n := range []int{5, 1<<15 + 3} {
		a := optim.NewAdam(n)
		a.LR, a.Beta1, a.Beta2, a.Eps = 0.5, 0.8, 0.99, 1e-6
		p := make([]float64, n)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range p {
			p[i] = rng.NormFloat64()
		}
		adamRun(a, p, rng, 0, 5)
		state, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(state) != 49+16*n || state[0] != 1 || binary.LittleEndian.Uint64(state[1:]) != 5 {
			t.Fatalf("n=%d: state of %d bytes, version %d, step count %d; want %d bytes, version 1, 5 steps",
				n, len(state), state[0], binary.LittleEndian.Uint64(state[1:]), 49+16*n)
		}
		b := optim.NewAdam(n) // the defaults, overwritten by the state
		if err := b.UnmarshalBinary(state); err != nil {
			t.Fatal(err)
		}
		if b.Steps() != 5 || b.LR != 0.5 || b.Beta1 != 0.8 || b.Beta2 != 0.99 || b.Eps != 1e-6 {
			t.Fatalf("n=%d: restored steps %d, LR %v, Beta1 %v, Beta2 %v, Eps %v", n, b.Steps(), b.LR, b.Beta1, b.Beta2, b.Eps)
		}
		state[len(state)-1] ^= 1 // data is not kept: changing it changes nothing
		pb := slices.Clone(p)
		adamRun(a, p, rand.New(rand.NewPCG(7, 8)), 5, 7) // the same gradients for both
		adamRun(b, pb, rand.New(rand.NewPCG(7, 8)), 5, 7)
		for i := range p {
			if math.Float64bits(p[i]) != math.Float64bits(pb[i]) {
				t.Fatalf("n=%d: parameter %d is %v after resuming, %v without stopping", n, i, pb[i], p[i])
			}
		}
		sa, _ := a.MarshalBinary()
		sb, _ := b.MarshalBinary()
		if !slices.Equal(sa, sb) {
			t.Fatalf("n=%d: the states differ after 7 more steps", n)
		}
	}
}

// TestAdamStateErrors checks that UnmarshalBinary refuses damaged or
// mismatched states with an error naming what is wrong, and leaves the
// optimiser as it was.
func TestAdamStateErrors(t *testing.T) {
	const n = 4
	src := optim.NewAdam(n)
	p := []float64{1, -2, 3, -4}
	adamRun(src, p, rand.New(rand.NewPCG(3, 4)), 0, 3)
	good, _ := src.MarshalBinary()
	// set returns good with the float64 at byte offset off replaced by f.
	set := func(off int, f float64) []byte {
		b := slices.Clone(good)
		binary.LittleEndian.PutUint64(b[off:], math.Float64bits(f))
		return b
	}
	m0, v0 := 49, 49+8*n // offsets of the first and the second moments
	cases := []struct {
		name string
		data []byte
		n    int // the receiver's parameter count
		want string
	}{
		{"empty", nil, n, "empty"},
		{"version", append([]byte{2}, good[1:]...), n, "version 2, want 1"},
		{"short header", good[:20], n, "20 bytes, shorter than the 49-byte header"},
		{"count", good, n + 1, "for 4 parameters, the optimiser has 5"},
		{"truncated", good[:len(good)-1], n, "112 bytes, want 113 for 4 parameters"},
		{"trailing", append(slices.Clone(good), 0), n, "114 bytes, want 113"},
		{"beta1", set(1+2*8+8, 1), n, "Beta1 1 and Beta2 0.999 must lie in [0, 1)"},
		{"beta2", set(1+2*8+16, math.NaN()), n, "Beta2 NaN"},
		{"eps", set(1+2*8+24, -1e-8), n, "Eps -1e-08 is negative"},
		{"first moment", set(m0+8*2, math.Inf(1)), n, "first moment 2 is +Inf"},
		{"second moment", set(v0+8*3, -0.5), n, "second moment 3 is -0.5"},
		{"second moment NaN", set(v0, math.NaN()), n, "second moment 0 is NaN"},
	}
	for _, c := range cases {
		a := optim.NewAdam(c.n)
		adamRun(a, make([]float64, c.n), rand.New(rand.NewPCG(5, 6)), 0, 2)
		before, _ := a.MarshalBinary()
		err := a.UnmarshalBinary(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
		if after, _ := a.MarshalBinary(); !slices.Equal(before, after) {
			t.Errorf("%s: the failed UnmarshalBinary changed the optimiser", c.name)
		}
	}
	if err := optim.NewAdam(n).UnmarshalBinary(good); err != nil {
		t.Errorf("the undamaged state: %v", err)
	}
}
