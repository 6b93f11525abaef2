package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHeaderless fits a file without a header row, then scores and samples
// other headerless files with the model: its columns are x0, x1, … by
// position, so the same kind of file works without --columns.
func TestHeaderless(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "named.csv"), 300)
	named := readText(t, filepath.Join(dir, "named.csv"))
	// The mixture's rows with a third column, a context, and no header.
	var b strings.Builder
	for i, line := range strings.Split(strings.TrimSpace(named), "\n")[1:] {
		b.WriteString(line)
		b.WriteString([]string{",0\n", ",1\n"}[i%2])
	}
	writeFile(t, filepath.Join(dir, "plain.csv"), b.String())
	mustRun(t, dir, append([]string{"fit", "plain.csv", "-o", "plain.flow", "--columns", "0,1"}, tinyFit...)...)
	r := mustRun(t, dir, "score", "plain.flow", "plain.csv", "--top", "1")
	recs := readCSV(t, r.stdout)
	if len(recs) != 2 || strings.Join(recs[0], ",") != "row,line,log_density,x0,x1" || recs[1][0] != "137" {
		t.Errorf("score of a headerless file by the headerless model:\n%s", r.stdout)
	}

	// Conditional: the context column is x2 by position, in the fit and in
	// sample --contexts of a file shaped like the training file.
	mustRun(t, dir, append([]string{"fit", "plain.csv", "-o", "cond.flow", "--context", "2"}, tinyFit...)...)
	mustRun(t, dir, "score", "cond.flow", "plain.csv", "-o", "cond_scores.csv")
	if err := os.WriteFile(filepath.Join(dir, "ctx.csv"), []byte("0,0,1\n0,0,0\n0,0,1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, dir, "sample", "cond.flow", "--contexts", "ctx.csv")
	if recs := readCSV(t, r.stdout); len(recs) != 4 {
		t.Errorf("sample --contexts of a headerless file: want a header and 3 rows:\n%s", r.stdout)
	}
}

// TestLatin1Header: a header that is not UTF-8 (a spreadsheet's Latin-1
// export) is read as Latin-1, so the model finds its columns again in its
// own training file.
func TestLatin1Header(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "named.csv"), 200)
	data := strings.Replace(readText(t, filepath.Join(dir, "named.csv")), "x,y", "caf\xe9,y", 1)
	writeFile(t, filepath.Join(dir, "latin1.csv"), data)
	r := mustRun(t, dir, append([]string{"fit", "latin1.csv", "-o", "m.flow"}, tinyFit...)...)
	if !strings.Contains(r.stderr, "café, y") {
		t.Errorf("fit does not name the column café:\n%s", r.stderr)
	}
	mustRun(t, dir, "score", "m.flow", "latin1.csv", "-o", "scores.csv")
}
