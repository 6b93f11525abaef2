package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gonormflows/flows/model"
)

// TestColumnsByName: the model file records its columns, so score finds
// them in a file whose columns come in another order, with others beside
// them, and gives the same scores.
func TestColumnsByName(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	recs := readCSV(t, readText(t, filepath.Join(dir, "data.csv")))
	var b strings.Builder
	b.WriteString("id,y,note,x\n")
	for i, r := range recs[1:] {
		fmt.Fprintf(&b, "%d,%s,\"n%d\",%s\n", i, r[1], i, r[0])
	}
	writeFile(t, filepath.Join(dir, "shuffled.csv"), b.String())
	want := mustRun(t, dir, "score", "model.flow", "data.csv").stdout
	got := mustRun(t, dir, "score", "model.flow", "shuffled.csv").stdout
	column := func(s string, j int) []string {
		var out []string
		for _, r := range readCSV(t, s)[1:] {
			out = append(out, r[j])
		}
		return out
	}
	if !slices.Equal(column(got, 2), column(want, 2)) {
		t.Error("scores of the reordered file differ from the original's")
	}
	if h := readCSV(t, got)[0]; strings.Join(h, ",") != "row,line,log_density,x,y" {
		t.Errorf("header %v", h)
	}
}

// TestConditional fits a model of y given a context column c, scores with
// the context found by name, and samples given a value and given a file.
func TestConditional(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("c,y\n")
	for i := range 300 {
		c := float64(i % 2)
		fmt.Fprintf(&b, "%g,%g\n", c, 4*c+0.3*float64((i*7919)%11-5)/5)
	}
	writeFile(t, filepath.Join(dir, "cond.csv"), b.String())
	r := mustRun(t, dir, "fit", "cond.csv", "--context", "c", "-o", "cond.flow", "--epochs", "30", "--layers", "2", "--hidden", "16,16")
	if !strings.Contains(r.stderr, "1 column in this order: y; given 1 context column: c") {
		t.Errorf("fit summary: %s", r.stderr)
	}
	m, err := model.Load(filepath.Join(dir, "cond.flow"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Dim != 1 || m.ContextDim != 1 || !slices.Equal(m.Config.Context, []string{"c"}) {
		t.Errorf("model dim %d, context %d %v", m.Dim, m.ContextDim, m.Config.Context)
	}
	s := mustRun(t, dir, "score", "cond.flow", "cond.csv").stdout
	if h := readCSV(t, s)[0]; strings.Join(h, ",") != "row,line,log_density,y,c" {
		t.Errorf("score header %v", h)
	}
	// Given c = 1, samples sit near 4; given c = 0, near 0.
	for _, tc := range []struct {
		given string
		lo    float64
	}{{"0", -1.5}, {"1", 2.5}} {
		out := mustRun(t, dir, "sample", "cond.flow", "-n", "200", "--given", tc.given).stdout
		recs := readCSV(t, out)
		mean := 0.0
		for _, rec := range recs[1:] {
			var v float64
			fmt.Sscan(rec[0], &v)
			mean += v / 200
		}
		if mean < tc.lo || mean > tc.lo+3 {
			t.Errorf("given c = %s: sample mean %.3f", tc.given, mean)
		}
	}
	writeFile(t, filepath.Join(dir, "ctx.csv"), "c\n0\n1\n1\n")
	if n := len(readCSV(t, mustRun(t, dir, "sample", "cond.flow", "--contexts", "ctx.csv").stdout)); n != 4 {
		t.Errorf("sample --contexts gave %d records, want a header and 3", n)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sample", "cond.flow"}, "give them with --given or --contexts"},
		{[]string{"sample", "cond.flow", "--given", "1,2"}, "--given has 2 values, but cond.flow takes 1 context column"},
		{[]string{"score", "cond.flow", "ctx.csv"}, `cond.flow's columns: no column is named "y"`},
	} {
		r := flowsRun(t, dir, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestFitLogs: off a terminal, fit prints one line per epoch on standard
// error, --log writes the epochs as CSV and --curve draws them.
func TestFitLogs(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "data.csv"), 200)
	r := mustRun(t, dir, "fit", "data.csv", "-o", "m.flow", "--epochs", "3", "--patience", "0", "--log", "run.csv", "--curve", "curve.png")
	if png := readText(t, filepath.Join(dir, "curve.png")); !strings.HasPrefix(png, "\x89PNG") || len(png) < 5000 {
		t.Errorf("curve.png is not a picture (%d bytes)", len(png))
	}
	if r := flowsRun(t, dir, "fit", "data.csv", "-o", "m2.flow", "--curve", "curve.gif"); r.code != 1 || !strings.Contains(r.stderr, "--curve curve.gif: want a .png, .svg or .pdf file") {
		t.Errorf("--curve curve.gif: exit %d\n%s", r.code, r.stderr)
	}
	for e := 1; e <= 3; e++ {
		if !strings.Contains(r.stderr, fmt.Sprintf("epoch %d/3: train NLL", e)) {
			t.Errorf("stderr has no line for epoch %d:\n%s", e, r.stderr)
		}
	}
	recs := readCSV(t, readText(t, filepath.Join(dir, "run.csv")))
	if len(recs) != 4 || strings.Join(recs[0], ",") != "epoch,step,lr,train_nll,val_nll,seconds,best" {
		t.Errorf("run.csv: %v", recs)
	}
}

// TestErrorPrefixes: every error starts with the command's name, and names
// the user's paths, not the library's function or a temporary file.
func TestErrorPrefixes(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"score", "missing.flow", "data.csv"}, "flows score: open missing.flow: no such file or directory"},
		{[]string{"score", "model.flow", "data.csv", "-o", "nodir/s.csv"}, "flows score: cannot write nodir/s.csv: the directory nodir does not exist"},
		{[]string{"sample", "model.flow", "-o", "nodir/s.csv"}, "flows sample: cannot write nodir/s.csv"},
	} {
		r := flowsRun(t, dir, tc.args...)
		if r.code != 1 || !strings.HasPrefix(r.stderr, tc.want) || strings.Contains(r.stderr, ".tmp-") {
			t.Errorf("%v: exit %d, %q; want it to start %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestVersion: the build records the module and the commit.
func TestVersion(t *testing.T) {
	r := mustRun(t, t.TempDir(), "version")
	if !strings.HasPrefix(r.stdout, "flows ") || strings.Contains(r.stdout, "(devel)") {
		t.Errorf("version %q", r.stdout)
	}
	if _, err := exec.LookPath("git"); err == nil {
		rev, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
		if err == nil && !strings.Contains(r.stdout, strings.TrimSpace(string(rev))) {
			t.Errorf("version %q does not name the commit %s", r.stdout, rev)
		}
	}
}

// TestInterruptLeavesNothing interrupts a long sample: the output is not
// written and no temporary file is left.
func TestInterruptLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command(flowsBin, "sample", "model.flow", "-n", "100000000", "-o", "big.csv")
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the temporary file exists, then interrupt.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if m, _ := filepath.Glob(filepath.Join(dir, ".big.csv.tmp-*")); len(m) > 0 {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("no temporary file appeared")
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		if err == nil || !strings.Contains(stderr.String(), "stopped; no output was written") {
			t.Errorf("%v: %v, %q", sig, err, stderr.String())
		}
		if _, err := os.Stat(filepath.Join(dir, "big.csv")); !os.IsNotExist(err) {
			t.Errorf("%v: big.csv was written", sig)
		}
		noTemps(t, dir)
	}
}

// TestStaleTemporaryRemoved: a temporary file that a killed save left
// behind is removed by the next save of the same target.
func TestStaleTemporaryRemoved(t *testing.T) {
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
	if m, _ := filepath.Glob(filepath.Join(dir, ".big.csv.tmp-*")); len(m) != 1 {
		t.Fatalf("the killed sample left %v", m)
	}
	mustRun(t, dir, "sample", "model.flow", "-n", "3", "-o", "big.csv")
	noTemps(t, dir)
}
