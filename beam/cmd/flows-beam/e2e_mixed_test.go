package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestMixed runs a model of a mixed table (iris: four numbers and
// Species) through score and sample: levels are read as text and written
// back, scores are flows score's bit for bit, an unseen level is a bad row
// with flows score's error (failing the run, or in the dead letters), and
// samples are flows sample's rows with their levels.
func TestMixed(t *testing.T) {
	dir := t.TempDir()
	iris := strings.Split(strings.TrimSpace(readFile(t, filepath.Join("..", "..", "..", "cmd", "flows", "testdata", "tables", "iris.csv"))), "\n")
	write(t, filepath.Join(dir, "iris.csv"), strings.Join(iris, "\n")+"\n")
	mustRun(t, flowsBin, dir, "fit", "iris.csv", "-o", "iris.flow", "--epochs", "3", "--layers", "2", "--hidden", "8", "--seed", "4", "--quiet")
	header, rows := iris[0], iris[1:]
	write(t, filepath.Join(dir, "mixed-0.csv"), header+"\n"+strings.Join(rows[:70], "\n")+"\n")
	write(t, filepath.Join(dir, "mixed-1.csv"), header+"\n"+strings.Join(rows[70:], "\n")+"\n")
	write(t, filepath.Join(dir, "bad-0.csv"), header+"\n"+rows[0]+"\n"+`"151",5,3,1,0.2,"rose"`+"\n"+rows[1]+"\n")

	// flows score's records, by file and line.
	want := map[string]string{}
	for _, f := range []string{"mixed-0.csv", "mixed-1.csv"} {
		for _, r := range readRecords(t, mustRun(t, flowsBin, dir, "score", "iris.flow", f).stdout)[1:] {
			want[f+":"+r[1]] = strings.Join(r[2:], ",")
		}
	}
	cli := runBin(t, flowsBin, dir, "score", "iris.flow", "bad-0.csv")
	wantMsg := strings.TrimPrefix(cli.stderr, "flows score: ")
	if !strings.HasPrefix(wantMsg, `bad-0.csv:3: column "Species": level "rose" was not in the model's training rows`) {
		t.Fatalf("flows score: %q", cli.stderr)
	}

	r := mustRun(t, beamBin, dir, "score", "iris.flow", "mixed-*.csv", "-o", "out/scores")
	h, recs := shards(t, filepath.Join(dir, "out", "scores"))
	if fmt.Sprint(h) != "[file row line log_density Sepal.Length Sepal.Width Petal.Length Petal.Width Species]" || len(recs) != 150 {
		t.Fatalf("header %q, %d rows; log:\n%s", h, len(recs), r.stderr)
	}
	for _, rec := range recs {
		key := filepath.Base(rec[0]) + ":" + rec[2]
		if got := strings.Join(rec[3:], ","); got != want[key] {
			t.Errorf("%s: %s, flows score %s", key, got, want[key])
		}
	}

	// An unseen level: the run fails with flows score's error, or the row
	// goes to the dead letters with it.
	r = runBin(t, beamBin, dir, "score", "iris.flow", "bad-*.csv", "-o", "out/bad-scores")
	if r.code != 1 || r.stderr != "flows-beam score: "+wantMsg {
		t.Errorf("exit %d, stderr %q; want flows score's %q", r.code, r.stderr, wantMsg)
	}
	r = mustRun(t, beamBin, dir, "score", "iris.flow", "mixed-*.csv", "bad-*.csv", "-o", "out/scores", "--dead-letter", "out/dead")
	if !strings.Contains(r.stderr, "read 152 good rows and 1 bad row from 3 files\n") {
		t.Errorf("log:\n%s", r.stderr)
	}
	dead := readRecords(t, readFile(t, filepath.Join(dir, "out", "dead-00000-of-00001.csv")))
	if w := [][]string{{"file", "line", "reason"}, {"bad-0.csv", "3", strings.TrimSuffix(wantMsg, "\n")}}; fmt.Sprint(dead) != fmt.Sprint(w) {
		t.Errorf("dead letters %q, want %q", dead, w)
	}

	// Samples: flows sample's rows, levels included.
	mustRun(t, beamBin, dir, "sample", "iris.flow", "-n", "5000", "--seed", "3", "--shards", "2", "-o", "s")
	_, second, _ := strings.Cut(readFile(t, filepath.Join(dir, "s-00001-of-00002.csv")), "\n")
	got := readFile(t, filepath.Join(dir, "s-00000-of-00002.csv")) + second
	if w := mustRun(t, flowsBin, dir, "sample", "iris.flow", "-n", "5000", "--seed", "3").stdout; got != w {
		t.Errorf("the shards are not flows sample's rows:\n%.300s\nflows sample:\n%.300s", got, w)
	}

	// --top: flows score --top's file, levels included, with Beam's first
	// column "file" (one input file, so row and line are flows score's).
	mustRun(t, beamBin, dir, "score", "iris.flow", "iris.csv", "--top", "3", "-o", "top.csv")
	var topLines []string
	for _, line := range strings.SplitAfter(readFile(t, filepath.Join(dir, "top.csv")), "\n") {
		if line != "" {
			_, rest, _ := strings.Cut(line, ",")
			topLines = append(topLines, rest)
		}
	}
	if w := mustRun(t, flowsBin, dir, "score", "iris.flow", "iris.csv", "--top", "3").stdout; strings.Join(topLines, "") != w || len(topLines) != 4 || !strings.HasSuffix(topLines[0], ",Species\n") {
		t.Errorf("--top 3 without its file column:\n%s\nflows score --top 3:\n%s", strings.Join(topLines, ""), w)
	}
	// Over two files, per file: each file's 3 lowest with their levels.
	mustRun(t, beamBin, dir, "score", "iris.flow", "mixed-*.csv", "--top", "3", "--top-by", "file", "-o", "top-by.csv")
	top := readRecords(t, readFile(t, filepath.Join(dir, "top-by.csv")))
	if len(top) != 7 || fmt.Sprint(top[0]) != "[key file row line log_density Sepal.Length Sepal.Width Petal.Length Petal.Width Species]" {
		t.Fatalf("--top-by file: %q", top)
	}
	for _, rec := range top[1:] {
		key := filepath.Base(rec[1]) + ":" + rec[3]
		if got := strings.Join(rec[4:], ","); got != want[key] {
			t.Errorf("--top-by file %s: %s, flows score %s", key, got, want[key])
		}
	}
	// Grouping by a categorical column is refused with a message that says so.
	if r := runBin(t, beamBin, dir, "score", "iris.flow", "mixed-*.csv", "--top", "3", "--top-by", "Species", "-o", "x.csv"); r.code != 1 || !strings.Contains(r.stderr, `--top-by "Species": a categorical column cannot group --top yet`) {
		t.Errorf("--top-by Species: exit %d, %q", r.code, r.stderr)
	}
}
