package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/gonormflows/flows/beam/flowsbeam"
	"github.com/gonormflows/flows/internal/cliflags"
)

var scoreCommand = &command{
	name:  "score",
	args:  "model.flow glob... -o prefix",
	short: "write the log density of every row of sharded CSV files",
	long: `Score evaluates the model's log density at every data row of the CSV files
the globs match, for anomaly scoring: the lower, the less likely the row.
Each file is read as 'flows score' reads one (its own header, the model's
columns found by name). It writes CSV shards PREFIX-SSSSS-of-NNNNN.csv, each
with a header row, one row per data row:

	file,row,line,log_density,<the model's columns>[,<its context columns>][,<its categories>]

where row counts the file's data rows from 0 and line is the row's line in
the file; every number reads back to the same bits, and each row's log
density is the one 'flows score' gives it (for a model of a mixed table,
in nats of the numbers' units plus the categories' log probability; the
levels are read as text and written back as they were). Which shard holds a row depends
on the runner's bundles; shards of an earlier output of the prefix that
the new one does not replace are removed.

With --top k it writes only the k least likely rows, lowest first, to the
file -o; with --top-by file or --top-by COLUMN (a data or context column),
the k least likely of each file or of each value of the column, with a
first column "key". The rows are written as above, levels included.

With --cpuprofile FILE it writes a CPU profile of the whole run to FILE,
for 'go tool pprof': on Prism, the default runner, which runs in this
process, it covers the runner, Beam's SDK harness and the scoring; on
another runner, only the launch.

A bad row fails the run with the error 'flows score' gives (data.csv:17:
column 3 ("price"): "abc" is not a number), unless --dead-letter PREFIX
sends bad rows to CSV shards "file,line,reason" and the rest proceeds; a
level the model's training rows did not have is a bad row too, with the
error 'flows score' gives it. The
good and bad rows are counted as Beam metrics and printed at the end.`,
	nArgs: [2]int{2, -1},
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var (
			c     csvFlags
			out   string
			top   int
			topBy string
			prof  string
		)
		c.add(fs, true)
		fs.StringVar(&out, "o", "", "the output `prefix` of the shards, or with --top the file (required)")
		fs.IntVar(&top, "top", 0, "write only the `k` least likely rows, lowest first (0: all rows)")
		fs.StringVar(&prof, "cpuprofile", "", "write a CPU profile of the run to `file` (on Prism: runner, SDK harness and scoring)")
		fs.StringVar(&topBy, "top-by", "", "with --top, keep the k least likely rows per `key`: \"file\" (each file's)\nor a column's name (each value's)")
		return func(ctx context.Context, e *env, args []string) error {
			switch {
			case out == "":
				return usagef("score", "no output: give a prefix with -o")
			case top < 0:
				return usagef("score", "--top %d: want 0 (all rows) or more", top)
			case topBy != "" && top == 0:
				return usagef("score", "--top-by needs --top k")
			}
			opt, err := c.options("score")
			if err != nil {
				return err
			}
			if prof != "" {
				stop, err := startCPUProfile(prof)
				if err != nil {
					return err
				}
				defer func() {
					if err := stop(); err != nil {
						fmt.Fprintf(e.stderr, "flows-beam score: --cpuprofile: %v\n", err)
					}
				}()
			}
			p, s := beam.NewPipelineWithRoot()
			model, m, err := loadModel(s, args[0])
			if err != nil {
				return err
			}
			opt = cliflags.ForModel(opt, m, args[0])
			if err := cliflags.CheckContext(opt, m, args[0]); err != nil {
				return err
			}
			globs := args[1:]
			files, err := matchAll(ctx, globs)
			if err != nil {
				return err
			}
			names, cnames, err := checkHeader(ctx, files, opt)
			if err != nil {
				return err
			}
			if m.Categories != nil && slices.Contains(m.Categories.Names, topBy) {
				return usagef("score", "--top-by %q: a categorical column cannot group --top yet; group by \"file\" or a column of numbers", topBy)
			}
			if topBy != "" && topBy != "file" && !slices.Contains(names, topBy) && !slices.Contains(cnames, topBy) {
				return usagef("score", "--top-by %q: not a column the model reads (%q, context %q), nor \"file\"", topBy, names, cnames)
			}
			rows, dead, fileCounts := flowsbeam.ReadCSVCounted(s, flowsbeam.ReadConfig{Options: opt, Categories: m.Categories, DeadLetter: c.deadLetter != ""}, globs...)
			cleanDead := deadLetters(s, c.deadLetter, dead)
			scored := flowsbeam.Score(s, model, rows, flowsbeam.ScoreConfig{})
			o := flowsbeam.NewOutput(out)
			countsFile := countRows(s, o, fileCounts, scored, dead)
			switch {
			case top > 0 && topBy == "":
				flowsbeam.WriteAnomalies(s, out, flowsbeam.TopAnomalies(s, top, scored))
			case top > 0 && topBy == "file":
				flowsbeam.WriteAnomaliesPerKey(s, out, flowsbeam.TopAnomaliesPerKey(s, top, flowsbeam.KeyByFile(s, scored)))
			case top > 0:
				flowsbeam.WriteAnomaliesPerKey(s, out, flowsbeam.TopAnomaliesPerKey(s, top, flowsbeam.KeyByColumn(s, topBy, scored)))
			default:
				flowsbeam.WriteScores(s, o, scored)
			}
			metrics, err := execute(ctx, e, p, func() {
				cleanDead()
				flowsbeam.RemoveTemporary(context.Background(), o)
				flowsbeam.RemoveFile(context.Background(), countsFile)
			})
			if err != nil {
				return err
			}
			if metrics == nil {
				fmt.Fprintln(e.stderr, asyncNote)
				return nil
			}
			counts, err := readCounts(ctx, countsFile, files)
			if err != nil {
				return err
			}
			logRows(e.stderr, counts)
			if top == 0 {
				if err := checkRowsRead(counts, out, c.deadLetter); err != nil {
					return err
				}
			}
			if top > 0 {
				fmt.Fprintf(e.stderr, "wrote the %d least likely %s to %s\n", top, plural(int64(top), "row"), out)
			} else {
				fmt.Fprintf(e.stderr, "wrote %d scored %s in %d %s of %s\n", counts.good,
					plural(counts.good, "row"), countShards(ctx, o), plural(int64(countShards(ctx, o)), "shard"), out)
			}
			if c.deadLetter != "" {
				n := countShards(ctx, flowsbeam.NewOutput(c.deadLetter))
				fmt.Fprintf(e.stderr, "wrote %d bad %s in %d %s of %s\n", counts.bad,
					plural(counts.bad, "row"), n, plural(int64(n), "shard"), c.deadLetter)
			}
			return nil
		}
	},
}

// checkRowsRead returns the error of a run that scored no rows: a run
// that failed reports its own error instead (the pipeline does not fail
// for an empty output; see flowsbeam.WriteScores), so this is only said
// of inputs that really had no good rows.
func checkRowsRead(counts rowCounts, out, deadLetter string) error {
	if counts.good > 0 {
		return nil
	}
	if bad := counts.bad; bad > 0 {
		return fmt.Errorf("no scored rows to write to %s: every data row was bad (%d %s in %s)", out, bad, plural(bad, "row"), deadLetter)
	}
	return fmt.Errorf("no scored rows to write to %s: the input has no data rows", out)
}

// startCPUProfile starts Go's CPU profile of this process into the file
// path, which it creates; stop ends the profile and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
