package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/model"
)

// TestFitPrecision: fit --precision float32 writes a model that records
// its precision, says so in the summary, and scores (through the prepared
// evaluator) with the bits of the library's unprepared Model.LogPDF;
// samples likewise. Bad values and bnaf are refused.
func TestFitPrecision(t *testing.T) {
	dir := t.TempDir()
	writeMixture(t, filepath.Join(dir, "data.csv"), 400)
	r := mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "m32.flow", "--kind", "maf", "--precision", "float32"}, tinyFit...)...)
	if !strings.Contains(r.stderr, "maf (float32 products)") {
		t.Errorf("the summary does not name the precision:\n%s", r.stderr)
	}
	m, err := model.Load(filepath.Join(dir, "m32.flow"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Precision != flows.Float32 {
		t.Fatalf("the model file records precision %v", m.Config.Precision)
	}
	recs := readCSV(t, mustRun(t, dir, "score", "m32.flow", "data.csv").stdout)[1:]
	x := mat.NewDense(len(recs), 2, nil)
	for i, rec := range recs {
		for j := range 2 {
			v, _ := strconv.ParseFloat(rec[3+j], 64)
			x.Set(i, j, v)
		}
	}
	for i, v := range m.LogPDF(x, nil) {
		if got, _ := strconv.ParseFloat(recs[i][2], 64); got != v {
			t.Fatalf("row %d: score wrote %v, Model.LogPDF gives %v", i, got, v)
		}
	}
	srecs := readCSV(t, mustRun(t, dir, "sample", "m32.flow", "-n", "5", "--seed", "3").stdout)[1:]
	want := m.Sample(flows.NewKey(3).Fold(0), 5, nil)
	for i, rec := range srecs {
		for j := range 2 {
			if got, _ := strconv.ParseFloat(rec[j], 64); got != want.At(i, j) {
				t.Fatalf("sample row %d column %d: %v, Model.Sample gives %v", i, j, got, want.At(i, j))
			}
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--precision", "float16"}, `--precision "float16"`},
		{[]string{"--kind", "bnaf", "--precision", "float32"}, "bnaf has no conditioner nets"},
	} {
		r := flowsRun(t, dir, append([]string{"fit", "data.csv", "-o", "bad.flow"}, c.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("fit %v: exit %d, %q; want 1 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
