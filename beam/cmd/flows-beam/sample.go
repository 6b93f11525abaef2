package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/gonormflows/flows/beam/flowsbeam"
)

var sampleCommand = &command{
	name:  "sample",
	args:  "model.flow -n rows -o prefix",
	short: "draw rows from a model into CSV shards",
	long: `Sample draws -n rows from the model and writes them as CSV shards
PREFIX-SSSSS-of-NNNNN.csv, each with a header row of the model's column
names (x0, x1, ... for a model without names, or --names). The rows are
those 'flows sample' draws with the same --seed, bit for bit: block b of
4096 rows comes from the seed's key folded with b, and shard s holds a
contiguous run of blocks, so the shards read in order are 'flows sample's
output, whatever the runner, the workers or --shards.

A conditional model needs --given, one context row's values for every row.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var (
			n      int
			out    string
			seed   uint64
			shards int
			names  listFlag
			given  floatsFlag
		)
		fs.IntVar(&n, "n", 1000, "the number of rows to draw")
		fs.StringVar(&out, "o", "", "the output `prefix` of the shards (required)")
		fs.Uint64Var(&seed, "seed", 0, "the seed of the draw")
		fs.IntVar(&shards, "shards", 1, "the number of output shards (at most one per 4096 rows)")
		fs.Var(&names, "names", "the header, one `name` per column of the model (default the model's names)")
		fs.Var(&given, "given", "a conditional model's context, one `list` of values for every row")
		return func(ctx context.Context, e *env, args []string) error {
			switch {
			case out == "":
				return usagef("sample", "no output: give a prefix with -o")
			case n < 1:
				return usagef("sample", "-n %d: want at least 1", n)
			case shards < 1:
				return usagef("sample", "--shards %d: want at least 1", shards)
			}
			p, s := beam.NewPipelineWithRoot()
			model, m, err := loadModel(s, args[0])
			if err != nil {
				return err
			}
			switch {
			case m.ContextDim == 0 && given != nil:
				return usagef("sample", "%s is not a conditional model: it takes no --given", args[0])
			case m.ContextDim > 0 && given == nil:
				return usagef("sample", "%s is a conditional model of %d context %s: give them with --given", args[0], m.ContextDim, plural(int64(m.ContextDim), "column"))
			case m.ContextDim > 0 && len(given) != m.ContextDim:
				return usagef("sample", "--given has %d %s, but %s takes %d context %s", len(given), plural(int64(len(given)), "value"),
					args[0], m.ContextDim, plural(int64(m.ContextDim), "column"))
			case names != nil && len(names) != m.Dim+len(m.Categories.ColumnNames()):
				want := m.Dim + len(m.Categories.ColumnNames())
				return usagef("sample", "--names gives %d %s, but %s is a model of %d %s",
					len(names), plural(int64(len(names)), "name"), args[0], want, plural(int64(want), "column"))
			}
			cfg := flowsbeam.SampleConfig{N: n, Seed: seed, Shards: shards, Given: given, Names: names}
			blocks, err := flowsbeam.Sample(s, model, m, cfg)
			if err != nil {
				return err
			}
			o := flowsbeam.NewOutput(out)
			flowsbeam.WriteSample(s, o, cfg, blocks)
			counts, err := execute(ctx, e, p, func() { flowsbeam.RemoveTemporary(context.Background(), o) })
			if err != nil || counts == nil {
				return err
			}
			k := countShards(ctx, o)
			fmt.Fprintf(e.stderr, "wrote %d %s in %d %s of %s\n", n, plural(int64(n), "row"), k, plural(int64(k), "shard"), out)
			return nil
		}
	},
}
