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

// copyFixture copies testdata/tables/name into dir.
func copyFixture(t *testing.T, dir, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "tables", name))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name), string(b))
}

// TestIris: a table shaped like R's write.csv(iris) fits with no flags
// (row numbers left out, Species a category), and samples carry the three
// species in roughly their proportions (a third each).
func TestIris(t *testing.T) {
	dir := t.TempDir()
	copyFixture(t, dir, "iris.csv")
	r := mustRun(t, dir, "fit", "iris.csv", "-o", "iris.flow", "--epochs", "10", "--seed", "2")
	for _, want := range []string{"left out column 0: no name and a distinct whole number in every row", "categorical: Species (3 levels)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("fit does not say %q:\n%s", want, r.stderr)
		}
	}
	r = mustRun(t, dir, "sample", "iris.flow", "-n", "900", "--seed", "5")
	recs := readCSV(t, r.stdout)
	if strings.Join(recs[0], ",") != "Sepal.Length,Sepal.Width,Petal.Length,Petal.Width,Species" {
		t.Fatalf("sample's header: %v", recs[0])
	}
	count := map[string]int{}
	for _, rec := range recs[1:] {
		count[rec[4]]++
	}
	for _, s := range []string{"setosa", "versicolor", "virginica"} {
		if count[s] < 240 || count[s] > 360 {
			t.Errorf("%d of 900 samples are %s; want about 300: %v", count[s], s, count)
		}
	}
	// The corner plot colours the points by species; the server says it
	// does not serve categories yet.
	mustRun(t, dir, "plot", "iris.flow", "iris.csv", "-o", "iris.png", "-n", "300")
	if fi, err := os.Stat(filepath.Join(dir, "iris.png")); err != nil || fi.Size() == 0 {
		t.Errorf("plot of a mixed model: %v", err)
	}
	// flows serve of a mixed model: TestServeMixed.

	// Scoring reads the levels; an unseen one is an error naming its line.
	mustRun(t, dir, "score", "iris.flow", "iris.csv", "-o", "scores.csv")
	data := readText(t, filepath.Join(dir, "iris.csv"))
	writeFile(t, filepath.Join(dir, "new.csv"), strings.Replace(data, `"setosa"`, `"setosaa"`, 1))
	if r := flowsRun(t, dir, "score", "iris.flow", "new.csv"); r.code != 1 || !strings.Contains(r.stderr, `new.csv:2: column "Species": level "setosaa" was not in the model's training rows`) {
		t.Errorf("an unseen level: exit %d, %s", r.code, r.stderr)
	}
}

// TestAirquality: rows with NA are an error that points to --missing skip;
// with it, the 42 rows are skipped, counted and written to --rejects, in
// fit and in score.
func TestAirquality(t *testing.T) {
	dir := t.TempDir()
	copyFixture(t, dir, "airquality.csv")
	r := flowsRun(t, dir, "fit", "airquality.csv", "-o", "aq.flow")
	if r.code != 1 || !strings.Contains(r.stderr, `airquality.csv:3: column 1 ("Ozone"): "NA" is not a number; it marks a missing value: leave such rows out with --missing skip`) {
		t.Errorf("NA without --missing: exit %d, %s", r.code, r.stderr)
	}
	r = mustRun(t, dir, "fit", "airquality.csv", "-o", "aq.flow", "--missing", "skip", "--rejects", "rejects.csv", "--epochs", "3")
	if !strings.Contains(r.stderr, "skipped 42 of 153 rows with a missing value; listed in rejects.csv") {
		t.Errorf("fit does not count the skipped rows:\n%s", r.stderr)
	}
	recs := readCSV(t, readText(t, filepath.Join(dir, "rejects.csv")))
	if len(recs) != 43 || strings.Join(recs[0], ",") != "file,line,reason" || recs[1][0] != "airquality.csv" || recs[1][1] != "3" {
		t.Errorf("rejects.csv: %d records, %v %v", len(recs), recs[0], recs[1])
	}
	r = mustRun(t, dir, "score", "aq.flow", "airquality.csv", "--missing", "skip", "-o", "scores.csv")
	if !strings.Contains(r.stderr, "skipped 42 of 153 rows") {
		t.Errorf("score does not count the skipped rows:\n%s", r.stderr)
	}
	if recs := readCSV(t, readText(t, filepath.Join(dir, "scores.csv"))); len(recs) != 112 || recs[1][0] != "0" || recs[2][0] != "2" {
		t.Errorf("scores.csv: %d records; rows %v, %v (row 1 is skipped)", len(recs), recs[1][:2], recs[2][:2])
	}
	if r := flowsRun(t, dir, "fit", "airquality.csv", "-o", "x.flow", "--rejects", "r.csv"); r.code != 1 || !strings.Contains(r.stderr, "give --missing skip too") {
		t.Errorf("--rejects alone: exit %d, %s", r.code, r.stderr)
	}
}

// TestKeep: score --keep carries the row names of an mtcars-shaped table
// into the output and into --top; fit leaves them out by itself.
func TestKeep(t *testing.T) {
	dir := t.TempDir()
	copyFixture(t, dir, "mtcars.csv")
	r := mustRun(t, dir, "fit", "mtcars.csv", "-o", "cars.flow", "--epochs", "2")
	for _, want := range []string{"left out column 0: text with 32 distinct values, taken for identifiers; carry it with --keep",
		"only 3 validation rows choose the epoch", "parameters for 32 rows of 11 columns (352 numbers): far more than such a table pins down"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("fit does not say %q:\n%s", want, r.stderr)
		}
	}
	r = mustRun(t, dir, "score", "cars.flow", "mtcars.csv", "--keep", "0", "--top", "3")
	recs := readCSV(t, r.stdout)
	if len(recs) != 4 || strings.Join(recs[0][:5], ",") != "row,line,log_density,x0,mpg" {
		t.Fatalf("score --keep --top:\n%s", r.stdout)
	}
	names := readText(t, filepath.Join(dir, "mtcars.csv"))
	for _, rec := range recs[1:] {
		if !strings.Contains(names, `"`+rec[3]+`",`) || rec[3] == "" {
			t.Errorf("kept name %q is not a row name of the file", rec[3])
		}
	}
}
