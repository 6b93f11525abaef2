package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/gonormflows/flows/beam/flowsbeam"
	"github.com/gonormflows/flows/internal/cliflags"
)

var evaluateCommand = &command{
	name:  "evaluate",
	args:  "model.flow glob... -o eval.json",
	short: "the mean log-likelihood and histogram of the log densities of rows",
	long: `Evaluate scores every data row of the CSV files the globs match (read as
score reads them) and writes the summary of the log densities to the JSON
file -o: rows, mean_log_density (the mean log-likelihood in nats, exact:
the same bits whatever the runner's bundles), min, max, the rows whose log
density is not finite (nan, neg_inf, pos_inf), and the histogram: bins of
--bin-width nats from multiples of the width, [{lo, count}], those that
hold rows. It prints the count and the mean.`,
	nArgs: [2]int{2, -1},
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		var (
			c     csvFlags
			out   string
			width float64
		)
		c.add(fs, true)
		fs.StringVar(&out, "o", "", "the JSON `file` to write (required)")
		fs.Float64Var(&width, "bin-width", flowsbeam.DefaultBinWidth, "the width of the histogram's bins, in `nats`")
		return func(ctx context.Context, e *env, args []string) error {
			switch {
			case out == "":
				return usagef("evaluate", "no output: give a JSON file with -o")
			case !(width > 0) || math.IsInf(width, 0):
				return usagef("evaluate", "--bin-width %v: want a positive number", width)
			}
			opt, err := c.options("evaluate")
			if err != nil {
				return err
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
			files, err := matchAll(ctx, args[1:])
			if err != nil {
				return err
			}
			if _, _, err := checkHeader(ctx, files, opt); err != nil {
				return err
			}
			rows, dead, fileCounts := flowsbeam.ReadCSVCounted(s, flowsbeam.ReadConfig{Options: opt, Categories: m.Categories, DeadLetter: c.deadLetter != ""}, args[1:]...)
			cleanDead := deadLetters(s, c.deadLetter, dead)
			scored := flowsbeam.Score(s, model, rows, flowsbeam.ScoreConfig{})
			flowsbeam.WriteEvaluation(s, out, flowsbeam.Evaluate(s, scored, flowsbeam.EvaluateConfig{BinWidth: width}))
			countsFile := countRows(s, flowsbeam.NewOutput(out), fileCounts, scored, dead)
			metrics, err := execute(ctx, e, p, func() {
				cleanDead()
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
			b, err := readBack(ctx, out)
			if err != nil {
				return err
			}
			var ev flowsbeam.Evaluation
			if err := json.Unmarshal(b, &ev); err != nil {
				return fmt.Errorf("%s: %v", out, err)
			}
			fmt.Fprintf(e.stdout, "%d %s: mean log density %v nats (min %v, max %v)\n", ev.Rows, plural(ev.Rows, "row"), ev.MeanLogDensity, ev.Min, ev.Max)
			fmt.Fprintf(e.stderr, "wrote %s\n", out)
			return nil
		}
	},
}
