package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// sampleChunk is the most rows drawn by one Model.Sample call, which bounds
// the memory of the conditioners' intermediate matrices.
const sampleChunk = 1 << 14

var sampleCommand = &command{
	name:  "sample",
	args:  "model.flow",
	short: "draw rows from a model, as CSV",
	long: `Sample draws -n rows from the model and writes them as CSV with a header row,
to standard output or to the -o file (atomically). The columns are in the
model's order; the model file does not record their names, so the header is
x0, x1, ... unless --names gives it. The same --seed gives the same rows.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		var (
			n     int
			out   string
			seed  uint64
			names listFlag
		)
		fs.IntVar(&n, "n", 1000, "the number of rows to draw")
		fs.StringVar(&out, "o", "", "the CSV `file` to write (default standard output)")
		fs.Uint64Var(&seed, "seed", 0, "the seed of the draw")
		fs.Var(&names, "names", "the header, one `name` per column of the model (default x0,x1,...)")
		return func(e *env, args []string) error {
			if n < 1 {
				return usagef("sample", "-n %d: want at least 1", n)
			}
			if err := checkNotInput(out, args[0]); err != nil {
				return err
			}
			m, err := flows.Load(args[0])
			if err != nil {
				return err
			}
			header := make([]string, m.Dim)
			for j := range header {
				header[j] = "x" + strconv.Itoa(j)
			}
			if names != nil {
				if len(names) != m.Dim {
					return usagef("sample", "--names gives %d %s, but %s is a model of %d %s",
						len(names), plural(len(names), "name"), args[0], m.Dim, plural(m.Dim, "column"))
				}
				header = names
			}
			x := sample(m, flows.NewKey(seed), n)
			return writeOutput(e, out, func(w io.Writer) error {
				return writeCSV(w, header, n, func(i int, buf []string) []string {
					for j, v := range x.RawRowView(i) {
						buf[j] = formatFloat(v)
					}
					return buf
				})
			})
		}
	},
}

// sample draws n rows from m: chunk c of sampleChunk rows comes from
// key.Fold(c), so the same key gives the same rows.
func sample(m *flows.Model, key flows.Key, n int) *mat.Dense {
	x := mat.NewDense(n, m.Dim, nil)
	for c, lo := 0, 0; lo < n; c, lo = c+1, lo+sampleChunk {
		hi := min(lo+sampleChunk, n)
		x.Slice(lo, hi, 0, m.Dim).(*mat.Dense).Copy(m.Sample(key.Fold(uint64(c)), hi-lo, nil))
	}
	return x
}

// logPDF returns the log density of every row of x under m, in chunks.
func logPDF(m *flows.Model, x *mat.Dense) []float64 {
	n, d := x.Dims()
	out := make([]float64, 0, n)
	for lo := 0; lo < n; lo += sampleChunk {
		hi := min(lo+sampleChunk, n)
		out = append(out, m.LogPDF(x.Slice(lo, hi, 0, d).(*mat.Dense), nil)...)
	}
	if len(out) != n {
		panic(fmt.Sprintf("flows: %d log densities for %d rows", len(out), n))
	}
	return out
}
