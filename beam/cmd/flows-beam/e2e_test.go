package main

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"
)

// The binaries under test, built by TestMain: flows-beam and, as the
// reference, the flows tool of the repository.
var beamBin, flowsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flows-beam-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	beamBin, flowsBin = filepath.Join(dir, "flows-beam"), filepath.Join(dir, "flows")
	for _, b := range []struct{ out, pkg, dir string }{{beamBin, ".", "."}, {flowsBin, "./cmd/flows", "../../.."}} {
		build := exec.Command("go", "build", "-o", b.out, b.pkg)
		build.Dir = b.dir
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", b.pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a run of a binary gave.
type result struct {
	stdout, stderr string
	code           int
}

// runBin runs bin with args in dir.
func runBin(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
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
		t.Fatalf("%s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// mustRun runs bin and fails the test unless it succeeds.
func mustRun(t *testing.T, bin, dir string, args ...string) result {
	t.Helper()
	r := runBin(t, bin, dir, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", filepath.Base(bin), strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// writeShards writes n rows "a,b,c" in shards files part-S.csv of dir and
// all.csv, the same rows under one header.
func writeShards(t *testing.T, dir string, n, shards int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 4))
	rows := make([]string, n)
	for i := range rows {
		x := rng.NormFloat64()
		rows[i] = fmt.Sprintf("%v,%v,%v", x, x*x+0.3*rng.NormFloat64(), rng.ExpFloat64())
	}
	write(t, filepath.Join(dir, "all.csv"), "a,b,c\n"+strings.Join(rows, "\n")+"\n")
	for s := range shards {
		write(t, filepath.Join(dir, fmt.Sprintf("part-%d.csv", s)), "a,b,c\n"+strings.Join(rows[s*n/shards:(s+1)*n/shards], "\n")+"\n")
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRecords(t *testing.T, text string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v\n%s", err, text)
	}
	return recs
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// shards returns the records of the shards of prefix, without their
// headers, and the header.
func shards(t *testing.T, prefix string) ([]string, [][]string) {
	t.Helper()
	files, _ := filepath.Glob(prefix + "-*-of-*.csv")
	if len(files) == 0 {
		t.Fatalf("no shards of %s", prefix)
	}
	var header []string
	var recs [][]string
	for _, f := range files {
		r := readRecords(t, readFile(t, f))
		header = r[0]
		recs = append(recs, r[1:]...)
	}
	return header, recs
}

// noFiles fails the test when dir holds anything but the names keep.
func noFiles(t *testing.T, dir string, keep ...string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !slices.Contains(keep, e.Name()) {
			t.Errorf("%s was left in %s", e.Name(), dir)
		}
	}
}

// setup writes 3000 rows in 3 shards and fits a model to them.
func setup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeShards(t, dir, 3000, 3)
	mustRun(t, flowsBin, dir, "fit", "all.csv", "-o", "model.flow", "--layers", "2", "--hidden", "16,16", "--epochs", "3", "--quiet")
	return dir
}

// byLine maps the rows of flows score's output to all.csv's lines.
func byLine(t *testing.T, out string) map[int]string {
	t.Helper()
	m := map[int]string{}
	for _, r := range readRecords(t, out)[1:] {
		line, _ := strconv.ParseFloat(r[1], 64)
		m[int(line)] = strings.Join(r[2:], ",")
	}
	return m
}

// allLine is the line of all.csv of line of part-S.csv (3000 rows in 3).
func allLine(t *testing.T, file string, line int) int {
	t.Helper()
	s, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "part-"), ".csv"))
	if err != nil {
		t.Fatalf("file %q", file)
	}
	return s*1000 + line
}

func TestScore(t *testing.T) {
	dir := setup(t)
	r := mustRun(t, beamBin, dir, "score", "model.flow", "part-*.csv", "-o", "out/scores", "--cpuprofile", "cpu.prof")
	checkProfile(t, filepath.Join(dir, "cpu.prof"))
	if !strings.Contains(r.stderr, "read 3000 good rows and 0 bad rows from 3 files\n") ||
		!strings.Contains(r.stderr, "wrote 3000 scored rows in ") || r.stdout != "" {
		t.Errorf("log:\n%s", r.stderr)
	}
	want := byLine(t, mustRun(t, flowsBin, dir, "score", "model.flow", "all.csv").stdout)
	header, recs := shards(t, filepath.Join(dir, "out", "scores"))
	if strings.Join(header, ",") != "file,row,line,log_density,a,b,c" || len(recs) != 3000 {
		t.Fatalf("header %q, %d rows", header, len(recs))
	}
	for _, rec := range recs {
		line := allLine(t, rec[0], atoi(t, rec[2]))
		if got := strings.Join(rec[3:], ","); got != want[line] {
			t.Fatalf("%s line %s: %s; flows score: %s", rec[0], rec[2], got, want[line])
		}
	}
	noFiles(t, filepath.Join(dir, "out"), "scores-00000-of-00001.csv", "scores-00000-of-00002.csv", "scores-00001-of-00002.csv",
		"scores-00000-of-00003.csv", "scores-00001-of-00003.csv", "scores-00002-of-00003.csv")
}

// checkProfile checks that path holds a CPU profile as runtime/pprof
// writes one: a gzip stream of a non-empty protocol buffer.
func checkProfile(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("--cpuprofile: %v", err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("--cpuprofile: %s is not gzip: %v", path, err)
	}
	b, err := io.ReadAll(z)
	if err != nil || len(b) == 0 {
		t.Fatalf("--cpuprofile: %s: %d bytes, %v", path, len(b), err)
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not an integer", s)
	}
	return n
}

// TestBadRow checks that a bad row fails the run with flows score's error
// and leaves no output, and that --dead-letter writes it with the reason.
func TestBadRow(t *testing.T) {
	dir := setup(t)
	write(t, filepath.Join(dir, "part-9.csv"), "a,b,c\n1,2,3\n4,x,6\n7,8,9\n")
	r := runBin(t, beamBin, dir, "score", "model.flow", "part-*.csv", "-o", "out/scores")
	cli := runBin(t, flowsBin, dir, "score", "model.flow", "part-9.csv")
	wantMsg := strings.TrimPrefix(cli.stderr, "flows score: ")
	if r.code != 1 || r.stderr != "flows-beam score: "+wantMsg || !strings.HasPrefix(wantMsg, `part-9.csv:3: column 1 ("b"): "x" is not a number`) {
		t.Errorf("exit %d, stderr %q; want 1 and flows score's %q", r.code, r.stderr, wantMsg)
	}
	noFiles(t, filepath.Join(dir, "out"))

	r = mustRun(t, beamBin, dir, "score", "model.flow", "part-*.csv", "-o", "out/scores", "--dead-letter", "out/bad")
	if !strings.Contains(r.stderr, "read 3002 good rows and 1 bad row from 4 files\n") || !strings.Contains(r.stderr, "wrote 1 bad row in 1 shard of out/bad\n") {
		t.Errorf("log:\n%s", r.stderr)
	}
	dead := readRecords(t, readFile(t, filepath.Join(dir, "out", "bad-00000-of-00001.csv")))
	if want := [][]string{{"file", "line", "reason"}, {"part-9.csv", "3", strings.TrimSuffix(wantMsg, "\n")}}; fmt.Sprint(dead) != fmt.Sprint(want) {
		t.Errorf("dead letters %q, want %q", dead, want)
	}
	if _, recs := shards(t, filepath.Join(dir, "out", "scores")); len(recs) != 3002 {
		t.Errorf("%d scored rows, want 3002", len(recs))
	}
}

// TestNoGoodRows: an input without good rows fails once the run is done,
// from the counts (the pipeline itself does not fail for an empty output,
// so that the error of a bad row is always the one reported: TestBadRow),
// and says whether rows were bad; an earlier output is left as it was.
func TestNoGoodRows(t *testing.T) {
	dir := setup(t)
	mustRun(t, beamBin, dir, "score", "model.flow", "part-0.csv", "-o", "out/scores")
	_, before := shards(t, filepath.Join(dir, "out", "scores"))
	write(t, filepath.Join(dir, "empty-0.csv"), "a,b,c\n")
	write(t, filepath.Join(dir, "bad-0.csv"), "a,b,c\n1,x,3\n4,5,y\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"empty-*.csv"}, "flows-beam score: no scored rows to write to out/scores: the input has no data rows\n"},
		{[]string{"bad-*.csv", "--dead-letter", "out/bad"}, "flows-beam score: no scored rows to write to out/scores: every data row was bad (2 rows in out/bad)\n"},
	} {
		r := runBin(t, beamBin, dir, append([]string{"score", "model.flow", "-o", "out/scores"}, tc.args...)...)
		if r.code != 1 || !strings.HasSuffix(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
		if _, after := shards(t, filepath.Join(dir, "out", "scores")); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%v: the earlier output's %d rows became %d", tc.args, len(before), len(after))
		}
	}
}

// TestCorruptModel checks that a damaged model fails at once with the
// message flows gives.
func TestCorruptModel(t *testing.T) {
	dir := setup(t)
	b := []byte(readFile(t, filepath.Join(dir, "model.flow")))
	b[len(b)-10] ^= 1
	write(t, filepath.Join(dir, "bad.flow"), string(b))
	r := runBin(t, beamBin, dir, "score", "bad.flow", "part-*.csv", "-o", "out/scores")
	cli := runBin(t, flowsBin, dir, "score", "bad.flow", "all.csv")
	if r.code != 1 || r.stderr != "flows-beam score: "+strings.TrimPrefix(cli.stderr, "flows score: ") || !strings.Contains(r.stderr, "checksum mismatch") {
		t.Errorf("exit %d, stderr %q; flows score: %q", r.code, r.stderr, cli.stderr)
	}
	noFiles(t, dir, "all.csv", "part-0.csv", "part-1.csv", "part-2.csv", "model.flow", "bad.flow")
}

func TestTop(t *testing.T) {
	dir := setup(t)
	mustRun(t, beamBin, dir, "score", "model.flow", "part-*.csv", "-o", "top.csv", "--top", "5")
	want := readRecords(t, mustRun(t, flowsBin, dir, "score", "model.flow", "all.csv", "--top", "5").stdout)
	got := readRecords(t, readFile(t, filepath.Join(dir, "top.csv")))
	if len(got) != 6 || len(want) != 6 {
		t.Fatalf("%d and %d rows", len(got)-1, len(want)-1)
	}
	for i := 1; i < 6; i++ {
		line := allLine(t, got[i][0], atoi(t, got[i][2]))
		if strconv.Itoa(line) != want[i][1] || strings.Join(got[i][3:], ",") != strings.Join(want[i][2:], ",") {
			t.Errorf("row %d: %q; flows score --top: %q", i, got[i], want[i])
		}
	}
	r := runBin(t, beamBin, dir, "score", "model.flow", "part-*.csv", "-o", "top.csv", "--top", "5", "--top-by", "z")
	if r.code != 1 || !strings.Contains(r.stderr, `--top-by "z": not a column the model reads`) {
		t.Errorf("--top-by z: exit %d, %s", r.code, r.stderr)
	}
}

func TestSample(t *testing.T) {
	dir := setup(t)
	r := mustRun(t, beamBin, dir, "sample", "model.flow", "-n", "9000", "--seed", "7", "--shards", "2", "-o", "s")
	if r.stderr != "wrote 9000 rows in 2 shards of s\n" {
		t.Errorf("log %q", r.stderr)
	}
	want := mustRun(t, flowsBin, dir, "sample", "model.flow", "-n", "9000", "--seed", "7").stdout
	_, second, _ := strings.Cut(readFile(t, filepath.Join(dir, "s-00001-of-00002.csv")), "\n")
	if got := readFile(t, filepath.Join(dir, "s-00000-of-00002.csv")) + second; got != want {
		t.Errorf("the shards are not flows sample's rows")
	}
}

func TestEvaluate(t *testing.T) {
	dir := setup(t)
	r := mustRun(t, beamBin, dir, "evaluate", "model.flow", "part-*.csv", "-o", "eval.json", "--bin-width", "1")
	var e struct {
		Rows int64   `json:"rows"`
		Mean float64 `json:"mean_log_density"`
		Bins []struct {
			Lo    float64 `json:"lo"`
			Count int64   `json:"count"`
		} `json:"bins"`
	}
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(dir, "eval.json"))), &e); err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, b := range e.Bins {
		n += b.Count
	}
	if e.Rows != 3000 || n != 3000 || !strings.HasPrefix(r.stdout, fmt.Sprintf("3000 rows: mean log density %v nats (min ", e.Mean)) {
		t.Errorf("evaluation %+v, stdout %q", e, r.stdout)
	}
}

func TestSweep(t *testing.T) {
	dir := setup(t)
	if err := os.Mkdir(filepath.Join(dir, "val"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeShards(t, filepath.Join(dir, "val"), 500, 2)
	r := mustRun(t, beamBin, dir, "sweep", "part-*.csv", "--validation", "val/part-*.csv", "--kind", "maf,realnvp",
		"--layers", "1,2", "--hidden", "8;16,16", "--epochs", "2", "-o", "best.flow", "--report", "trials.csv")
	if !strings.Contains(r.stderr, "fitting 8 configurations to part-*.csv\n") || !strings.Contains(r.stderr, "<- chosen") {
		t.Errorf("log:\n%s", r.stderr)
	}
	recs := readRecords(t, readFile(t, filepath.Join(dir, "trials.csv")))
	chosen := -1
	for i, rec := range recs[1:] {
		if rec[15] == "1" {
			chosen = i
		}
	}
	m, err := model.Load(filepath.Join(dir, "best.flow"))
	if len(recs) != 9 || chosen < 0 || err != nil || string(m.Config.Kind) != recs[chosen+1][1] || strconv.Itoa(m.Config.Layers) != recs[chosen+1][2] {
		t.Errorf("report %q, model %v (%v)", recs, m, err)
	}
	r = runBin(t, beamBin, dir, "sweep", "part-*.csv", "--validation", "val/part-*.csv", "--kind", "nope", "-o", "x.flow")
	if r.code != 1 || !strings.Contains(r.stderr, `--kind "nope": want some of maf`) {
		t.Errorf("--kind nope: exit %d, %s", r.code, r.stderr)
	}
}

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help", "score"}, 0, "--dead-letter prefix"},
		{[]string{"help", "score"}, 0, "--cpuprofile file\n    \twrite a CPU profile of the run"},
		{[]string{"score", "m.flow", "x.csv", "-o", "p", "--cpuprofile", "no/such/dir/cpu.prof"}, 1, "--cpuprofile: open no/such/dir/cpu.prof: no such file or directory"},
		{[]string{"help"}, 0, "flows-beam score model.flow 'data-*.csv' -o scores"},
		{[]string{"score", "m.flow"}, 1, "flows-beam score: score needs model.flow glob... -o prefix\nRun 'flows-beam help score' for usage.\n"},
		{[]string{"score", "m.flow", "x.csv"}, 1, "no output: give a prefix with -o"},
		{[]string{"score", "m.flow", "x.csv", "-o", "p", "--nope"}, 1, "flag provided but not defined: --nope"},
		{[]string{"score", "missing.flow", "x.csv", "-o", "p"}, 1, "missing.flow: no such file or directory"},
		{[]string{"frob"}, 1, `unknown command "frob"`},
		{[]string{"version"}, 0, "flows-beam "},
		{[]string{"sweep", "x.csv", "--validation", "v.csv", "--layers", "2,100000000", "-o", "b.flow"}, 1, "--layers 100000000: the model would hold"},
		{[]string{"sweep", "x.csv", "--validation", "v.csv", "--hidden", "8;64,100000000", "-o", "b.flow"}, 1, "--hidden 64,100000000: the model would hold"},
	} {
		r := runBin(t, beamBin, dir, c.args...)
		if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
			t.Errorf("%q: exit %d\n%s%s\nwant %d and %q", c.args, r.code, r.stdout, r.stderr, c.code, c.want)
		}
	}
}
