package main

// What the commands share: the CSV flags, the checks made before a
// pipeline is built (so that a missing file, a damaged model or a bad
// header fails at once, with the flows tool's message), running the
// pipeline and reporting its counters and errors.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"

	"github.com/gonormflows/flows/beam/flowsbeam"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// csvFlags are the flags of every command that reads CSV files, as the
// flows tool has them (cliflags.CSV), and --dead-letter.
type csvFlags struct {
	cliflags.CSV
	deadLetter string
}

// add defines the flags on fs; deadLetter adds --dead-letter.
func (c *csvFlags) add(fs *flag.FlagSet, deadLetter bool) {
	c.Add(fs, "the first row of each file")
	if deadLetter {
		fs.StringVar(&c.deadLetter, "dead-letter", "", "write bad rows, with the reason, to CSV shards of this `prefix` and go on\n(default: a bad row fails the run)")
	}
}

// options returns the table options of the flags, or a usage error of cmd.
func (c *csvFlags) options(cmd string) (table.Options, error) {
	o, err := c.Options()
	if err != nil {
		return o, usagef(cmd, "%v", err)
	}
	return o, nil
}

// loadModel reads the model file at path through Beam's file systems and
// returns it as a side input, with the model.
func loadModel(s beam.Scope, path string) (beam.PCollection, *model.Model, error) {
	mf, m, err := flowsbeam.ReadModelFile(s, path)
	if err != nil {
		// The library's message names the file itself.
		var msg string
		if msg = err.Error(); strings.HasPrefix(msg, path+": flows: model file: ") {
			msg = "model file " + path + ": " + strings.TrimPrefix(msg, path+": flows: model file: ")
		}
		return beam.PCollection{}, nil, &wrapped{msg: msg, err: err}
	}
	return mf, m, nil
}

// wrapped is an error with another message.
type wrapped struct {
	msg string
	err error
}

func (e *wrapped) Error() string { return e.msg }
func (e *wrapped) Unwrap() error { return e.err }

// matchAll returns the files each glob matches, or an error for a glob
// that matches none.
func matchAll(ctx context.Context, globs []string) ([]string, error) {
	var files []string
	for _, g := range globs {
		fs, err := filesystem.New(ctx, g)
		if err != nil {
			return nil, err
		}
		m, err := fs.List(ctx, g)
		fs.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %v", g, err)
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("no file matches %s", g)
		}
		files = append(files, m...)
	}
	return files, nil
}

// checkHeader reads the start of the first of files with opt, so that a
// file without the model's columns fails before the pipeline runs, with
// the flows tool's message; it returns the names of the columns picked.
func checkHeader(ctx context.Context, files []string, opt table.Options) ([]string, []string, error) {
	for _, f := range files {
		fs, err := filesystem.New(ctx, f)
		if err != nil {
			return nil, nil, err
		}
		r, err := fs.OpenRead(ctx, f)
		fs.Close()
		if err != nil {
			return nil, nil, err
		}
		rd, err := table.NewReader(r, f, opt)
		r.Close()
		if err != nil {
			if strings.HasSuffix(err.Error(), "the file is empty: want a header row (optional) and rows of numbers") {
				continue // an empty shard
			}
			return nil, nil, err
		}
		return rd.Names(), rd.ContextNames(), nil
	}
	return nil, nil, nil
}

// execute runs the pipeline on the --runner and returns its counters in
// the flows namespace; on failure it calls cleanup and returns the
// pipeline's error (see pipelineError).
func execute(ctx context.Context, e *env, p *beam.Pipeline, cleanup func()) (map[string]int64, error) {
	pr, err := beam.Run(ctx, *runners.Runner, p)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("interrupted: %v", context.Cause(ctx))
		}
		return nil, pipelineError(err, e.verbose)
	}
	out := map[string]int64{}
	if pr == nil {
		return nil, nil // submitted with --async
	}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Namespace() == flowsbeam.MetricNamespace {
			out[c.Name()] += c.Result()
		}
	}
	return out, nil
}

// failedDoFn ends the line before a DoFn's error in Beam's report of a
// failed bundle.
const failedDoFn = "] failed:\n"

// pipelineError returns the error of a failed pipeline: the error of the
// DoFn that failed (a bad row: "data.csv:17: column 3 ("price"): "abc" is
// not a number"), without Beam's account of the bundle, unless verbose.
func pipelineError(err error, verbose bool) error {
	msg := err.Error()
	if verbose {
		return errors.New("the pipeline failed: " + msg)
	}
	i := strings.LastIndex(msg, failedDoFn)
	if i < 0 {
		return fmt.Errorf("the pipeline failed: %s", firstLines(msg, 3))
	}
	msg = strings.TrimSpace(msg[i+len(failedDoFn):])
	if j := strings.Index(msg, "\n"); j >= 0 {
		msg = msg[:j]
	}
	return errors.New(msg)
}

// firstLines returns the first n lines of s.
func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "... (--verbose for the rest)")
	}
	return strings.Join(lines, "\n")
}

// readBack reads a small output file back through Beam's file systems.
func readBack(ctx context.Context, path string) ([]byte, error) {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	return filesystem.Read(ctx, fs, path)
}

// countShards returns the number of shards of the output o.
func countShards(ctx context.Context, o flowsbeam.Output) int {
	fs, err := filesystem.New(ctx, o.Prefix)
	if err != nil {
		return 0
	}
	defer fs.Close()
	files, _ := fs.List(ctx, o.Glob())
	return len(files)
}

// asyncNote is printed for a run submitted with --async.
const asyncNote = "submitted (--async): the counts are in the runner's console"

// rowCounts are the files and rows a run read, counted from the data by
// flowsbeam.CountRows (not from Beam's counters, which Prism may lose).
type rowCounts struct{ files, good, bad int64 }

// countRows adds the step that checks and counts the rows read to the
// pipeline, and returns the name of its file for this run of o.
func countRows(s beam.Scope, o flowsbeam.Output, counts, scored, dead beam.PCollection) string {
	name := o.CountsFile()
	flowsbeam.CountRows(s, name, counts, scored, dead)
	return name
}

// readCounts reads the counts of a run from the file name (and removes
// it), and checks that every one of files was read: the pipeline itself
// checks that each file's rows all went on.
func readCounts(ctx context.Context, name string, files []string) (rowCounts, error) {
	counts, err := flowsbeam.ReadFileCounts(ctx, name)
	if err != nil {
		return rowCounts{}, err
	}
	read := map[string]bool{}
	var c rowCounts
	for _, fc := range counts {
		read[fc.File] = true
		c.files++
		c.good += int64(fc.Good)
		c.bad += int64(fc.Bad)
	}
	for _, f := range files {
		if !read[f] {
			return c, fmt.Errorf("%s: the file was matched but the run has no count of its rows: the runner lost it", f)
		}
	}
	return c, nil
}

// logRows prints the counts of rows read.
func logRows(w io.Writer, c rowCounts) {
	fmt.Fprintf(w, "read %d good %s and %d bad %s from %d %s\n", c.good, plural(c.good, "row"),
		c.bad, plural(c.bad, "row"), c.files, plural(c.files, "file"))
}

// deadLetters adds the dead-letter output of prefix when it is not empty,
// and returns a cleanup for a failed run.
func deadLetters(s beam.Scope, prefix string, dead beam.PCollection) func() {
	if prefix == "" {
		return func() {}
	}
	o := flowsbeam.NewOutput(prefix)
	flowsbeam.WriteDeadLetters(s, o, dead)
	return func() { flowsbeam.RemoveTemporary(context.Background(), o) }
}
