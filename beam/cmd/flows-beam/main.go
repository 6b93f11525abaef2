package main

// The command line: subcommands with the flags of the flows tool where they
// mean the same, parsed on Go's global flag set, where Beam's own flags
// (--runner, --endpoint, the Dataflow flags) live, so that Beam finds them
// set and passes them on to the runner as pipeline options.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/gcs" // gs:// paths
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/s3"  // s3:// paths
	beamlog "github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/dataflow"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/flink"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/spark"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/universal"
	"github.com/gonormflows/flows/internal/cliflags"
)

// env is what a command may touch besides its files: the standard streams.
type env struct {
	stdout, stderr io.Writer
	verbose        bool
}

// command is one subcommand.
type command struct {
	name  string
	args  string // the positional arguments, for the usage line
	short string // one line for the list of commands
	long  string // the paragraph of "flows-beam help NAME"
	nArgs [2]int // the least and most positional arguments (-1: no most)
	flags func(fs *flag.FlagSet) func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order help shows them.
var commands = []*command{scoreCommand, sampleCommand, evaluateCommand, sweepCommand, versionCommand}

// usageError is an error in the command line.
type usageError struct {
	cmd, msg string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError of the command cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

func main() {
	args := os.Args[1:]
	// A runner starts the binary as a worker with Beam's flags only
	// (--worker --id=... --control_endpoint=...): then beam.Init runs the
	// worker harness and does not return.
	if len(args) > 0 && strings.HasPrefix(args[0], "-") && !isHelp(args[0]) && args[0] != "-version" && args[0] != "--version" {
		flag.Parse()
		beam.Init()
		fmt.Fprintln(os.Stderr, "flows-beam: a command comes first; run 'flows-beam help'")
		os.Exit(1)
	}
	e := &env{stdout: os.Stdout, stderr: os.Stderr}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, e, args)
	if ctx.Err() != nil {
		code = 130 // the shells' status for an interrupt
	}
	stop()
	os.Exit(code)
}

func isHelp(s string) bool { return s == "help" || s == "-h" || s == "-help" || s == "--help" }

// run runs the command line and returns the exit status: 0 on success, 1 on
// any error, which it prints on e.stderr.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		mainUsage(e.stderr)
		return 1
	}
	name := args[0]
	switch {
	case isHelp(name):
		if len(args) > 1 && name == "help" {
			c := lookup(args[1])
			if c == nil {
				fmt.Fprintf(e.stderr, "flows-beam help: unknown command %q\n", args[1])
				return 1
			}
			commandUsage(e.stdout, c)
			return 0
		}
		mainUsage(e.stdout)
		return 0
	case name == "-version" || name == "--version":
		name = "version"
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "flows-beam: unknown command %q\n", name)
		mainUsage(e.stderr)
		return 1
	}
	fs := flag.CommandLine
	fs.Init("flows-beam "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&e.verbose, "verbose", false, "print Beam's and the runner's log, and its whole error")
	do := c.flags(fs)
	pos, err := cliflags.ParseInterspersed(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(e.stdout, c)
		return 0
	case err != nil:
		err = usagef(c.name, "%s", longFlag.ReplaceAllString(err.Error(), " --$1"))
	case len(pos) < c.nArgs[0]:
		err = usagef(c.name, "%s needs %s", c.name, c.args)
	case c.nArgs[1] >= 0 && len(pos) > c.nArgs[1]:
		err = usagef(c.name, "too many arguments: %s", strings.Join(pos[c.nArgs[1]:], " "))
	default:
		// beam.Init sets up the log (slog's default) at this level.
		beamlog.LogLevel = "warn"
		if e.verbose {
			beamlog.LogLevel = "info"
		}
		if *runners.Runner == "" {
			*runners.Runner = "prism"
		}
		beam.Init()
		if !e.verbose {
			// Prism logs a failed bundle at length; the command prints
			// the error that matters.
			slog.SetDefault(slog.New(slog.DiscardHandler))
		}
		err = do(ctx, e, pos)
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "flows-beam") {
			msg = "flows-beam " + c.name + ": " + msg
		}
		fmt.Fprintln(e.stderr, msg)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "Run 'flows-beam help %s' for usage.\n", c.name)
		}
		return 1
	}
	return 0
}

// longFlag matches a long flag name after a space in a message of package
// flag: " -columns".
var longFlag = regexp.MustCompile(` -([A-Za-z][A-Za-z0-9_-]+)\b`)

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// mainUsage prints the overview of "flows-beam help".
func mainUsage(w io.Writer) {
	fmt.Fprint(w, `flows-beam scores, samples and evaluates the normalizing flows of the flows
tool, and sweeps their configurations, on Apache Beam: on this machine with
Beam's Prism runner (the default), or on Flink, Spark or Google Cloud
Dataflow. Inputs are globs (local paths, gs://, s3://), outputs prefixes of
sharded CSV files.

Usage:
	flows-beam <command> [arguments] [--runner prism|universal|flink|spark|dataflow ...]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-9s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
Run 'flows-beam help <command>' for a command's flags.

Quick start:
	flows-beam score model.flow 'data-*.csv' -o scores
	flows-beam sample model.flow -n 1000000 --shards 8 -o samples
	flows-beam evaluate model.flow 'test-*.csv' -o eval.json
	flows-beam sweep 'train-*.csv' --validation 'val-*.csv' --kind maf,realnvp --layers 2,4 -o best.flow
`)
}

// runnerHelp describes Beam's flags that flows-beam documents.
const runnerHelp = `
Runner flags (Beam's; all of Beam's pipeline flags are accepted):
  --runner NAME
    	prism (default: Beam's runner, in this process), universal (a job
    	server at --endpoint), flink or spark (the same, named), dataflow
  --endpoint HOST:PORT
    	the job server of a Flink or Spark cluster (universal, flink, spark)
  --environment_type DOCKER|PROCESS|LOOPBACK
    	how a job server starts workers (default DOCKER, Beam's Go SDK image)
  --environment_config CONFIG
    	the worker image for DOCKER, or the command for PROCESS
  --worker_binary PATH
    	the binary workers run: flows-beam built for linux/amd64 (Beam
    	compiles the program from source when it is not given)
  --parallelism N
    	Flink's parallelism
  --project ID, --region REGION, --staging_location gs://..., --temp_location gs://...
    	Dataflow's project, region and Cloud Storage folders
  --num_workers N, --max_num_workers N, --worker_machine_type TYPE
    	Dataflow's workers
  --async
    	submit the job and return without waiting (no counts are printed)
  --job_name NAME
    	the job's name
`

// commandUsage prints the help of c: usage line, paragraph and its flags,
// then the runner flags.
func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: flows-beam %s [flags] %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var verbose bool
	fs.BoolVar(&verbose, "verbose", false, "print Beam's and the runner's log, and its whole error")
	c.flags(fs)
	cliflags.PrintFlags(w, fs)
	if c != versionCommand {
		fmt.Fprint(w, runnerHelp)
	}
}

// listFlag is a flag holding a comma-separated list (see cliflags.List).
type listFlag = cliflags.List

// intsFlag is a flag holding a comma-separated list of integers, each at
// least min.
type intsFlag struct {
	v   []int
	min int
}

func (l *intsFlag) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(l.v))
	for i, v := range l.v {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intsFlag) Set(s string) error {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < l.min {
			return fmt.Errorf("%q is not a list of integers of at least %d", s, l.min)
		}
		out = append(out, v)
	}
	l.v = out
	return nil
}

// floatsFlag is a flag holding a comma-separated list of finite numbers
// (see cliflags.Floats).
type floatsFlag = cliflags.Floats

// plural returns word, with an s unless n is 1.
func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// versionCommand prints the module version the binary was built from.
var versionCommand = &command{
	name:  "version",
	short: "print the version of flows-beam",
	long:  `Version prints the version of the module github.com/gonormflows/flows/beam that the binary was built from, and the Go version.`,
	flags: func(fs *flag.FlagSet) func(context.Context, *env, []string) error {
		return func(_ context.Context, e *env, _ []string) error {
			v, gov := "(unknown version)", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				v, gov = bi.Main.Version, bi.GoVersion
				if v == "" || v == "(devel)" {
					v = "devel"
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && len(s.Value) >= 12 {
						v += " " + s.Value[:12]
					}
				}
			}
			fmt.Fprintln(e.stdout, "flows-beam", v, gov)
			return nil
		}
	},
}
