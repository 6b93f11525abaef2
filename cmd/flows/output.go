package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/gonormflows/flows/internal/atomicfile"
)

// output is where a command writes its result: standard output, or a file
// written atomically, so that a command that fails (or is interrupted)
// leaves the file as it was.
type output struct {
	w *bufio.Writer
	f *atomicfile.File // nil for standard output
}

// openOutput opens the output at path: standard output for "" or "-", else
// a new temporary file next to path (its errors name path).
func openOutput(e *env, path string) (*output, error) {
	if path == "" || path == "-" {
		return &output{w: bufio.NewWriterSize(e.stdout, 1<<16)}, nil
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	return &output{w: bufio.NewWriterSize(f, 1<<16), f: f}, nil
}

// finish ends the output: when err is nil it flushes and, for a file,
// commits it; otherwise it abandons the file. It returns err, or the
// error of flushing or committing.
func (o *output) finish(err error) error {
	if err != nil {
		if o.f != nil {
			o.f.Abort()
		}
		return err
	}
	if err := o.w.Flush(); err != nil {
		if o.f != nil {
			o.f.Abort()
		}
		return err
	}
	if o.f != nil {
		return o.f.Commit()
	}
	return nil
}

// writeOutput writes an output through write (see openOutput and finish).
func writeOutput(e *env, path string, write func(w io.Writer) error) error {
	o, err := openOutput(e, path)
	if err != nil {
		return err
	}
	return o.finish(write(o.w))
}

// checkNotInput returns an error when the output path is one of the input
// files, which writing it would destroy.
func checkNotInput(out string, inputs ...string) error {
	if out == "" || out == "-" {
		return nil
	}
	fo, err := os.Stat(out)
	if err != nil {
		return nil // a new file
	}
	for _, in := range inputs {
		if in == "-" {
			continue
		}
		if fi, err := os.Stat(in); err == nil && os.SameFile(fi, fo) {
			return fmt.Errorf("the output %s is the input %s; choose another -o", out, in)
		}
	}
	return nil
}

// isInfOrNaN reports whether v is not a finite number.
func isInfOrNaN(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }
