package main

import (
	"cmp"
	"flag"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/gonormflows/flows"
)

var scoreCommand = &command{
	name:  "score",
	args:  "model.flow data.csv",
	short: "write the log density of each row of a CSV file under a model",
	long: `Score evaluates the model's log density at every data row of the CSV file
("-" for standard input), for anomaly scoring: the lower, the less likely
the row. It writes CSV with a header row, to standard output or to the -o
file (atomically), one row per data row in file order:

	row,line,log_density,<the selected columns>

where row counts the data rows from 0 (the header is not a data row), line
is the row's line in the file (from 1), and log_density is in nats, in the
data's units. With --top k it writes only the k least likely rows, lowest
log density first.

The selected columns must be the model's, in the order it was fitted with.`,
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
			m, err := flows.Load(args[0])
			if err != nil {
				return err
			}
			opt.dim, opt.model = m.Dim, args[0]
			t, err := readTable(e, args[1], opt)
			if err != nil {
				return err
			}
			lp := logPDF(m, t.x)
			order := make([]int, len(lp))
			for i := range order {
				order[i] = i
			}
			if top > 0 {
				// NaN (a model that cannot evaluate the row) counts as
				// the least likely of all.
				key := func(i int) float64 {
					if math.IsNaN(lp[i]) {
						return math.Inf(-1)
					}
					return lp[i]
				}
				slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(key(a), key(b)) })
				order = order[:min(top, len(order))]
			}
			header := append([]string{"row", "line", "log_density"}, t.names...)
			return writeOutput(e, out, func(w io.Writer) error {
				return writeCSV(w, header, len(order), func(k int, buf []string) []string {
					i := order[k]
					buf[0] = strconv.Itoa(i)
					buf[1] = strconv.Itoa(t.lines[i])
					buf[2] = formatFloat(lp[i])
					for j, v := range t.x.RawRowView(i) {
						buf[3+j] = formatFloat(v)
					}
					return buf
				})
			})
		}
	},
}
