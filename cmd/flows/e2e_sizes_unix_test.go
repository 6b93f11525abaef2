//go:build unix

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sizeRun runs the binary in dir with FLOWS_MAX_MEMORY=8G (so that what is
// refused does not depend on the machine) and returns its standard error,
// exit code, CPU time (user and system; the machine may be shared, so wall
// time says little) and peak resident memory. It measures them with
// /usr/bin/time where there is one: the child's own rusage starts its peak
// at the test process's resident memory when it forks, an upper bound only.
func sizeRun(t *testing.T, dir string, stdout io.Writer, args ...string) (string, int, time.Duration, int64) {
	t.Helper()
	cmd := exec.Command(flowsBin, args...)
	stats := filepath.Join(t.TempDir(), "time")
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		cmd = exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", stats, flowsBin}, args...)...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FLOWS_MAX_MEMORY=8G")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("flows %s: %v", strings.Join(args, " "), err)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	rss := ru.Maxrss * 1024 // Linux: KiB
	if b, err := os.ReadFile(stats); err == nil {
		// The last line: time writes "Command exited…" before it.
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		var kb int64
		var user, sys float64
		if _, err := fmt.Sscan(lines[len(lines)-1], &kb, &user, &sys); err != nil {
			t.Fatalf("/usr/bin/time wrote %q: %v", b, err)
		}
		rss, cpu = kb*1024, time.Duration((user+sys)*1e9)
	}
	return stderr.String(), cmd.ProcessState.ExitCode(), cpu, rss
}

// checkBounded fails the test when a run took a second of CPU or more, or
// peaked above 100 MB (not checked under -race, whose shadow memory
// multiplies it).
func checkBounded(t *testing.T, what string, cpu time.Duration, rss int64) {
	t.Helper()
	t.Logf("%s: %v CPU, %.1f MB peak", what, cpu, float64(rss)/1e6)
	if cpu >= time.Second || !raceEnabled && rss > 100e6 {
		t.Errorf("%s: %v CPU, %d bytes peak; want under a second and 100 MB", what, cpu, rss)
	}
}

// TestSizeBombs runs the sizes that killed fit and plot by running out of
// memory: each must be refused with an error naming the flag (or the
// columns) and the limit, in under a second with under 100 MB.
func TestSizeBombs(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "data.csv"), 400)
	// The one-line CSV of 1.1M numbers (7.7 MB): a row of data, no header.
	var b strings.Builder
	for i := range 1_100_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i))
	}
	b.WriteByte('\n')
	writeFile(t, filepath.Join(dir, "wide.csv"), b.String())

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fit", "data.csv", "-o", "m.flow", "--layers", "100000000"}, "--layers 100000000: the model would hold"},
		{[]string{"fit", "data.csv", "-o", "m.flow", "--hidden", "100000000"}, "--hidden 100000000: the model would hold"},
		{[]string{"fit", "data.csv", "-o", "m.flow", "--hidden", "64,100000000"}, "--hidden 64,100000000: the model would hold"},
		{[]string{"fit", "data.csv", "-o", "m.flow", "--kind", "bnaf", "--layers", "100000"}, "--layers 100000: the model would hold"},
		{[]string{"fit", "data.csv", "-o", "m.flow", "--bins", "900", "--hidden", "200000"}, "--hidden 200000: the model would hold"},
		{[]string{"fit", "wide.csv", "-o", "m.flow"}, "wide.csv: line 1: more than 4567 columns"},
		{[]string{"fit", "wide.csv", "-o", "m.flow", "--kind", "maf"}, "wide.csv: line 1: more than"},
	} {
		what := strings.Join(tc.args, " ")
		stderr, code, cpu, rss := sizeRun(t, dir, io.Discard, tc.args...)
		if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "8 GiB") || !strings.Contains(stderr, "FLOWS_MAX_MEMORY") {
			t.Errorf("flows %s: exit %d\n%s\nwant %q and the limit", what, code, stderr, tc.want)
		}
		checkBounded(t, what, cpu, rss)
		if _, err := os.Stat(filepath.Join(dir, "m.flow")); err == nil {
			t.Errorf("flows %s wrote a model", what)
		}
	}

	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "model.flow"}, tinyFit...)...)
	stderr, code, cpu, rss := sizeRun(t, dir, io.Discard, "plot", "-n", "1000000000", "-o", "p.png", "model.flow")
	if code != 1 || !strings.Contains(stderr, "-n 1000000000: would need") {
		t.Errorf("plot -n 1000000000: exit %d\n%s", code, stderr)
	}
	checkBounded(t, "plot -n 1000000000", cpu, rss)
}

// TestSampleHuge checks that sample -n of a trillion rows streams: its
// memory stays bounded while it writes (the reader stops after 4 MB).
func TestSampleHuge(t *testing.T) {
	dir := t.TempDir()
	model := fitTiny(t, dir)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int64, 1)
	go func() {
		n, _ := io.CopyN(io.Discard, pr, 4<<20)
		pr.Close() // the writer then fails (EPIPE) and exits
		done <- n
	}()
	_, code, _, rss := sizeRun(t, dir, pw, "sample", "-n", "1000000000000", model)
	pw.Close()
	if n := <-done; n != 4<<20 || code == 0 {
		t.Errorf("sample -n 1e12: read %d bytes, exit %d", n, code)
	}
	t.Logf("sample -n 1e12: %.1f MB peak after writing 4 MB", float64(rss)/1e6)
	if !raceEnabled && rss > 100e6 {
		t.Errorf("sample -n 1e12: %d bytes peak", rss)
	}
}
