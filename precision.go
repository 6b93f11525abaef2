package flows

import (
	"fmt"
	"unsafe"

	"github.com/gonormflows/flows/internal/linalg"
)

// Precision is the arithmetic of a conditioner net (MLPConfig.Precision,
// MADEConfig.Precision), the bulk of a flow's work. Float32 computes the
// net's matrix products in float32 and stores its hidden layers, and the
// gradients flowing back through them, in float32 between the products.
// Everything else stays float64 in either: the parameters and their
// gradients as the optimiser holds them (a product's float32 sums are
// added into float64 weight gradients; bias gradients are float64 sums),
// the batch entering the net and the net's output, the activations'
// arithmetic (computed in float64 from the products' float64 results,
// then stored rounded to float32), the elementwise maps, transformers,
// log-determinants and losses, and a MAF's sampling pass (its incremental
// MADE keeps float64 hidden values; its products are float32). The
// conformance suite checks Float64.
type Precision int

const (
	// Float64 computes the products in float64 (the default).
	Float64 Precision = iota
	// Float32 computes the products in float32 on packed float32 panels
	// (16 lanes with AVX-512, 8 with AVX2), summing at most 256 terms in
	// float32 before adding them into the float64 result, with the hidden
	// layers stored in float32 between them (see Precision), so that a
	// product reads them as they are and every pass over them moves half
	// the bytes. Products are accurate to about 256·2⁻²⁴ ≈ 1.5e-5 of the
	// terms' magnitude. The speed against Float64 and PyTorch is measured
	// in BENCHMARKS.md (sections of issue 21). Results are bit-identical
	// on any GOMAXPROCS and any of the kernels, like Float64's.
	Float32
)

// String returns the precision's name, as in model files: "float64" or
// "float32".
func (pr Precision) String() string {
	switch pr {
	case Float64:
		return "float64"
	case Float32:
		return "float32"
	}
	return fmt.Sprintf("Precision(%d)", int(pr))
}

// MarshalText returns the precision's name.
func (pr Precision) MarshalText() ([]byte, error) {
	if !pr.valid() {
		return nil, fmt.Errorf("flows: unknown precision %d", int(pr))
	}
	return []byte(pr.String()), nil
}

// UnmarshalText sets pr to the precision named text ("float64" or
// "float32"; an empty text is Float64, so files written before the
// setting existed read as they were computed).
func (pr *Precision) UnmarshalText(text []byte) error {
	switch string(text) {
	case "float64", "":
		*pr = Float64
	case "float32":
		*pr = Float32
	default:
		return fmt.Errorf("flows: unknown precision %q; want float64 or float32", text)
	}
	return nil
}

// valid reports whether pr is one of the declared precisions.
func (pr Precision) valid() bool { return pr == Float64 || pr == Float32 }

// gemmFunc is the signature of linalg.Gemm and linalg.GemmF32.
type gemmFunc func(ta, tb bool, m, n, k int, alpha float64, a []float64, b []float64, beta float64, c []float64)

// gemm returns the product of the precision: linalg.GemmF32 for Float32,
// else linalg.Gemm; their Serial forms (the calling goroutine alone, the
// same bits) when serial.
func (pr Precision) gemm(serial bool) gemmFunc {
	switch {
	case pr == Float32 && serial:
		return linalg.GemmSerialF32
	case pr == Float32:
		return linalg.GemmF32
	case serial:
		return linalg.GemmSerial
	}
	return linalg.Gemm
}

// acts is a batch of a net's hidden activations (n×w, row-major), or of
// the gradients with respect to them, as the net stores them: float64 in
// Float64 mode, float32 in Float32 mode (is32, f32 set; f64 nil). The
// products read either as they are (linalg.GemmF32Of): float32
// activations save the rounding while packing and half the memory traffic
// of every pass over them. The first layer's input (the batch) and the
// last layer's output stay float64.
type acts struct {
	f64  []float64
	f32  []float32
	is32 bool
}

// f64 wraps float64 values as acts.
func f64(x []float64) acts { return acts{f64: x} }

// words is how many float64 words hold n activations in pr's storage:
// float32 activations are kept in float64 buffers (the scratch pools'),
// two to a word.
func (pr Precision) words(n int) int {
	if pr == Float32 {
		return (n + 1) / 2
	}
	return n
}

// view returns the first n activations of buf (pr.words(n) words at least)
// in pr's storage.
func (pr Precision) view(buf []float64, n int) acts {
	if pr != Float32 {
		return f64(buf[:n])
	}
	buf = buf[:(n+1)/2]
	if n == 0 {
		return acts{f32: []float32{}, is32: true}
	}
	return acts{f32: unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(buf))), n), is32: true}
}

// rows returns rows [r0, r1) of a, w wide.
func (a acts) rows(r0, r1, w int) acts {
	if a.is32 {
		return acts{f32: a.f32[r0*w : r1*w], is32: true}
	}
	if a.f64 == nil {
		return a
	}
	return f64(a.f64[r0*w : r1*w])
}

// mul sets c = alpha·op(a)·op(b) + beta·c with pr's product (serial: on
// the calling goroutine alone, the same bits); float32 operands only in
// Float32 mode.
func (pr Precision) mul(serial, ta, tb bool, m, n, k int, alpha float64, a, b acts, beta float64, c []float64) {
	switch {
	case pr != Float32:
		pr.gemm(serial)(ta, tb, m, n, k, alpha, a.f64, b.f64, beta, c)
	case a.is32 && b.is32:
		mulF32(serial, ta, tb, m, n, k, alpha, a.f32, b.f32, beta, c)
	case a.is32:
		mulF32(serial, ta, tb, m, n, k, alpha, a.f32, b.f64, beta, c)
	case b.is32:
		mulF32(serial, ta, tb, m, n, k, alpha, a.f64, b.f32, beta, c)
	default:
		mulF32(serial, ta, tb, m, n, k, alpha, a.f64, b.f64, beta, c)
	}
}

// mulF32 is linalg.GemmF32Of, or its serial form.
func mulF32[A, B linalg.Float](serial, ta, tb bool, m, n, k int, alpha float64, a []A, b []B, beta float64, c []float64) {
	if serial {
		linalg.GemmSerialF32Of(ta, tb, m, n, k, alpha, a, b, beta, c)
	} else {
		linalg.GemmF32Of(ta, tb, m, n, k, alpha, a, b, beta, c)
	}
}

// applyActs sets post (n×w) to the activation of pre, in chunks of rows on
// all cores, or on the calling goroutine alone when serial.
func (a Activation) applyActs(post acts, pre []float64, n, w int, serial bool) {
	run := func(r0, r1 int) {
		if post.is32 {
			applyAct(a, post.f32[r0*w:r1*w], pre[r0*w:r1*w])
		} else {
			applyAct(a, post.f64[r0*w:r1*w], pre[r0*w:r1*w])
		}
	}
	if serial {
		run(0, n)
		return
	}
	forRows(n, w*a.work(), run)
}

// backActs sets g (n×w) to dh times the activation's derivative (backAct)
// in chunks of rows on all cores; post are the activation's outputs, pre
// its inputs (kept only when needsPre). In Float64 mode g may be dh.
func (a Activation) backActs(g acts, dh []float64, post, pre acts, n, w int) {
	forRows(n, w*a.work(), func(r0, r1 int) {
		pr, d := pre.rows(r0, r1, w), dh[r0*w:r1*w]
		if g.is32 {
			backAct(a, g.f32[r0*w:r1*w], d, post.f32[r0*w:r1*w], pr.f32)
		} else {
			backAct(a, g.f64[r0*w:r1*w], d, post.f64[r0*w:r1*w], pr.f64)
		}
	})
}

// addColSums adds the sums of g's n rows (w wide), in row order, into db.
func addColSums(db []float64, g acts, n, w int) {
	if g.is32 {
		colSums(db, g.f32, n, w)
	} else {
		colSums(db, g.f64, n, w)
	}
}

// colSums adds the sums of g's n rows (w wide), in row order, into db.
func colSums[T linalg.Float](db []float64, g []T, n, w int) {
	db = db[:w]
	for i := 0; i < n; i++ {
		for j, v := range g[i*w : (i+1)*w] {
			db[j] += float64(v)
		}
	}
}

// backHidden pulls g, the gradient with respect to the pre-activation of a
// layer from in to out units with weights w (in×out), through the layer
// and the activation below it: dh = g·wᵀ (n×in, float64), then
// dh ⊙ act'(a) with post and pre the hidden layer's outputs and inputs
// (backActs), in pr's storage. It puts gBuf (g's pooled buffer, or nil),
// read for the last time, and returns the new gradient and its pooled
// buffer.
func backHidden(pr Precision, act Activation, g acts, gBuf *scratch, w []float64, post, pre acts, n, in, out int) (acts, *scratch) {
	return backHiddenW(pr, act, g, gBuf, w, nil, post, pre, n, in, out)
}

// backHiddenW is backHidden with g·wᵀ by pw, w's packs, when it is not nil.
func backHiddenW(pr Precision, act Activation, g acts, gBuf *scratch, w []float64, pw *packedW, post, pre acts, n, in, out int) (acts, *scratch) {
	dhBuf := getScratch(n * in)
	mulWT(pr, pw, n, in, out, g, w, dhBuf.f)
	gBuf.put()
	return backActs(pr, act, dhBuf, post, pre, n, in)
}

// backActs turns dh = dL/dh (n×in, float64, in the pooled dhBuf) into the
// gradient with respect to the layer's pre-activations, stored as pr
// stores activations, and returns it with its pooled buffer (dhBuf itself
// in Float64; a new one in Float32, dhBuf put back).
func backActs(pr Precision, act Activation, dhBuf *scratch, post, pre acts, n, in int) (acts, *scratch) {
	if pr != Float32 {
		next := f64(dhBuf.f[:n*in])
		act.backActs(next, dhBuf.f, post, pre, n, in)
		return next, dhBuf
	}
	gBuf := getScratch(pr.words(n * in))
	next := pr.view(gBuf.f, n*in)
	act.backActs(next, dhBuf.f, post, pre, n, in)
	dhBuf.put()
	return next, gBuf
}

// backInput returns dL/dx = g·wᵀ (n×in, new) for the first layer, from in
// to out units with weights w, and puts gBuf (g's pooled buffer, or nil).
func backInput(pr Precision, g acts, gBuf *scratch, w []float64, n, in, out int) []float64 {
	return backInputW(pr, g, gBuf, w, nil, n, in, out)
}

// backInputW is backInput with g·wᵀ by pw, w's packs, when it is not nil.
func backInputW(pr Precision, g acts, gBuf *scratch, w []float64, pw *packedW, n, in, out int) []float64 {
	dx := make([]float64, n*in)
	mulWT(pr, pw, n, in, out, g, w, dx)
	gBuf.put()
	return dx
}

// hiddenBufs holds the hidden layers of a forward pass without a tape, two
// pooled buffers of n×maxHidden: in Float64 mode they alternate, each
// layer's pre-activations computed into one and activated in place; in
// Float32 mode the first holds the pre-activations (float64) and the
// second the float32 activations, each layer's overwriting the last's
// once its product has read them.
type hiddenBufs struct {
	pr Precision
	b  [2]*scratch
}

// newHiddenBufs returns hidden buffers for layers of up to size
// (n×maxHidden) values in pr's storage.
func newHiddenBufs(pr Precision, size int) hiddenBufs {
	return hiddenBufs{pr: pr, b: [2]*scratch{getScratch(size), getScratch(pr.words(size))}}
}

// layer returns the buffers of hidden layer l, of size values: c for the
// pre-activations and h for the activations (in Float64 mode c itself).
func (hb hiddenBufs) layer(l, size int) (c []float64, h acts) {
	if hb.pr != Float32 {
		c = hb.b[l%2].f[:size]
		return c, f64(c)
	}
	return hb.b[0].f[:size], hb.pr.view(hb.b[1].f, size)
}

// put gives the buffers back to the pool.
func (hb hiddenBufs) put() {
	hb.b[0].put()
	hb.b[1].put()
}
