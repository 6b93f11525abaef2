package flows

// Prepared evaluation: a bijection or a distribution at fixed parameters.
//
// Scoring, latents and sampling run the same parameters many times (a
// loaded model, a server, a Beam job), and some layers do work on every
// call that depends on the parameters alone: a MADE masks its weights and
// rearranges them into the blocks of its incremental evaluation. Prepare
// does that once. A prepared value takes a snapshot of the parameters (a
// copy, and whatever is derived from it), so it never sees later changes
// to p; its functions hold no mutable state, take no locks, and are safe
// for concurrent use. Training keeps the unprepared functions, which read
// p on every call.
//
// Bit for bit: a prepared function returns exactly what the unprepared one
// returns at the snapshot's parameters (TestPreparedMatches checks every
// case of the conformance registry). That holds because the prepared
// layers run the same code on the same numbers, only cut into row blocks,
// and every per-row result of this package is independent of the other
// rows of its batch (linalg.Gemm promises it for products). That includes
// nets in Float32 (Precision): their weights are rounded to float32 and
// packed once (linalg.Packed32, prep32.go), their hidden layers stay
// float32, and each product's float32 sums enter the float64 results as
// the unprepared pass's do (TestPreparedFloat32, TestPreparedNets).
//
// Row blocks. A prepared layer may also provide row maps (preparedRows):
// functions that map a block of rows, given as flat slices, into a buffer
// of the caller's. A prepared Serial whose layers all have them runs the
// whole stack over one block of prepRows rows before the next, on pooled
// buffers, so a block's values stay in cache from the first layer to the
// last and nothing is allocated but the result; the blocks run on all
// cores (linalg.Parallel), and their size depends on nothing but the
// constant, so the result is the same on any GOMAXPROCS. A call of at most
// one block (one row, sixteen rows) runs on the caller, with no dispatch.
// A prepared Flow whose prior has density rows (Normal) runs the prior on
// each block as well (flowLogPDF), and a chain writes a MAF layer's output
// through the permutation after it instead of copying (directMaps).

import (
	"slices"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// prepRows is the number of rows in a row block of a prepared pass: two
// hidden layers of 120 rows × 512 units (0.94 MiB) stay in a core's L2, a
// MADE's weights are read once per 120 rows, and the block is whole tiles
// of every kernel (12 rows with AVX-512, 6 with AVX2, 4 in Go), where 128
// rows ran as 132 on the AVX-512 kernel.
const prepRows = 120

// PreparedBijection is a Bijection at fixed parameters, made by
// PrepareBijection: Direct and Inverse are the bijection's at the
// parameters it was prepared with, bit for bit. They are safe for
// concurrent use and never see later changes to those parameters: prepare
// again after changing them. A function is nil where the bijection's is.
type PreparedBijection struct {
	// Direct maps data x (n×dim) to latent z, given the context c (nil
	// or n×contextDim), with the per-row log-determinant.
	Direct func(x, c *mat.Dense) (z *mat.Dense, logDet []float64)
	// Inverse undoes Direct at the same c.
	Inverse func(z, c *mat.Dense) (x *mat.Dense, logDet []float64)

	rows *preparedRows // row maps for fused row-block passes; nil when the layer has none
}

// rowMap maps n rows of src (n×dim, row-major) into dst (n×dim, never
// src) given ctx (n×cdim, or nil without a context), setting ld[r] to row
// r's log-determinant. A row's result depends on that row alone. With
// serial it runs on the calling goroutine only (the caller runs blocks in
// parallel).
type rowMap func(dst, src, ctx []float64, n int, ld []float64, serial bool)

// preparedRows is a prepared layer's row maps, both directions; cdim < 0
// marks maps that ignore the context (of any width) as Reverse does.
//
// Two optional parts let a chain (directMaps) skip a permutation's copy:
// perm, set by a permutation, says that direct is the gather
// dst[j] = src[perm[j]] with log-det 0; directTo, set by a layer that can
// write its output columns anywhere, returns its direct map writing
// column i of each output row at pos[i] instead.
type preparedRows struct {
	dim, cdim       int
	direct, inverse rowMap
	perm            []int
	directTo        func(pos []int) rowMap
}

// PreparedDistribution is a Distribution at fixed parameters, made by
// PrepareDistribution: its functions are the distribution's at the
// parameters it was prepared with, bit for bit, safe for concurrent use,
// and never see later changes to those parameters: prepare again after
// changing them. Latent is nil where the distribution's is.
type PreparedDistribution struct {
	// LogPDF returns log p(x_i | c_i) for each row of x (n×dim).
	LogPDF func(x, c *mat.Dense) []float64
	// Sample draws n rows, row i given c_i (c nil or n×contextDim); the
	// same key gives the same rows as the distribution's Sample.
	Sample func(key Key, n int, c *mat.Dense) *mat.Dense
	// Latent maps each row of x to the latent space (see
	// Distribution.Latent).
	Latent func(x, c *mat.Dense) *mat.Dense

	logRows densityRows // the log density over flat rows; nil when the distribution has none
}

// densityRows sets lp[i], i < n, to the log density of row i of x (n×dim,
// row-major), the bits of the distribution's LogPDF; the distribution
// ignores any context. A prepared Flow runs it on each row block after its
// bijection's row maps (flowLogPDF).
type densityRows func(lp, x []float64, n int)

// PrepareBijection returns b at the parameters p, with whatever depends on
// p alone computed once (see PreparedBijection). It uses b.Prepare when b
// has one; otherwise its functions close over a copy of p. Either way it
// reads p only during the call: later changes to p are never seen.
func PrepareBijection(b Bijection, p Params) PreparedBijection {
	if b.Prepare != nil {
		return b.Prepare(p)
	}
	q := slices.Clone(p)
	var pb PreparedBijection
	if b.Direct != nil {
		pb.Direct = func(x, c *mat.Dense) (*mat.Dense, []float64) { return b.Direct(q, x, c) }
	}
	if b.Inverse != nil {
		pb.Inverse = func(z, c *mat.Dense) (*mat.Dense, []float64) { return b.Inverse(q, z, c) }
	}
	return pb
}

// PrepareDistribution returns d at the parameters p, with whatever depends
// on p alone computed once (see PreparedDistribution): the one call a
// loaded model makes before scoring or sampling. It uses d.Prepare when d
// has one (Flow does); otherwise its functions close over a copy of p.
// Either way later changes to p are never seen.
func PrepareDistribution(d Distribution, p Params) PreparedDistribution {
	if d.Prepare != nil {
		return d.Prepare(p)
	}
	q := slices.Clone(p)
	var pd PreparedDistribution
	if d.LogPDF != nil {
		pd.LogPDF = func(x, c *mat.Dense) []float64 { return d.LogPDF(q, x, c) }
	}
	if d.Sample != nil {
		pd.Sample = func(key Key, n int, c *mat.Dense) *mat.Dense { return d.Sample(key, q, n, c) }
	}
	if d.Latent != nil {
		pd.Latent = func(x, c *mat.Dense) *mat.Dense { return d.Latent(q, x, c) }
	}
	return pd
}

// withRows returns the PreparedBijection whose Direct and Inverse run the
// row maps r over row blocks (see runRows); who names it in panics.
func withRows(who string, r *preparedRows) PreparedBijection {
	return PreparedBijection{
		Direct: func(x, c *mat.Dense) (*mat.Dense, []float64) {
			return runRows(who, r.direct, r.dim, r.cdim, x, c)
		},
		Inverse: func(z, c *mat.Dense) (*mat.Dense, []float64) {
			return runRows(who, r.inverse, r.dim, r.cdim, z, c)
		},
		rows: r,
	}
}

// runRows applies the row map f to the rows of x, block by block
// (prepRows rows a block, the blocks on all cores), and returns the result
// and the log-determinant; who names the caller in panics.
func runRows(who string, f rowMap, dim, cdim int, x, c *mat.Dense) (*mat.Dense, []float64) {
	n, _ := x.Dims()
	ld := make([]float64, n)
	return runRowsInto(who, f, dim, cdim, x, c, ld), ld
}

// runRowsInto is runRows with the log-determinant's slice given: f gets
// each block's part of ld (n entries), to set or, as chainAdd does, to add
// into.
func runRowsInto(who string, f rowMap, dim, cdim int, x, c *mat.Dense, ld []float64) *mat.Dense {
	checkWidth(who, x, dim)
	xs, n, _ := rawRows(x)
	if cdim >= 0 { // a negative width: maps that ignore the context
		checkContext(who, c, n, cdim)
	}
	var cs []float64
	if cdim > 0 {
		cs, _, _ = rawRows(c)
	}
	out := make([]float64, n*dim)
	tasks := (n + prepRows - 1) / prepRows
	if tasks <= 1 { // on the caller, without the closure (an allocation)
		f(out, xs[:n*dim], cs, n, ld, false)
		return mat.NewDense(n, dim, out)
	}
	linalg.Parallel(tasks, func(t int) {
		r0, r1 := t*prepRows, min((t+1)*prepRows, n)
		var ctx []float64
		if cs != nil {
			ctx = cs[r0*cdim : r1*cdim]
		}
		f(out[r0*dim:r1*dim], xs[r0*dim:r1*dim], ctx, r1-r0, ld[r0:r1], true)
	})
	return mat.NewDense(n, dim, out)
}

// directMaps returns the direct row maps of the layers rs, in order, with
// each layer that has directTo merged with a permutation after it into one
// map that writes its output permuted: the same rows, and the same
// log-dets, since a chain's running total starts at +0 and so is never −0,
// and adding the permutation's +0 to it changes no bit.
func directMaps(rs []*preparedRows) []rowMap {
	var fs []rowMap
	for k := 0; k < len(rs); k++ {
		if k+1 < len(rs) && rs[k].directTo != nil && rs[k+1].perm != nil {
			// Column i goes to where the gather takes it from: pos[perm[j]] = j.
			pos := make([]int, len(rs[k+1].perm))
			for j, i := range rs[k+1].perm {
				pos[i] = j
			}
			fs = append(fs, rs[k].directTo(pos))
			k++
			continue
		}
		fs = append(fs, rs[k].direct)
	}
	return fs
}

// chainRows returns the row map that applies maps in order, through
// pooled buffers, with the log-dets added from zero in order, as Serial
// adds its layers'; every map gets the same context rows.
func chainRows(maps []rowMap, dim int) rowMap {
	add := chainAdd(maps, dim)
	return func(dst, src, ctx []float64, n int, ld []float64, serial bool) {
		clear(ld[:n])
		add(dst, src, ctx, n, ld, serial)
	}
}

// chainAdd is chainRows adding the log-dets into ld as it finds it (a
// Serial stack's running total) rather than from zero.
func chainAdd(maps []rowMap, dim int) rowMap {
	return func(dst, src, ctx []float64, n int, ld []float64, serial bool) {
		if len(maps) == 0 {
			copy(dst[:n*dim], src[:n*dim])
			return
		}
		buf := getScratch(2*n*dim + n)
		defer buf.put()
		bufs := [2][]float64{buf.f[:n*dim], buf.f[n*dim : 2*n*dim]}
		l := buf.f[2*n*dim:]
		for k, f := range maps {
			out := bufs[k%2]
			if k == len(maps)-1 {
				out = dst
			}
			f(out, src, ctx, n, l, serial)
			addTo(ld[:n], l)
			src = out
		}
	}
}

// flowLogPDF is the LogPDF of a prepared Flow whose bijection has the row
// maps r and whose prior the density rows prior: each row block goes
// through the maps and the prior on pooled buffers, so nothing is
// allocated but the result, and the log-det is added to the prior's log
// density and the overflow rule applied as Flow's LogPDF does: its bits.
func flowLogPDF(r *preparedRows, prior densityRows) func(x, c *mat.Dense) []float64 {
	dim := r.dim
	block := func(xs, ctx []float64, n int, lp []float64, serial bool) {
		buf := getScratch(n*dim + n)
		z, ld := buf.f[:n*dim], buf.f[n*dim:]
		r.direct(z, xs, ctx, n, ld, serial)
		prior(lp, z, n)
		addTo(lp[:n], ld)
		buf.put()
	}
	return func(x, c *mat.Dense) []float64 {
		checkWidth("Flow", x, dim)
		xs, n, _ := rawRows(x)
		if r.cdim >= 0 {
			checkContext("Flow", c, n, r.cdim)
		}
		var cs []float64
		if r.cdim > 0 {
			cs, _, _ = rawRows(c)
		}
		lp := make([]float64, n)
		if n <= prepRows { // on the caller, without the closure (an allocation)
			block(xs, cs, n, lp, false)
		} else {
			linalg.Parallel((n+prepRows-1)/prepRows, func(t int) {
				r0, r1 := t*prepRows, min((t+1)*prepRows, n)
				var ctx []float64
				if cs != nil {
					ctx = cs[r0*r.cdim : r1*r.cdim]
				}
				block(xs[r0*dim:r1*dim], ctx, r1-r0, lp[r0:r1], true)
			})
		}
		overflowToZero(lp, x, c)
		return lp
	}
}
