package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/vbauerster/mpb/v8/cwriter"
)

// env is what a command may touch besides the files named on its command
// line: the standard streams, and whether standard error is a terminal (the
// progress bar is drawn only then).
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	stderrTTY      bool
}

// command is one subcommand: its usage, its flags and what it runs.
type command struct {
	name  string
	args  string // the positional arguments, for the usage line
	short string // one line for the list of commands
	long  string // the paragraph of "flows help NAME"
	nArgs [2]int // the least and most number of positional arguments
	flags func(fs *flag.FlagSet) func(e *env, args []string) error
}

// commands lists the subcommands in the order help shows them.
var commands = []*command{fitCommand, sampleCommand, scoreCommand, plotCommand, serveCommand, versionCommand}

// usageError is an error in the command line (a flag, a missing argument);
// its message is followed by a pointer to the command's help.
type usageError struct {
	cmd string
	msg string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usageError of the command cmd.
func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// sizedTerminal reports whether fd is a terminal that knows its size: the
// bar needs both (mpb draws nothing on a terminal of height 0), and a
// terminal without one gets the plain per-epoch lines instead.
func sizedTerminal(fd int) bool {
	if !cwriter.IsTerminal(fd) {
		return false
	}
	w, h, err := cwriter.GetSize(fd)
	return err == nil && w > 0 && h > 0
}

func main() {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, stderrTTY: sizedTerminal(int(os.Stderr.Fd()))}
	// An interrupted command removes the temporary file it was writing:
	// its output is then as it was, and nothing is left behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		atomicfile.RemoveAll()
		fmt.Fprintf(e.stderr, "flows: %v: stopped; no output was written\n", s)
		code := 130 // the shells' status for SIGINT
		if s == syscall.SIGTERM {
			code = 143
		}
		os.Exit(code)
	}()
	os.Exit(run(e, os.Args[1:]))
}

// run runs the command line args (without the program name) and returns the
// exit status: 0 on success, 1 on any error, which it prints on e.stderr.
func run(e *env, args []string) int {
	if len(args) == 0 {
		mainUsage(e.stderr)
		return 1
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 && name == "help" {
			c := lookup(args[1])
			if c == nil {
				fmt.Fprintf(e.stderr, "flows help: unknown command %q\n", args[1])
				mainUsage(e.stderr)
				return 1
			}
			commandUsage(e.stdout, c)
			return 0
		}
		mainUsage(e.stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(e.stderr, "flows: unknown command %q\n", name)
		mainUsage(e.stderr)
		return 1
	}
	fs := flag.NewFlagSet("flows "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, usage on request
	do := c.flags(fs)
	pos, err := cliflags.ParseInterspersed(fs, args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(e.stdout, c)
		return 0
	case err != nil:
		// The flag package names flags with one dash; help uses two for
		// long names.
		err = usagef(c.name, "%s", longFlag.ReplaceAllString(err.Error(), " --$1"))
	case len(pos) < c.nArgs[0]:
		err = usagef(c.name, "%s needs %s", c.name, c.args)
	case len(pos) > c.nArgs[1]:
		err = usagef(c.name, "too many arguments: %s", strings.Join(pos[c.nArgs[1]:], " "))
	default:
		err = do(e, pos)
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "flows: ") {
			msg = "flows " + c.name + ": " + msg
		}
		fmt.Fprintln(e.stderr, msg)
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(e.stderr, "Run 'flows help %s' for usage.\n", c.name)
		}
		return 1
	}
	return 0
}

// longFlag matches a long flag name after a space in a message of package
// flag: " -columns".
var longFlag = regexp.MustCompile(` -([A-Za-z][A-Za-z0-9]+)\b`)

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// mainUsage prints the overview of "flows help".
func mainUsage(w io.Writer) {
	fmt.Fprint(w, `flows fits normalizing flows to the rows of a CSV file, samples from them,
scores rows by their log density, draws corner plots of models and serves
them over HTTP.

Usage:
	flows <command> [arguments]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "\t%-8s %s\n", c.name, c.short)
	}
	fmt.Fprint(w, `
Run 'flows help <command>' for a command's flags.

Quick start:
	flows fit data.csv -o model.flow
	flows sample model.flow -n 1000 -o samples.csv
	flows score model.flow data.csv --top 10
	flows plot model.flow data.csv -o plot.png
`)
}

// commandUsage prints the help of c: usage line, paragraph and flags, with
// two dashes for long flag names (one or two both work).
func commandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: flows %s [flags] %s\n\n%s\n", c.name, c.args, strings.TrimSpace(c.long))
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs)
	cliflags.PrintFlags(w, fs)
}

// listFlag is a flag holding a comma-separated list (see cliflags.List).
type listFlag = cliflags.List

// intsFlag is a flag holding a comma-separated list of positive integers.
type intsFlag []int

func (l *intsFlag) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (l *intsFlag) Set(s string) error {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return fmt.Errorf("%q is not a list of positive integers", s)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// rangeFlag is a flag holding an interval "lo,hi" with lo < hi.
type rangeFlag struct {
	lo, hi float64
	set    bool
}

func (r *rangeFlag) String() string {
	if r == nil || !r.set {
		return ""
	}
	return fmt.Sprintf("%g,%g", r.lo, r.hi)
}

func (r *rangeFlag) Set(s string) error {
	lo, hi, ok := strings.Cut(s, ",")
	a, err1 := strconv.ParseFloat(strings.TrimSpace(lo), 64)
	b, err2 := strconv.ParseFloat(strings.TrimSpace(hi), 64)
	if !ok || err1 != nil || err2 != nil || !(a < b) || isInfOrNaN(a) || isInfOrNaN(b) {
		return fmt.Errorf("%q is not an interval LO,HI of finite numbers with LO < HI", s)
	}
	r.lo, r.hi, r.set = a, b, true
	return nil
}

// floatsFlag is a flag holding a comma-separated list of finite numbers
// (see cliflags.Floats).
type floatsFlag = cliflags.Floats

// trimmed is an error whose message drops the library's "flows: " prefix
// and the function it names (the command names itself), and which wraps
// the library's error.
type trimmed struct {
	msg string
	err error
}

func (e *trimmed) Error() string { return e.msg }
func (e *trimmed) Unwrap() error { return e.err }

// trimFlows returns err with the library's prefixes dropped: "flows: Load:
// open m.flow: …" becomes "open m.flow: …", "flows: model file m.flow: …"
// becomes "model file m.flow: …".
func trimFlows(err error) error {
	msg := strings.TrimPrefix(err.Error(), "flows: ")
	for _, fn := range []string{"Load: ", "Save: ", "model.Read: "} {
		msg = strings.TrimPrefix(msg, fn)
	}
	return &trimmed{msg: msg, err: err}
}

// versionCommand prints the module version the binary was built from.
var versionCommand = &command{
	name:  "version",
	short: "print the version of flows",
	long: `Version prints the version of the module github.com/gonormflows/flows that the
binary was built from, as go install records it, and, for a build from a
clone, the commit and whether the tree had changes beside it.`,
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, _ []string) error {
			fmt.Fprintln(e.stdout, "flows", version())
			return nil
		}
	},
}

// version describes the build: the module version (a release tag from go
// install, or "devel"), the VCS revision and time with "+changes" for a
// modified tree, and the Go version.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown version)"
	}
	v := bi.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if rev := settings["vcs.revision"]; rev != "" {
		v += " " + rev[:min(12, len(rev))]
		if t := settings["vcs.time"]; t != "" {
			v += " " + t
		}
		if settings["vcs.modified"] == "true" {
			v += "+changes"
		}
	}
	return v + " " + bi.GoVersion
}
