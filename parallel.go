package flows

// Elementwise work over row chunks, on all cores.
//
// Work that is independent per element or per row (activations and their
// derivatives, transformers with their per-row log-det sums) runs over
// chunks of rows on the goroutines of the matrix kernel's helper pool
// (linalg.Parallel). The chunks depend only on the shape (the rows and the
// work per row), never on the number of workers, and every element and
// every row's sum is computed the same way in any chunk, on any goroutine:
// so results are bit-identical on any GOMAXPROCS. Sums across rows (a
// bias's gradient) stay on one goroutine, in row order.

import "github.com/gonormflows/flows/internal/linalg"

// chunkWork is about how much work one chunk holds, in units of a cheap
// elementwise operation (a ReLU): enough to outweigh handing the chunk to
// another goroutine.
const chunkWork = 1 << 14

// transformerWork is the work of one transformer evaluation (forward,
// inverse or a pullback), in the units of chunkWork.
const transformerWork = 32

// forRows calls fn(r0, r1) for consecutive chunks [r0, r1) of the rows
// [0, n), rowWork being the work of one row; the chunks' size depends on
// rowWork alone. Batches of one chunk run on the caller in one call. fn
// must write only its own rows' part of any result.
func forRows(n, rowWork int, fn func(r0, r1 int)) {
	rows := max(1, chunkWork/max(rowWork, 1))
	tasks := (n + rows - 1) / rows
	if tasks <= 1 {
		fn(0, n)
		return
	}
	linalg.Parallel(tasks, func(t int) {
		r0 := t * rows
		fn(r0, min(r0+rows, n))
	})
}

// work returns the work of applying a (or its derivative) to one element.
func (a Activation) work() int {
	switch a {
	case ReLU, LeakyReLU:
		return 1
	}
	return 16 // exp, tanh
}
