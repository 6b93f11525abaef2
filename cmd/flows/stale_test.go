package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// killSample starts a long flows sample into out in dir, kills it with
// SIGKILL (no chance to clean up) once its temporary file exists, and
// returns that file's path.
func killSample(t *testing.T, dir, out string) string {
	t.Helper()
	cmd := exec.Command(flowsBin, "sample", "model.flow", "-n", "100000000", "-o", out)
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pattern := filepath.Join(dir, "."+out+".tmp-*")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m, _ := filepath.Glob(pattern); len(m) > 0 || time.Now().After(deadline) {
			break
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("the killed sample left %v", m)
	}
	return m[0]
}

// TestStaleTemporaryOfAnotherTarget: the temporary file that a sample
// killed with SIGKILL left is removed by the next command that writes into
// the folder, here a fit of another file, once it is 10 s old (simulated);
// the temporary file of a live process (this test's) is kept.
func TestStaleTemporaryOfAnotherTarget(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	stale := killSample(t, dir, "big.csv")
	live := filepath.Join(dir, ".other.csv.tmp-"+strconv.Itoa(os.Getpid())+"-1")
	writeFile(t, live, "partial")
	old := time.Now().Add(-time.Minute)
	for _, p := range []string{stale, live} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "second.flow"}, tinyFit...)...)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the killed sample's temporary file is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live process's temporary file was removed: %v", err)
	}
}
