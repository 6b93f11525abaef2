package main

import (
	"cmp"
	"container/heap"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

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

	row,line,log_density[,<--keep columns>],<the model's columns>[,<its context columns>][,<its categories>]

where row counts the data rows from 0 (the header is not a data row), line
is the row's line in the file (from 1), and log_density is in nats, in the
data's units (for a model with categories, plus their log probability; a
level the model has not seen is an error naming the line). With --top k it
writes only the k least likely rows, lowest log density first; --keep
copies columns of any content (names, ids) into the output beside them.
With --missing skip, rows with a missing value are left out, counted and
listed in --rejects.

The model's columns are found in the file by the names the model records
(in any order, other columns ignored), or as --columns and --context pick
them. The file is read and scored in chunks, so it may be larger than
memory; the model is prepared once (Model.Prepare) and scores every chunk
with the bits of the library's Model.LogPDF.`,
	nArgs: [2]int{2, 2},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		var (
			c    csvFlags
			rows rowsFlags
			out  string
			top  int
		)
		c.add(fs)
		rows.add(fs, "score")
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
			if err := rows.apply("score", &opt); err != nil {
				return err
			}
			for _, o := range []string{out, rows.rejects} {
				if err := checkNotInput(o, args...); err != nil {
					return err
				}
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
			rj, err := openRejects(e, rows.rejects)
			if err != nil {
				return o.finish(err)
			}
			err = score(e, m, args[1], opt, top, o.w, rj)
			if err := rj.finish(err); err != nil {
				return o.finish(err)
			}
			return o.finish(nil)
		}
	},
}

// scored is one scored row, kept for --top.
type scored struct {
	row, line int
	logp      float64
	values    []float64 // data, then context
	kept      []string  // the --keep columns
	levels    []string  // the categories
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
// writes the rows (or, with top > 0, the top least likely) to w; the rows
// left out for a missing value go to rj.
func score(e *env, m *model.Model, path string, opt table.Options, top int, w io.Writer, rj *rejects) error {
	if err := checkRows(path, "a chunk of rows", m, chunkRows, false); err != nil {
		return err
	}
	r, name, done, err := openInput(e, path)
	if err != nil {
		return err
	}
	defer done()
	rd, err := table.NewReader(r, name, opt)
	if err != nil {
		return err
	}
	var header []string
	for _, part := range [][]string{{"row", "line", "log_density"}, rd.KeepNames(), rd.Names(), rd.ContextNames(), m.Categories.ColumnNames()} {
		header = append(header, part...)
	}
	tw, err := table.NewWriter(w, header)
	if err != nil {
		return err
	}
	ev := m.Prepare() // once: every chunk reuses the prepared layers
	var kept scoreHeap
	rows, zero := 0, 0
	cells := make([]string, len(header))
	for {
		t, err := rd.Read(chunkRows)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := rj.add(t.Skipped); err != nil {
			return err
		}
		if t.Rows() == 0 {
			continue
		}
		lp, err := ev.LogPDFMixed(t.X, t.Cats, t.C)
		if ue := (*model.UnknownLevelError)(nil); errors.As(err, &ue) {
			return fmt.Errorf("%s:%d: column %q: level %q was not in the model's training rows (its levels: %s)",
				name, t.Lines[ue.Row], ue.Column, ue.Level, joinNames(ue.Levels))
		}
		if err != nil {
			return err
		}
		nk, nc := len(t.KeepNames), len(t.CatNames)
		for i, v := range lp {
			if math.IsInf(v, -1) {
				zero++
			}
			values := t.X.RawRowView(i)
			if t.C != nil {
				values = append(slices.Clone(values), t.C.RawRowView(i)...)
			}
			s := scored{row: t.Row(i), line: t.Lines[i], logp: v, values: values,
				kept: t.Kept[i*nk : (i+1)*nk], levels: t.Cats[i*nc : (i+1)*nc]}
			if top == 0 {
				if err := tw.WriteCells(s.record(cells)); err != nil {
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
	rj.note(e, name, rows, "")
	if rows == 0 {
		if rj.n > 0 {
			return fmt.Errorf("%s: every data row has a missing value", name)
		}
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
		if err := tw.WriteCells(s.record(cells)); err != nil {
			return err
		}
	}
	return tw.Flush()
}

// record fills cells with the row's output: row, line, log density, the
// kept columns, the numbers and the levels.
func (s scored) record(cells []string) []string {
	cells = append(cells[:0], strconv.Itoa(s.row), strconv.Itoa(s.line), table.FormatFloat(s.logp))
	cells = append(cells, s.kept...)
	for _, v := range s.values {
		cells = append(cells, table.FormatFloat(v))
	}
	return append(cells, s.levels...)
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
