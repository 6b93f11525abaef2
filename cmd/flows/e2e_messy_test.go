package main

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"
)

// writeMessy writes n rows of columns a (continuous), k (counts 0…9) and
// p (proportions in (0, 1)), and, with extra, a constant column c; edit
// changes row i's cells before it is written.
func writeMessy(t *testing.T, path string, n int, extra bool, edit func(i int, cells []string)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	var b strings.Builder
	b.WriteString("a,k,p")
	if extra {
		b.WriteString(",c")
	}
	b.WriteString("\n")
	for i := range n {
		z := rng.NormFloat64()
		cells := []string{
			strconv.FormatFloat(2*z+0.3*rng.NormFloat64(), 'g', 6, 64),
			strconv.Itoa(min(9, int(math.Abs(3*z+rng.NormFloat64())))),
			strconv.FormatFloat(1/(1+math.Exp(-z-0.5*rng.NormFloat64())), 'g', 6, 64),
		}
		if extra {
			cells = append(cells, "7")
		}
		if edit != nil {
			edit(i, cells)
		}
		b.WriteString(strings.Join(cells, ",") + "\n")
	}
	writeFile(t, path, b.String())
}

// TestMessyData runs flows fit on each kind of messy table and checks the
// message it gives.
func TestMessyData(t *testing.T) {
	dir := t.TempDir()
	writeMessy(t, filepath.Join(dir, "const.csv"), 300, true, nil)
	writeMessy(t, filepath.Join(dir, "messy.csv"), 300, false, nil)
	writeMessy(t, filepath.Join(dir, "far.csv"), 300, false, func(i int, c []string) {
		if i == 42 {
			c[0] = "1e6"
		}
	})
	writeMessy(t, filepath.Join(dir, "dups.csv"), 300, false, func(i int, c []string) {
		if i%3 == 0 {
			copy(c, []string{"1", "2", "0.5"})
		}
	})
	writeMessy(t, filepath.Join(dir, "total.csv"), 300, false, func(i int, c []string) {
		a, _ := strconv.ParseFloat(c[0], 64)
		k, _ := strconv.Atoi(c[1])
		c[2] = strconv.FormatFloat(a+2*float64(k), 'g', 8, 64)
	})
	writeMessy(t, filepath.Join(dir, "outside.csv"), 300, false, func(i int, c []string) {
		if i == 9 {
			c[2] = "1.5"
		}
	})
	quick := []string{"--epochs", "3", "--layers", "1", "--hidden", "8"}
	fit := func(file string, extra ...string) result {
		return flowsRun(t, dir, append(append([]string{"fit", file, "-o", strings.TrimSuffix(file, ".csv") + ".flow"}, quick...), extra...)...)
	}

	// A constant column: refused, naming it, and nothing written; dropped
	// with --drop-constant.
	r := fit("const.csv")
	if r.code != 1 || !strings.Contains(r.stderr, `const.csv: column "c" is constant (every row is 7): it has no density; drop it with --drop-constant, or leave it out of --columns`) {
		t.Errorf("constant column: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "const.flow")); err == nil {
		t.Error("a model was written for a table with a constant column")
	}
	r = fit("const.csv", "--drop-constant")
	if r.code != 0 || !strings.Contains(r.stderr, `dropped column "c" is constant (every row is 7): it has no density`) {
		t.Errorf("--drop-constant: exit %d\n%s", r.code, r.stderr)
	}
	if m, err := model.Load(filepath.Join(dir, "const.flow")); err != nil || strings.Join(m.Config.Columns, ",") != "a,k,p" {
		t.Errorf("--drop-constant: the model's columns: %v", err)
	}

	// Integers: a warning that names --dequantize, which takes it away.
	r = fit("messy.csv")
	if !strings.Contains(r.stderr, `warning: messy.csv: column "k" holds integers only (10 values, 0 to 9): a density of it is spikes at the integers; dequantise it (--dequantize does)`) {
		t.Errorf("integers:\n%s", r.stderr)
	}
	// The baseline.
	if !strings.Contains(r.stderr, "a full-covariance Gaussian of the same rows: validation NLL") &&
		!strings.Contains(r.stderr, "the flow does not beat a full-covariance Gaussian") {
		t.Errorf("no Gaussian baseline:\n%s", r.stderr)
	}
	r = fit("messy.csv", "--dequantize", "--bounds", "p=0:1,k=0:")
	if r.code != 0 || strings.Contains(r.stderr, "holds integers") || !strings.Contains(r.stderr, "dequantising k") {
		t.Errorf("--dequantize: exit %d\n%s", r.code, r.stderr)
	}
	m, err := model.Load(filepath.Join(dir, "messy.flow"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.Config.Dequantize, []int{1}) || !slices.Equal(m.Config.Bounds, []model.Bound{{Column: 1, Lo: 0, Hi: math.Inf(1)}, {Column: 2, Lo: 0, Hi: 1}}) {
		t.Errorf("the model records Dequantize %v, Bounds %v", m.Config.Dequantize, m.Config.Bounds)
	}
	// Its samples are integers in k and inside (0, 1) in p.
	for i, row := range readCSV(t, mustRun(t, dir, "sample", "messy.flow", "-n", "500").stdout)[1:] {
		k, _ := strconv.ParseFloat(row[1], 64)
		p, _ := strconv.ParseFloat(row[2], 64)
		if k != math.Floor(k) || k < 0 || !(p > 0 && p < 1) {
			t.Fatalf("sample %d: %v", i, row)
		}
	}
	// Scoring: outside the bounds is -Inf, with a note; never NaN.
	writeFile(t, filepath.Join(dir, "probe.csv"), "a,k,p\n0,3,0.5\n0,3.4,0.5\n0,3,1.5\n1e300,3,0.5\n")
	r = mustRun(t, dir, "score", "messy.flow", "probe.csv")
	rows := readCSV(t, r.stdout)[1:]
	if rows[0][2] != rows[1][2] || rows[2][2] != "-Inf" || strings.Contains(r.stdout, "NaN") {
		t.Errorf("scores:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "note: 2 of 4 rows (probe.csv) have log density -Inf") {
		t.Errorf("score's note:\n%s", r.stderr)
	}
	r = fit("messy.csv", "--dequantize=a")
	if r.code != 1 || !strings.Contains(r.stderr, `messy.csv:2: column "a": `) || !strings.Contains(r.stderr, "is not an integer, but the column is dequantised") {
		t.Errorf("--dequantize=a: exit %d\n%s", r.code, r.stderr)
	}
	r = fit("messy.csv", "--dequantize=z")
	if r.code != 1 || !strings.Contains(r.stderr, `messy.csv: --dequantize: "z" is not one of the model's columns (a, k, p; or an index, 0 to 2)`) {
		t.Errorf("--dequantize=z: exit %d\n%s", r.code, r.stderr)
	}

	// A row a million scales out: named.
	r = fit("far.csv")
	if !strings.Contains(r.stderr, `warning: far.csv: column "a": 1 row lies more than 50 robust scales`) || !strings.Contains(r.stderr, "row 42 (1e+06)") {
		t.Errorf("outlier:\n%s", r.stderr)
	}
	// Duplicates: the fraction.
	r = fit("dups.csv")
	if !strings.Contains(r.stderr, "warning: dups.csv: 99 of 300 rows (33.0%) repeat an earlier row exactly") {
		t.Errorf("duplicates:\n%s", r.stderr)
	}
	// A column that is a linear function of others: the columns named.
	r = fit("total.csv")
	if !strings.Contains(r.stderr, `warning: total.csv: column "p" is a linear function of columns "a", "k" up to rounding`) {
		t.Errorf("collinear:\n%s", r.stderr)
	}
	// A value outside --bounds: its line and column.
	r = fit("outside.csv", "--bounds", "p=0:1")
	if r.code != 1 || !strings.Contains(r.stderr, `outside.csv:11: column "p": 1.5 is not strictly inside the bounds 0:1; widen them`) {
		t.Errorf("outside the bounds: exit %d\n%s", r.code, r.stderr)
	}
	for _, bad := range []string{"p", "p=1:0", "p=a:1", "p=:"} {
		r = fit("messy.csv", "--bounds", bad)
		if r.code != 1 || !strings.Contains(r.stderr, "--bounds") {
			t.Errorf("--bounds %s: exit %d\n%s", bad, r.code, r.stderr)
		}
	}
}
