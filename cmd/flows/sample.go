package main

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// sampleBlock is how many rows one key draws: block b of a sample comes
// from the seed's key folded with b, whatever chunkRows is, so the rows
// depend on the seed alone.
const sampleBlock = 1 << 12

var sampleCommand = &command{
	name:  "sample",
	args:  "model.flow",
	short: "draw rows from a model, as CSV",
	long: `Sample draws -n rows from the model and writes them as CSV with a header row
of the model's column names (x0, x1, ... for a model without names, or
--names), to standard output or to the -o file (atomically). The same --seed
gives the same rows. Rows are drawn and written in chunks, so -n may be far
larger than memory.

A conditional model needs its context: --given lists one context row's
values (all -n rows are drawn given it), or --contexts names a CSV file
whose rows are the contexts (one row drawn per context row, -n ignored; its
columns found by the model's context names, or as --context picks them).

--temperature T draws the latents from N(0, T²·I) (unconditional models),
as Glow's reduced-temperature samples: below 1, nearer the latent origin.
For an image model (fit --kind image-glow), -o grid.png writes the -n
samples as a PNG grid of images instead of CSV.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		var (
			n        int
			out      string
			seed     uint64
			names    listFlag
			given    floatsFlag
			contexts string
			c        csvFlags
		)
		var temperature float64
		fs.Float64Var(&temperature, "temperature", 1, "draw the latents from N(0, T²), `T` below 1 nearer the latent origin;\nunconditional models only")
		fs.IntVar(&n, "n", 1000, "the number of rows to draw")
		fs.StringVar(&out, "o", "", "the CSV `file` to write (default standard output)")
		fs.Uint64Var(&seed, "seed", 0, "the seed of the draw")
		fs.Var(&names, "names", "the header, one `name` per column of the model (default the model's names)")
		fs.Var(&given, "given", "a conditional model's context, one `list` of values for every row")
		fs.StringVar(&contexts, "contexts", "", "a CSV `file` of contexts: one row drawn per context row")
		c.add(fs)
		return func(e *env, args []string) error {
			if n < 1 {
				return usagef("sample", "-n %d: want at least 1", n)
			}
			if err := checkNotInput(out, args[0], contexts); err != nil {
				return err
			}
			m, err := loadModel(args[0])
			if err != nil {
				return err
			}
			ev := m.Prepare() // once: every block reuses the prepared layers
			draw := ev.Sample
			if temperature != 1 {
				if _, err := m.SampleTemperature(flows.NewKey(seed), 1, temperature); err != nil {
					return usagef("sample", "--temperature %v: %s", temperature, strings.TrimPrefix(err.Error(), "flows: Model.SampleTemperature: "))
				}
				draw = func(key flows.Key, n int, _ *mat.Dense) *mat.Dense {
					x, _ := m.SampleTemperature(key, n, temperature) // checked above
					return x
				}
			}
			if strings.HasSuffix(strings.ToLower(out), ".png") {
				return sampleImages(m, args[0], out, n, flows.NewKey(seed), temperature)
			}
			header := m.Config.Columns
			if len(header) == 0 {
				header = make([]string, m.Dim)
				for j := range header {
					header[j] = "x" + strconv.Itoa(j)
				}
			}
			if names != nil {
				if len(names) != m.Dim {
					return usagef("sample", "--names gives %d %s, but %s is a model of %d %s",
						len(names), plural(len(names), "name"), args[0], m.Dim, plural(m.Dim, "column"))
				}
				header = names
			}
			ctx, err := sampleContexts(e, m, args[0], given, contexts, &c)
			if err != nil {
				return err
			}
			if ctx != nil && given == nil {
				n, _ = ctx.Dims()
			}
			// Rows are drawn sampleBlock at a time: that is one call's size.
			if err := checkRows(args[0], "-n", m, min(n, sampleBlock), false); err != nil {
				return err
			}
			o, err := openOutput(e, out)
			if err != nil {
				return err
			}
			cats := m.Categories
			if cats != nil {
				header = append(slices.Clone(header), cats.Names...)
			}
			tw, err := table.NewWriter(o.w, header)
			if err != nil {
				return o.finish(err)
			}
			key := flows.NewKey(seed)
			for lo := 0; lo < n; lo += sampleBlock {
				hi := min(lo+sampleBlock, n)
				var cb *mat.Dense
				switch {
				case given != nil: // the one context row, repeated
					cb = ctx.Slice(0, hi-lo, 0, m.ContextDim).(*mat.Dense)
				case ctx != nil:
					cb = ctx.Slice(lo, hi, 0, m.ContextDim).(*mat.Dense)
				}
				if cats == nil {
					if err := tw.WriteRows(draw(key.Fold(uint64(lo/sampleBlock)), hi-lo, cb)); err != nil {
						return o.finish(err)
					}
					continue
				}
				x, levels := ev.SampleMixed(key.Fold(uint64(lo/sampleBlock)), hi-lo, cb)
				if err := writeMixed(tw, x, levels, len(cats.Names)); err != nil {
					return o.finish(err)
				}
			}
			return o.finish(tw.Flush())
		}
	},
}

// writeMixed writes rows of numbers x, each followed by its k levels
// (row-major in levels).
func writeMixed(tw *table.Writer, x *mat.Dense, levels []string, k int) error {
	n, d := x.Dims()
	cells := make([]string, d+k)
	for i := range n {
		for j, v := range x.RawRowView(i) {
			cells[j] = table.FormatFloat(v)
		}
		copy(cells[d:], levels[i*k:(i+1)*k])
		if err := tw.WriteCells(cells); err != nil {
			return err
		}
	}
	return nil
}

// sampleContexts returns the contexts to sample a conditional model at: the
// --given row repeated for a block of rows, or the rows of the --contexts
// file; nil for an unconditional model.
func sampleContexts(e *env, m *model.Model, path string, given []float64, contexts string, c *csvFlags) (*mat.Dense, error) {
	switch {
	case m.ContextDim == 0 && (given != nil || contexts != ""):
		return nil, usagef("sample", "%s is not a conditional model: it takes no --given or --contexts", path)
	case m.ContextDim == 0:
		return nil, nil
	case given != nil && contexts != "":
		return nil, usagef("sample", "--given and --contexts both give contexts; choose one")
	case given != nil:
		if len(given) != m.ContextDim {
			return nil, usagef("sample", "--given has %d %s, but %s takes %d context %s", len(given), plural(len(given), "value"),
				path, m.ContextDim, plural(m.ContextDim, "column"))
		}
		block := mat.NewDense(sampleBlock, m.ContextDim, nil)
		for i := range sampleBlock {
			block.SetRow(i, given)
		}
		return block, nil
	case contexts != "":
		opt, err := c.options("sample")
		if err != nil {
			return nil, err
		}
		opt = cliflags.ForModel(opt, m, path)
		if len(opt.Context) == 0 {
			return nil, fmt.Errorf("%s records no names for its %d context %s; pick them in %s with --context",
				path, m.ContextDim, plural(m.ContextDim, "column"), contexts)
		}
		// Only the context columns are read.
		opt.Columns, opt.Want = opt.Context, m.ContextDim
		opt.Context, opt.WantContext = nil, 0
		t, err := readTable(e, contexts, opt)
		if err != nil {
			return nil, err
		}
		return t.X, nil
	}
	return nil, usagef("sample", "%s is a conditional model of %d context %s: give them with --given or --contexts",
		path, m.ContextDim, plural(m.ContextDim, "column"))
}
