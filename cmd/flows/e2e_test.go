package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"
)

// flowsBin is the binary the end-to-end tests run, built by TestMain.
var flowsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flows-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	flowsBin = filepath.Join(dir, "flows")
	// -buildvcs=auto: record the commit, as go install does, whatever
	// GOFLAGS says (TestVersion checks it).
	args := []string{"build", "-buildvcs=auto", "-o", flowsBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building flows: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of the binary gave.
type result struct {
	stdout, stderr string
	code           int
}

// flowsRun runs the binary in dir with args.
func flowsRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(flowsBin, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("flows %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs the binary and fails the test unless it succeeds.
func mustRun(t *testing.T, dir string, args ...string) result {
	t.Helper()
	r := flowsRun(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("flows %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// outlierRow is the data row of writeMixture's outlier (its line is
// outlierRow+2: the header is line 1).
const outlierRow = 137

// writeMixture writes n rows of a 2-D mixture of two Gaussians, with a
// header "x,y", to path, and one far outlier at data row outlierRow.
func writeMixture(t *testing.T, path string, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("x,y\n")
	for i := range n {
		if i == outlierRow {
			b.WriteString("40,-40\n")
			continue
		}
		cx, cy := -2.0, 0.0
		if rng.IntN(2) == 1 {
			cx, cy = 2, 1
		}
		fmt.Fprintf(&b, "%.6f,%.6f\n", cx+0.5*rng.NormFloat64(), cy+0.5*rng.NormFloat64())
	}
	writeFile(t, path, b.String())
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readCSV reads a whole CSV file (or text) into records.
func readCSV(t *testing.T, s string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(s)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, s)
	}
	return recs
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noTemps fails the test when dir holds a temporary file left by a write.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

// tinyFit are the flags of a fit that takes well under a second.
var tinyFit = []string{"--epochs", "8", "--layers", "2", "--hidden", "16,16", "--seed", "1"}

// fitTiny fits a tiny model to the mixture in dir and returns its path.
func fitTiny(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	writeMixture(t, filepath.Join(dir, "data.csv"), 400)
	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "model.flow"}, append(tinyFit, extra...)...)...)
	return filepath.Join(dir, "model.flow")
}

func TestFitSampleScorePlot(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "data.csv"), 400)

	// fit: flags after the file name; stderr is not a terminal, so no bar,
	// only the summary with the column order.
	r := mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "model.flow"}, tinyFit...)...)
	if !strings.Contains(r.stderr, "2 columns in this order: x, y") {
		t.Errorf("fit summary does not give the column order:\n%s", r.stderr)
	}
	if strings.Contains(r.stderr, "[") || r.stdout != "" {
		t.Errorf("fit drew a progress bar or wrote to stdout without a terminal:\nstdout %q\nstderr %q", r.stdout, r.stderr)
	}
	m, err := model.Load(filepath.Join(dir, "model.flow"))
	if err != nil {
		t.Fatalf("the model does not load: %v", err)
	}
	if m.Dim != 2 || m.Config.Kind != model.KindNSFCoupling || m.Config.Layers != 2 || m.Config.Seed != 1 {
		t.Errorf("model: dim %d, config %+v", m.Dim, m.Config)
	}
	if r := mustRun(t, dir, "fit", "data.csv", "-o", "quiet.flow", "--quiet", "--epochs", "1"); r.stderr != "" {
		t.Errorf("fit --quiet printed %q", r.stderr)
	}

	// sample: to a file, and to stdout.
	mustRun(t, dir, "sample", "model.flow", "-n", "123", "-o", "samples.csv")
	recs := readCSV(t, readText(t, filepath.Join(dir, "samples.csv")))
	if len(recs) != 124 || strings.Join(recs[0], ",") != "x,y" {
		t.Fatalf("samples.csv: %d records, header %v; want 124, the model's names x,y", len(recs), recs[0])
	}
	for i, rec := range recs[1:] {
		if len(rec) != 2 {
			t.Fatalf("sample %d has %d columns", i, len(rec))
		}
		for _, c := range rec {
			if v, err := strconv.ParseFloat(c, 64); err != nil || isInfOrNaN(v) {
				t.Fatalf("sample %d: %q is not a finite number", i, c)
			}
		}
	}
	r1 := mustRun(t, dir, "sample", "model.flow", "-n", "5", "--names", "x,y", "--seed", "3")
	r2 := mustRun(t, dir, "sample", "--seed", "3", "-n", "5", "--names", "x,y", "model.flow")
	r3 := mustRun(t, dir, "sample", "model.flow", "-n", "5", "--names", "x,y", "--seed", "4")
	if recs := readCSV(t, r1.stdout); len(recs) != 6 || strings.Join(recs[0], ",") != "x,y" {
		t.Errorf("sample to stdout:\n%s", r1.stdout)
	}
	if r1.stdout != r2.stdout || r1.stdout == r3.stdout {
		t.Errorf("the same seed should give the same rows, another seed others:\n%s\n%s\n%s", r1.stdout, r2.stdout, r3.stdout)
	}

	// score: every row in file order, then the least likely one.
	mustRun(t, dir, "score", "model.flow", "data.csv", "-o", "scores.csv")
	recs = readCSV(t, readText(t, filepath.Join(dir, "scores.csv")))
	if len(recs) != 401 || strings.Join(recs[0], ",") != "row,line,log_density,x,y" {
		t.Fatalf("scores.csv: %d records, header %v", len(recs), recs[0])
	}
	for i, rec := range recs[1:] {
		if rec[0] != strconv.Itoa(i) || rec[1] != strconv.Itoa(i+2) {
			t.Fatalf("score %d: row %s, line %s", i, rec[0], rec[1])
		}
		if v, err := strconv.ParseFloat(rec[2], 64); err != nil || isInfOrNaN(v) {
			t.Fatalf("score %d: log density %q", i, rec[2])
		}
	}
	r = mustRun(t, dir, "score", "model.flow", "data.csv", "--top", "1")
	recs = readCSV(t, r.stdout)
	if len(recs) != 2 || recs[1][0] != strconv.Itoa(outlierRow) || recs[1][3] != "40" {
		t.Errorf("score --top 1 should give the outlier, row %d:\n%s", outlierRow, r.stdout)
	}
	r = mustRun(t, dir, "score", "model.flow", "data.csv", "--top", "5")
	recs = readCSV(t, r.stdout)
	for i := 2; i < len(recs); i++ {
		a, _ := strconv.ParseFloat(recs[i-1][2], 64)
		b, _ := strconv.ParseFloat(recs[i][2], 64)
		if a > b {
			t.Errorf("score --top is not lowest first:\n%s", r.stdout)
		}
	}

	// plot: a PNG that decodes.
	mustRun(t, dir, "plot", "model.flow", "data.csv", "-o", "plot.png", "-n", "200")
	f, err := os.Open(filepath.Join(dir, "plot.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot.png does not decode: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
		t.Errorf("plot.png is %v", b)
	}
	noTemps(t, dir)
}

// TestKinds fits every kind for one epoch and scores with it.
func TestKinds(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "data.csv"), 200)
	for _, info := range model.Kinds() {
		k := info.Kind
		if k == model.KindImageGlow {
			continue // images: TestImageFitSample
		}
		t.Run(string(k), func(t *testing.T) {
			args := []string{"fit", "data.csv", "-o", string(k) + ".flow", "--kind", string(k),
				"--epochs", "1", "--layers", "1", "--hidden", "8", "--activation", "tanh", "--quiet"}
			if info.Splines {
				args = append(args, "--bins", "4", "--bound", "4")
			}
			mustRun(t, dir, args...)
			r := mustRun(t, dir, "score", string(k)+".flow", "data.csv", "--top", "3")
			if n := len(readCSV(t, r.stdout)); n != 4 {
				t.Errorf("score --top 3 gave %d records", n)
			}
		})
	}
}

// TestColumns fits two of three columns, picked by name, and scores and
// plots with the same pick by index.
func TestColumns(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("id;label;b;a\n")
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 120 {
		fmt.Fprintf(&b, "%d;cat%d;%.4f;%.4f\n", i, i%3, rng.NormFloat64(), 2+rng.NormFloat64())
	}
	writeFile(t, filepath.Join(dir, "d.csv"), b.String())
	r := mustRun(t, dir, append([]string{"fit", "d.csv", "--delimiter", ";", "--columns", "a,b", "-o", "m.flow"}, tinyFit...)...)
	if !strings.Contains(r.stderr, "in this order: a, b") {
		t.Errorf("fit summary: %s", r.stderr)
	}
	r = mustRun(t, dir, "score", "m.flow", "d.csv", "--delimiter", ";", "--columns", "3,2", "--top", "2")
	recs := readCSV(t, r.stdout)
	if strings.Join(recs[0], ",") != "row,line,log_density,a,b" || len(recs) != 3 {
		t.Errorf("score by index:\n%s", r.stdout)
	}
	mustRun(t, dir, "plot", "m.flow", "d.csv", "--delimiter", ";", "--columns", "a,b", "-o", "p.png", "--xlim", "-2,6", "--ylim=-4,4")
	mustRun(t, dir, "plot", "m.flow", "-o", "samples-only.png")
}

// TestStdin scores rows read from standard input ("-").
func TestStdin(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	cmd := exec.Command(flowsBin, "score", "model.flow", "-")
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("x,y\n0,0\n1,1\nabc,2\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err == nil || !strings.Contains(stderr.String(), `stdin:4: column 0 ("x"): "abc" is not a number`) {
		t.Errorf("score from stdin: %v, %q", err, stderr.String())
	}
}

// TestErrors runs failing commands: each must exit with status 1, name the
// file, line and column where there is one, and write nothing.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	rows := func(n int, bad map[int]string) string {
		var b strings.Builder
		b.WriteString("x,y\n")
		for line := 2; line < n+2; line++ {
			if s, ok := bad[line]; ok {
				b.WriteString(s + "\n")
				continue
			}
			fmt.Fprintf(&b, "%d.5,%d\n", line%7, line%5)
		}
		return b.String()
	}
	files := map[string]string{
		"bad.csv":       rows(30, map[int]string{17: "1.5,abc"}),
		"ragged.csv":    rows(30, map[int]string{5: "1,2,3"}),
		"empty.csv":     "",
		"blank.csv":     "\n\n",
		"nan.csv":       rows(10, map[int]string{3: "NaN,1"}),
		"inf.csv":       rows(10, map[int]string{4: "1,-Inf"}),
		"emptycell.csv": rows(10, map[int]string{6: "1,"}),
		"huge.csv":      rows(10, map[int]string{7: "1e999,1"}),
		"header.csv":    "x,y\n",
		"three.csv":     "a,b,c\n1,2,3\n4,5,6\n",
		"one.csv":       "a\n1\n2\n3\n",
		"quote.csv":     "x,y\n1,2\n3,\"4\n",
		"noheader.csv":  "1,2\n3,4\n",
		"single.csv":    "x,y\n1,2\n",
	}
	for name, s := range files {
		writeFile(t, filepath.Join(dir, name), s)
	}
	writeFile(t, filepath.Join(dir, "keep.csv"), "old contents\n")

	tests := []struct {
		args []string
		want []string // in stderr
		out  string   // an output that must not be written
	}{
		{[]string{"fit", "bad.csv", "-o", "new.flow"}, []string{`bad.csv:17: column 1 ("y"): "abc" is not a number`}, "new.flow"},
		{[]string{"score", "model.flow", "bad.csv", "-o", "new.csv"}, []string{`bad.csv:17: column 1 ("y"): "abc" is not a number`}, "new.csv"},
		{[]string{"score", "model.flow", "bad.csv", "-o", "keep.csv"}, []string{`bad.csv:17: column 1 ("y")`}, "keep.csv"},
		{[]string{"plot", "model.flow", "bad.csv", "-o", "new.png"}, []string{`bad.csv:17: column 1 ("y")`}, "new.png"},
		{[]string{"fit", "ragged.csv", "-o", "new.flow"}, []string{"ragged.csv:5: a row of 3 columns, but the first row (line 1) has 2"}, "new.flow"},
		{[]string{"fit", "empty.csv", "-o", "new.flow"}, []string{"empty.csv: the file is empty"}, "new.flow"},
		{[]string{"fit", "blank.csv", "-o", "new.flow"}, []string{"blank.csv: the file is empty"}, "new.flow"},
		{[]string{"fit", "nan.csv", "-o", "new.flow"}, []string{`nan.csv:3: column 0 ("x"): "NaN" is not a finite number`}, "new.flow"},
		{[]string{"fit", "inf.csv", "-o", "new.flow"}, []string{`inf.csv:4: column 1 ("y"): "-Inf" is not a finite number`}, "new.flow"},
		{[]string{"fit", "emptycell.csv", "-o", "new.flow"}, []string{`emptycell.csv:6: column 1 ("y"): empty cell`}, "new.flow"},
		{[]string{"fit", "huge.csv", "-o", "new.flow"}, []string{`huge.csv:7: column 0 ("x"): "1e999" is out of the range`}, "new.flow"},
		{[]string{"fit", "header.csv", "-o", "new.flow"}, []string{"header.csv:1: a header row but no data rows"}, "new.flow"},
		{[]string{"fit", "quote.csv", "-o", "new.flow"}, []string{"quote.csv:3:"}, "new.flow"},
		{[]string{"fit", "missing.csv", "-o", "new.flow"}, []string{"missing.csv"}, "new.flow"},
		{[]string{"score", "model.flow", "three.csv", "-o", "new.csv"}, []string{`three.csv:1: model.flow's columns: no column is named "x"; the header has "a", "b", "c"`}, "new.csv"},
		{[]string{"score", "model.flow", "three.csv", "--columns", "c", "-o", "new.csv"}, []string{`three.csv:1: --columns picks 1 column ("c"), but model.flow is a model of 2 columns; pick 2 with --columns`}, "new.csv"},
		{[]string{"plot", "model.flow", "three.csv", "-o", "new.png"}, []string{`three.csv:1: model.flow's columns: no column is named "x"`}, "new.png"},
		{[]string{"score", "model.flow", "noheader.csv", "-o", "new.png"}, []string{`noheader.csv:1: model.flow's columns "x": the file has no header row, so pick columns by 0-based index (0 to 1)`}, "new.png"},
		{[]string{"score", "model.flow", "three.csv", "--columns", "a,z", "-o", "new.csv"}, []string{`three.csv:1: --columns: no column is named "z"; the header has "a", "b", "c"`}, "new.csv"},
		{[]string{"score", "model.flow", "three.csv", "--columns", "a,5"}, []string{"three.csv:1: --columns 5: the file has 3 columns, 0 to 2"}, ""},
		{[]string{"score", "model.flow", "three.csv", "--columns", "a,0"}, []string{`three.csv:1: --columns picks column 0 ("a") twice`}, ""},
		{[]string{"score", "model.flow", "noheader.csv", "--columns", "x,y"}, []string{`noheader.csv:1: --columns "x": the file has no header row`}, ""},
		{[]string{"fit", "single.csv", "-o", "new.flow"}, []string{"single.csv: 1 data row: too few to hold out a validation fraction"}, "new.flow"},
		{[]string{"fit", "one.csv", "--kind", "realnvp", "-o", "new.flow"}, []string{"one.csv: 1 column", "needs at least 2 columns"}, "new.flow"},
		{[]string{"score", "bad.csv", "bad.csv", "-o", "new.csv"}, []string{"bad.csv", "not a model file"}, "new.csv"},
		{[]string{"score", "model.flow", "bad.csv", "-o", "bad.csv"}, []string{"the output bad.csv is the input bad.csv"}, ""},
		{[]string{"fit", "bad.csv", "-o", "bad.csv"}, []string{"the output bad.csv is the input bad.csv"}, ""},
		{[]string{"sample", "model.flow", "-n", "3", "--names", "a,b,c", "-o", "new.csv"}, []string{"--names gives 3 names, but model.flow is a model of 2 columns"}, "new.csv"},
		{[]string{"sample", "model.flow", "-n", "0", "-o", "new.csv"}, []string{"-n 0", "Run 'flows help sample'"}, "new.csv"},
		{[]string{"fit", "data.csv"}, []string{"no model file", "Run 'flows help fit'"}, ""},
		{[]string{"fit", "data.csv", "-o", "new.flow", "--kind", "nope"}, []string{`--kind "nope": want one of maf, realnvp`}, "new.flow"},
		{[]string{"fit", "data.csv", "-o", "new.flow", "--kind", "maf", "--bins", "4"}, []string{"--bins and --bound apply to the spline kinds only"}, "new.flow"},
		{[]string{"fit", "data.csv", "-o", "new.flow", "--hidden", "64,x"}, []string{"--hidden", "not a list of positive integers"}, "new.flow"},
		{[]string{"fit", "data.csv", "-o", "new.flow", "--nope"}, []string{"flag provided but not defined: --nope", "Run 'flows help fit'"}, "new.flow"},
		{[]string{"fit", "data.csv", "-o", "new.flow", "--epoch", "3"}, []string{"flag provided but not defined: --epoch; did you mean --epochs?", "Run 'flows help fit'"}, "new.flow"},
		{[]string{"fit", "data.csv", "other.csv", "-o", "new.flow"}, []string{"too many arguments: other.csv"}, "new.flow"},
		{[]string{"fit", "data.csv", "-o", "nodir/new.flow"}, []string{"cannot write nodir/new.flow"}, ""},
		{[]string{"plot", "model.flow", "data.csv", "-o", "new.gif"}, []string{"want a .png, .svg or .pdf file"}, "new.gif"},
		{[]string{"score", "model.flow"}, []string{"score needs model.flow data.csv"}, ""},
		{[]string{"frobnicate"}, []string{`unknown command "frobnicate"`}, ""},
		{nil, []string{"Usage:"}, ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var before string
			if tc.out == "keep.csv" {
				before = readText(t, filepath.Join(dir, tc.out))
			}
			r := flowsRun(t, dir, tc.args...)
			if r.code != 1 {
				t.Errorf("exit status %d, want 1", r.code)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not say %q:\n%s", w, r.stderr)
				}
			}
			if r.stdout != "" && tc.args != nil {
				t.Errorf("stdout: %q", r.stdout)
			}
			switch {
			case tc.out == "keep.csv":
				if after := readText(t, filepath.Join(dir, tc.out)); after != before {
					t.Errorf("%s changed to %q", tc.out, after)
				}
			case tc.out != "":
				if _, err := os.Stat(filepath.Join(dir, tc.out)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s was written (%v)", tc.out, err)
				}
			}
			noTemps(t, dir)
		})
	}
	if got := readText(t, filepath.Join(dir, "bad.csv")); got != files["bad.csv"] {
		t.Error("bad.csv was overwritten")
	}
}

// TestHelp checks that help goes to stdout with status 0.
func TestHelp(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"help"}, {"--help"}, {"help", "fit"}, {"fit", "-h"}, {"score", "--help"}, {"version"}} {
		r := flowsRun(t, dir, args...)
		if r.code != 0 || r.stdout == "" {
			t.Errorf("flows %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	r := mustRun(t, dir, "help", "fit")
	for _, w := range []string{"--kind", "--columns", "--patience", "-o file", "(default 64,64)"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("flows help fit does not mention %q:\n%s", w, r.stdout)
		}
	}
}

// TestAtomicReplace checks that a successful write replaces an existing
// output whole and keeps its mode.
func TestAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	out := filepath.Join(dir, "s.csv")
	writeFile(t, out, strings.Repeat("old\n", 1000))
	if err := os.Chmod(out, 0o640); err != nil {
		t.Fatal(err)
	}
	mustRun(t, dir, "sample", "model.flow", "-n", "3", "-o", "s.csv")
	if recs := readCSV(t, readText(t, out)); len(recs) != 4 {
		t.Errorf("s.csv has %d records after the replace", len(recs))
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after replace: %v, %v", fi.Mode(), err)
	}
	noTemps(t, dir)
}
