package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
)

// writeOutput writes an output of a command through write: to e.stdout when
// path is "" or "-", else to the file at path, atomically (writeFileAtomic).
// Commands compute everything before they call it, so that a failure leaves
// nothing behind.
func writeOutput(e *env, path string, write func(w io.Writer) error) error {
	if path == "" || path == "-" {
		bw := bufio.NewWriterSize(e.stdout, 1<<16)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	return writeFileAtomic(path, write)
}

// writeFileAtomic writes the file at path through write: into a new
// temporary file in the same directory (".<name>.tmp-<random>"), which is
// synced and renamed over path only when everything was written, so that
// path holds either its old contents or the whole new ones, never a part;
// on an error the temporary file is removed. A new file gets mode 0666 less
// the umask, a replaced one keeps its mode, and a symbolic link at path is
// followed (the file it points to is replaced).
func writeFileAtomic(path string, write func(w io.Writer) error) (err error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if path, err = filepath.EvalSymlinks(path); err != nil {
			return err
		}
	}
	var keepMode os.FileMode
	if fi, err := os.Stat(path); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", path)
		}
		keepMode = fi.Mode().Perm()
	}
	f, err := createTemp(path)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if keepMode != 0 && runtime.GOOS != "windows" {
		if err := f.Chmod(keepMode); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if runtime.GOOS != "windows" {
		// Make the rename durable; the file is complete either way.
		if d, err := os.Open(filepath.Dir(path)); err == nil {
			d.Sync()
			d.Close()
		}
	}
	return nil
}

// createTemp creates a new, empty temporary file next to path, with mode
// 0666 less the umask (os.CreateTemp would give 0600).
func createTemp(path string) (*os.File, error) {
	dir, base := filepath.Split(path)
	for range 100 {
		name := filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(rand.Uint64(), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if !errors.Is(err, os.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("no unused temporary file name next to %s", path)
}

// checkWritable returns an error when a file cannot be created in the
// directory of path, so that a long fit does not end in a failed write.
func checkWritable(path string) error {
	f, err := createTemp(path)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
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

// formatFloat formats v in the shortest form that reads back exactly.
func formatFloat(v float64) string {
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// isInfOrNaN reports whether v is not a finite number.
func isInfOrNaN(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// writeCSV writes a header and the rows that row(i, buf) gives, for i in
// [0, n), as CSV to w; row fills buf (len(header) cells) and returns it.
func writeCSV(w io.Writer, header []string, n int, row func(i int, buf []string) []string) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(header); err != nil {
		return err
	}
	buf := make([]string, len(header))
	for i := range n {
		if err := cw.Write(row(i, buf)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
