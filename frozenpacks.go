package flows

// A net's weights packed once per training step (issue 21).
//
// optim.NLL freezes the parameters for a step (internal/frozen) and splits
// a batch of more than 128 rows into chunks, each a LogPDFVJP call of its
// own. Every product of every chunk used to pack its weight matrix afresh:
// W for the forward product x·W and Wᵀ for the pullback's g·Wᵀ, in float32
// mode rounding each weight as it packs it. A net whose parameters lie in
// a frozen vector instead packs each layer's W and Wᵀ once for the step
// (frozen.Cache, built by the first chunk to need them, reused by the
// others, concurrently, without locks) and multiplies by the packs
// (linalg.MulRows, MulRows32), whose bits are the unpacked products'
// (Gemm, GemmF32Of): packing is layout only, so freezing changes speed,
// never results. A released step's packs are refilled in place by the next
// step, so a training loop allocates them once.
//
// The MLP uses it (mlp.go). A MADE would use it the same way: a
// frozen.Cache[[]packedW] field in madeNet; layerPacks with w(l) returning
// layer l's masked weights (into a buffer of the build's own, or p's
// weights in place when the masked ones are +0, as madeNet's dense pass
// already decides), and the context weights as further entries (forward
// only); then packedW.mul (serial as its products are) where madeNet now
// calls pr.mul on W or wc, and backInputW and backHiddenW with the layer's
// packs for g·Wᵀ.

import (
	"github.com/gonormflows/flows/internal/frozen"
	"github.com/gonormflows/flows/internal/linalg"
)

// packedW is one layer's weights W (in×out) packed for a frozen step: for
// x·W (w32 or w64) and for g·Wᵀ (t32 or t64), float32 panels in Float32
// mode, float64 ones in Float64 mode.
type packedW struct {
	w32, t32 *linalg.Packed32
	w64, t64 *linalg.Packed
}

// packLayer packs w (in×out, row-major) and its transpose into old's
// storage (old may be the zero packedW) in pr's panels.
func packLayer(pr Precision, old packedW, in, out int, w []float64) packedW {
	if pr == Float32 {
		return packedW{w32: linalg.PackB32Into(old.w32, in, out, w), t32: linalg.PackBT32Into(old.t32, out, in, w)}
	}
	return packedW{w64: linalg.PackBInto(old.w64, in, out, w), t64: linalg.PackBTInto(old.t64, out, in, w)}
}

// mul sets c = a·W + beta·c (n×out, a n×in) or, when trans, c = a·Wᵀ +
// beta·c (n×in, a n×out), beta 0 or 1, with the bits of pr.mul on W: in
// row tasks on all cores, or on the calling goroutine alone when serial.
func (pw *packedW) mul(serial, trans bool, n int, a acts, beta float64, c []float64) {
	if pw.w32 != nil {
		pb := pw.w32
		if trans {
			pb = pw.t32
		}
		if a.is32 {
			mulRows32(serial, pb, n, a.f32, beta, c)
		} else {
			mulRows32(serial, pb, n, a.f64, beta, c)
		}
		return
	}
	pb := pw.w64
	if trans {
		pb = pw.t64
	}
	if serial {
		linalg.MulRowsSerial(pb, n, a.f64, beta, c)
	} else {
		linalg.MulRows(pb, n, a.f64, beta, c)
	}
}

// mulRows32 is linalg.MulRows32, or its serial form.
func mulRows32[A linalg.Float](serial bool, pb *linalg.Packed32, n int, a []A, beta float64, c []float64) {
	if serial {
		linalg.MulRowsSerial32(pb, n, a, beta, c)
	} else {
		linalg.MulRows32(pb, n, a, beta, c)
	}
}

// layerPacks returns the packs of each of the layers of a net whose
// weights at p are w(l) (in×out, row-major; read only while packing), when
// p lies in a frozen vector and the packs give the unpacked products' bits
// (not so for Float64 in the openblas build, whose Gemm is OpenBLAS's),
// else nil.
func layerPacks(c *frozen.Cache[[]packedW], pr Precision, p Params, layers int, w func(l int) (in, out int, w []float64)) []packedW {
	if pr == Float64 && linalg.Backend() == "openblas" {
		return nil
	}
	packs, _ := c.Get(p, func(old []packedW) []packedW {
		if len(old) != layers {
			old = make([]packedW, layers)
		}
		for l := range old {
			in, out, wl := w(l)
			old[l] = packLayer(pr, old[l], in, out, wl)
		}
		return old
	})
	return packs
}

// layer returns layer l's packs, or nil without packs.
func layerOf(packs []packedW, l int) *packedW {
	if packs == nil {
		return nil
	}
	return &packs[l]
}

// mulWT sets c (n×in) = g·wᵀ, with g n×out and w in×out, by pw when it is
// not nil (w's packs), else by pr's product.
func mulWT(pr Precision, pw *packedW, n, in, out int, g acts, w []float64, c []float64) {
	if pw != nil {
		pw.mul(false, true, n, g, 0, c)
		return
	}
	pr.mul(false, false, true, n, in, out, 1, g, f64(w), 0, c)
}

// packs returns the MLP's layer packs at p when p is frozen, else nil.
func (m *mlp) packs(p Params) []packedW {
	return layerPacks(&m.frozen, m.prec, p, len(m.layers), func(l int) (int, int, []float64) {
		li := m.layers[l]
		return li.in, li.out, p[li.w:li.b]
	})
}
