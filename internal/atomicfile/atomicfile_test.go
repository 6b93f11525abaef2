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
