package atomicfile

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestWriteCommitsWholeOrNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	if err := os.WriteFile(path, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	failed := errors.New("halfway")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, "new, but")
		return failed
	})
	if !errors.Is(err, failed) || !strings.Contains(err.Error(), path) {
		t.Errorf("err = %v, want the write's error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("a failed write left %q", b)
	}
	if err := Write(path, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file holds %q, want new", b)
	}
	if fi, _ := os.Stat(path); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the replaced file's 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d entries, want just the file", len(entries))
	}
}

func TestCreateNamesThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodir", "s.csv")
	_, err := Create(path)
	if err == nil || !strings.Contains(err.Error(), "cannot write "+path) || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("err = %v, want one naming %s and no temporary file", err, path)
	}
	if err := CheckWritable(path); err == nil {
		t.Error("CheckWritable accepted a path in a missing directory")
	}
	dir := t.TempDir()
	if err := CheckWritable(filepath.Join(dir, "ok")); err != nil {
		t.Error(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("CheckWritable left %d files", len(entries))
	}
}

func TestSymlinkFollowed(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges")
	}
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real"), filepath.Join(dir, "link")
	os.WriteFile(real, []byte("old"), 0o644)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := Write(link, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(real); string(b) != "new" {
		t.Errorf("target holds %q", b)
	}
	if fi, _ := os.Lstat(link); fi.Mode()&os.ModeSymlink == 0 {
		t.Error("the link was replaced")
	}
}

// TestStaleRemoved leaves a temporary file of a process that has exited
// and one of this process: a later Create of the same target removes the
// first only.
func TestStaleRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no cheap liveness check")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	dir := t.TempDir()
	path := filepath.Join(dir, "m.flow")
	stale := filepath.Join(dir, ".m.flow.tmp-"+strconv.Itoa(dead)+"-1")
	mine := filepath.Join(dir, ".m.flow.tmp-"+strconv.Itoa(os.Getpid())+"-zz")
	other := filepath.Join(dir, ".other.tmp-"+strconv.Itoa(dead)+"-1")
	for _, p := range []string{stale, mine, other} {
		os.WriteFile(p, []byte("x"), 0o644)
	}
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Error("the dead process's temporary file is still there")
	}
	for _, p := range []string{mine, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed", filepath.Base(p))
		}
	}
}

func TestRemoveAll(t *testing.T) {
	dir := t.TempDir()
	f, err := Create(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	RemoveAll()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("RemoveAll left %d files", len(entries))
	}
	f.Abort() // harmless after RemoveAll
}

// deadPID returns the process id of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestStaleOfOtherTargetsRemoved: Create also removes the temporary files
// of other targets in the directory that a dead process left and that have
// not changed for staleAge, and keeps those of live processes, recent ones
// and names that are not its own.
func TestStaleOfOtherTargetsRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no cheap liveness check")
	}
	live := exec.Command(os.Args[0], "-test.run=^TestBlockUntilStdinCloses$")
	live.Env = append(os.Environ(), "ATOMICFILE_BLOCK=1")
	stdin, err := live.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); live.Wait() }()
	dead := strconv.Itoa(deadPID(t))
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // name → removed
		".samples.csv.tmp-" + dead + "-1":                           true,
		".model.flow.tmp-" + dead + "-a9":                           true,
		".with.tmp-in-name.tmp-" + dead + "-2":                      true,
		".samples.csv.tmp-" + strconv.Itoa(live.Process.Pid) + "-1": false, // a live writer
		".samples.csv.tmp-" + strconv.Itoa(os.Getpid()) + "-1":      false, // this process
		".notes.tmp-" + dead + "-1.bak":                             false, // not a temporary name
		".notes.tmp-" + dead + "-":                                  false,
		".notes.tmp-0" + dead + "-1":                                false,
		"notes.tmp-" + dead + "-1":                                  false,
		".notes.tmp-x" + dead + "-1":                                false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte("partial"), 0o644)
		os.Chtimes(p, old, old)
	}
	recent := filepath.Join(dir, ".plot.png.tmp-"+dead+"-3") // may still be written elsewhere
	os.WriteFile(recent, []byte("partial"), 0o644)
	if err := CheckWritable(filepath.Join(dir, "out.csv")); err != nil {
		t.Fatal(err)
	}
	for name, removed := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if gone := os.IsNotExist(err); gone != removed {
			t.Errorf("%s: removed %v, want %v", name, gone, removed)
		}
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a recent temporary file of another target was removed: %v", err)
	}
}

// TestBlockUntilStdinCloses is the live process of
// TestStaleOfOtherTargetsRemoved, not a test of its own.
func TestBlockUntilStdinCloses(t *testing.T) {
	if os.Getenv("ATOMICFILE_BLOCK") == "" {
		t.Skip("a helper process")
	}
	io.Copy(io.Discard, os.Stdin)
}
