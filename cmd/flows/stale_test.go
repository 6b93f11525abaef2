package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestStaleTemporaryOfAnotherTarget: the temporary file that a sample
// killed with SIGKILL left is removed by the next command that writes into
// the folder, here a fit of another file, once it is 10 s old (simulated);
// the temporary file of a live process (this test's) is kept.
func TestStaleTemporaryOfAnotherTarget(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	cmd := exec.Command(flowsBin, "sample", "model.flow", "-n", "100000000", "-o", "big.csv")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(dir, ".big.csv.tmp-*")); len(m) > 0 || time.Now().After(deadline) {
			break
		}
	}
	cmd.Process.Kill() // SIGKILL: no chance to clean up
	cmd.Wait()
	stale, _ := filepath.Glob(filepath.Join(dir, ".big.csv.tmp-*"))
	if len(stale) != 1 {
		t.Fatalf("the killed sample left %v", stale)
	}
	live := filepath.Join(dir, ".other.csv.tmp-"+strconv.Itoa(os.Getpid())+"-1")
	writeFile(t, live, "partial")
	old := time.Now().Add(-time.Minute)
	for _, p := range []string{stale[0], live} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "second.flow"}, tinyFit...)...)
	if _, err := os.Stat(stale[0]); !os.IsNotExist(err) {
		t.Errorf("the killed sample's temporary file is still there: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live process's temporary file was removed: %v", err)
	}
}
