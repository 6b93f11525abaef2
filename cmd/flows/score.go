package main

import (
	"cmp"
	"container/heap"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// chunkRows is how many rows score and sample hold at a time: their memory
// does not grow with the file, and their output does not depend on it (a
// row's log density does not depend on the other rows of its batch).
var chunkRows = 4096

var scoreCommand = &command{
	name:  "score",
	args:  "model.flow data.csv",
	short: "write the log density of each row of a CSV file under a model",
	long: `Score evaluates the model's log density at every data row of the CSV file
("-" for standard input), for anomaly scoring: the lower, the less likely
the row. It writes CSV with a header row, to standard output or to the -o
file (atomically), one row per data row in file order:

	row,line,log_density,<the model's columns>[,<its context columns>]

where row counts the data rows from 0 (the header is not a data row), line
is the row's line in the file (from 1), and log_density is in nats, in the
data's units. With --top k it writes only the k least likely rows, lowest
log density first.

The model's columns are found in the file by the names the model records
(in any order, other columns ignored), or as --columns and --context pick
them. The file is read and scored in chunks, so it may be larger than
memory.`,
	nArgs: [2]int{2, 2},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		var (
			c   csvFlags
			out string
			top int
		)
		c.add(fs)
		fs.StringVar(&out, "o", "", "the CSV `file` to write (default standard output)")
		fs.IntVar(&top, "top", 0, "write only the `k` least likely rows, lowest first (0: all rows)")
		return func(e *env, args []string) error {
			if top < 0 {
				return usagef("score", "--top %d: want 0 (all rows) or more", top)
			}
			opt, err := c.options("score")
			if err != nil {
				return err
			}
			if err := checkNotInput(out, args...); err != nil {
				return err
			}
			m, err := loadModel(args[0])
			if err != nil {
				return err
			}
			opt = cliflags.ForModel(opt, m, args[0])
			if err := cliflags.CheckContext(opt, m, args[0]); err != nil {
				return err
			}
			o, err := openOutput(e, out)
			if err != nil {
				return err
			}
			return o.finish(score(e, m, args[1], opt, top, o.w))
		}
	},
}

// scored is one scored row, kept for --top.
type scored struct {
	row, line int
	logp      float64
	values    []float64 // data, then context
}

// scoreHeap is a max-heap by log density (NaN the lowest, so the first to
// stay): it keeps the k lowest of the rows seen.
type scoreHeap []scored

func (h scoreHeap) Len() int           { return len(h) }
func (h scoreHeap) Less(i, j int) bool { return lowerScore(h[j], h[i]) }
func (h scoreHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *scoreHeap) Push(x any)        { *h = append(*h, x.(scored)) }
func (h *scoreHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// lowerScore orders rows by log density, NaN first, then by row.
func lowerScore(a, b scored) bool {
	key := func(v float64) float64 {
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	if c := cmp.Compare(key(a.logp), key(b.logp)); c != 0 {
		return c < 0
	}
	return a.row < b.row
}

// score reads the file at path in chunks, scores each row under m and
// writes the rows (or, with top > 0, the top least likely) to w.
func score(e *env, m *model.Model, path string, opt table.Options, top int, w io.Writer) error {
	r, name, done, err := openInput(e, path)
	if err != nil {
		return err
	}
	defer done()
	rd, err := table.NewReader(r, name, opt)
	if err != nil {
		return err
	}
	header := append(append([]string{"row", "line", "log_density"}, rd.Names()...), rd.ContextNames()...)
	tw, err := table.NewWriter(w, header)
	if err != nil {
		return err
	}
	var kept scoreHeap
	rows, zero := 0, 0
	rowBuf := make([]float64, len(header))
	for {
		t, err := rd.Read(chunkRows)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		lp := m.LogPDF(t.X, t.C)
		for i, v := range lp {
			if math.IsInf(v, -1) {
				zero++
			}
			values := t.X.RawRowView(i)
			if t.C != nil {
				values = append(slices.Clone(values), t.C.RawRowView(i)...)
			}
			s := scored{row: t.First + i, line: t.Lines[i], logp: v, values: values}
			if top == 0 {
				if err := tw.WriteRow(s.record(rowBuf)); err != nil {
					return err
				}
				continue
			}
			if len(kept) < top {
				s.values = slices.Clone(s.values)
				heap.Push(&kept, s)
			} else if lowerScore(s, kept[0]) {
				s.values = slices.Clone(s.values)
				kept[0] = s
				heap.Fix(&kept, 0)
			}
		}
		rows += t.Rows()
	}
	if rows == 0 {
		return fmt.Errorf("%s: a header row but no data rows", name)
	}
	if zero > 0 {
		// A log density of −Inf is a row so far out that its density
		// underflows (or its values overflow inside the flow): the least
		// likely of all, and written as -Inf.
		fmt.Fprintf(e.stderr, "note: %d of %d %s (%s) have log density -Inf: far beyond the data the model was fitted to\n",
			zero, rows, plural(rows, "row"), name)
	}
	slices.SortFunc(kept, func(a, b scored) int {
		if lowerScore(a, b) {
			return -1
		}
		return 1
	})
	for _, s := range kept {
		if err := tw.WriteRow(s.record(rowBuf)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// record fills buf with the row's output cells, as numbers.
func (s scored) record(buf []float64) []float64 {
	buf = append(buf[:0], float64(s.row), float64(s.line), s.logp)
	return append(buf, s.values...)
}

// loadModel loads the model file at path, its errors without the library's
// prefix (the command names itself).
func loadModel(path string) (*model.Model, error) {
	m, err := model.Load(path)
	if err != nil {
		return nil, trimFlows(err)
	}
	return m, nil
}
