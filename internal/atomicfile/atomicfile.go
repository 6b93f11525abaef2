// Package atomicfile writes files atomically: into a temporary file next to
// the target, synced and renamed over it only once it is complete, so that
// the target holds either its old contents or the whole new ones, never a
// part. The model files of package flows, the tables of package table and
// the outputs of the flows command are written through it.
//
// Temporary files are named ".<name>.tmp-<pid>-<n>" next to the target.
// Create removes the ones in the target's directory that a process which
// no longer runs left behind (a crash, a kill -9): of the same target at
// once, of others once unmodified for 10 s; RemoveAll removes the ones
// this process has open, for a signal handler to call before exiting.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// File is a file being written to its target atomically: write to it, then
// Commit, or Abort to leave the target as it was.
type File struct {
	*os.File
	path string      // the target (a symbolic link at it resolved)
	mode os.FileMode // the replaced file's mode, 0 for a new file
	done bool
}

// counter makes temporary names unique within the process.
var counter atomic.Uint64

// open holds the temporary files of this process that are neither
// committed nor aborted, for RemoveAll.
var open sync.Map // tmp path → struct{}

// Create starts writing the file at path: it checks that path's directory
// exists and that path is a regular file or absent (a symbolic link is
// followed: the file it points to is replaced and the link kept), removes
// stale temporary files of path's own making, and creates a new temporary
// file next to it with mode 0666 less the umask. Errors name path, not the
// temporary file.
func Create(path string) (*File, error) {
	target := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if target, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("cannot write %s: %w", path, err)
		}
	}
	dir := filepath.Dir(target)
	if fi, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("cannot write %s: the directory %s does not exist", path, dir)
		}
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	var mode os.FileMode
	if fi, err := os.Stat(target); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("cannot write %s: it is not a regular file", path)
		}
		mode = fi.Mode().Perm()
	}
	removeStale(target)
	base := filepath.Base(target)
	for range 1000 {
		name := filepath.Join(dir, tempPrefix(base)+strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(counter.Add(1), 36))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the temporary name means nothing to the user
			}
			return nil, fmt.Errorf("cannot write %s: %w", path, err)
		}
		open.Store(name, struct{}{})
		return &File{File: f, path: target, mode: mode}, nil
	}
	return nil, fmt.Errorf("cannot write %s: no unused temporary name next to it", path)
}

// tempPrefix is the start of the temporary names of the target base.
func tempPrefix(base string) string { return "." + base + ".tmp-" }

// Commit makes the written contents the target's: it syncs the temporary
// file, gives it the replaced file's mode, closes it, renames it over the
// target and syncs the directory. On an error the temporary file is
// removed and the target is as it was.
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: Commit after Commit or Abort")
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Abort()
		return fmt.Errorf("writing %s: %w", f.path, err)
	}
	if f.mode != 0 && runtime.GOOS != "windows" {
		if err := f.Chmod(f.mode); err != nil {
			return fail(err)
		}
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.File.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fail(err)
	}
	f.done = true
	open.Delete(tmp)
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there
	}
	d, err := os.Open(filepath.Dir(f.path))
	if err != nil {
		return fmt.Errorf("%s is written, but its directory could not be synced: %w", f.path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("%s is written, but its directory could not be synced: %w", f.path, err)
	}
	return nil
}

// Abort closes and removes the temporary file, leaving the target as it
// was. It does nothing after Commit or Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.Name())
	open.Delete(f.Name())
}

// Write writes the file at path through write, buffered, atomically: the
// target gets everything write wrote, or, when write or the file system
// fails, stays as it was.
func Write(path string, write func(w io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := write(bw); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Commit()
}

// CheckWritable returns Create's error for path, without leaving anything
// behind: a long computation checks its output first, so that it does not
// end in a failed write.
func CheckWritable(path string) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	f.Abort()
	return nil
}

// RemoveAll removes every temporary file this process has open: a signal
// handler calls it before the process exits, so that an interrupted write
// leaves nothing behind.
func RemoveAll() {
	open.Range(func(k, _ any) bool {
		os.Remove(k.(string))
		open.Delete(k)
		return true
	})
}

// staleAge is how long a temporary file of another target must have gone
// unmodified before removeStale takes it for stale.
const staleAge = 10 * time.Second

// removeStale removes the temporary files in target's directory that
// processes which no longer run left behind (see alive): those of target
// itself, and those of other targets not modified for staleAge. So the
// first write into a folder after a crash or a kill -9 (every command of
// the flows CLI that writes checks its outputs first, through Create)
// clears what the interrupted one left. Liveness is checked on this
// machine: a folder shared with other machines or PID namespaces could
// hold a live writer's file under a PID that runs nowhere here, which the
// age guard protects while it is being written. Errors are ignored: a
// stale file that cannot be removed costs only disk space.
func removeStale(target string) {
	dir, own := filepath.Dir(target), filepath.Base(target)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		base, pid, ok := parseTemp(e.Name())
		if !ok || !e.Type().IsRegular() || pid == os.Getpid() || alive(pid) {
			continue
		}
		if base != own {
			fi, err := e.Info()
			if err != nil || time.Since(fi.ModTime()) < staleAge {
				continue
			}
		}
		os.Remove(filepath.Join(dir, e.Name()))
	}
}

// parseTemp returns the target's base name and the writer's process id of
// a temporary name ".<base>.tmp-<pid>-<n>" (n in base 36), or false for
// any other name.
func parseTemp(name string) (base string, pid int, ok bool) {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i < 2 {
		return "", 0, false
	}
	pidText, n, ok := strings.Cut(name[i+len(".tmp-"):], "-")
	if !ok || n == "" || strings.Trim(n, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
		return "", 0, false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || strconv.Itoa(pid) != pidText {
		return "", 0, false
	}
	return name[1:i], pid, true
}
