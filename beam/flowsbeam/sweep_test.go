package flowsbeam

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gonormflows/flows/model"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/gonormflows/flows/table"
)

// sweepConfigs is a small sweep: kinds, depths, seeds and learning rates.
var sweepConfigs = []SweepConfig{
	{Model: model.Config{Kind: model.KindMAF, Layers: 1, Hidden: []int{8}}, Fit: FitSettings{Epochs: 4, LR: 3e-3}},
	{Model: model.Config{Kind: model.KindMAF, Layers: 2, Hidden: []int{16, 16}, Seed: 1}, Fit: FitSettings{Epochs: 4, LR: 3e-3}},
	{Model: model.Config{Kind: model.KindRealNVP, Layers: 2, Hidden: []int{16}}, Fit: FitSettings{Epochs: 4, LR: 1e-3}},
	{Model: model.Config{Kind: model.KindNSFCoupling, Layers: 1, Hidden: []int{8}, Bins: 4}, Fit: FitSettings{Epochs: 4, LR: 3e-3, Patience: -1, ValFraction: -1}},
	{Model: model.Config{Kind: model.KindMAF, Layers: 1, Hidden: []int{8}}, Fit: FitSettings{Epochs: 4, LR: 1e300}}, // diverges
}

// TestSweepMatchesLoop checks that Sweep picks the configuration that a
// loop fitting and evaluating one configuration after another picks, with
// the same model file, bit for bit, and the same validation means.
func TestSweepMatchesLoop(t *testing.T) {
	dir := t.TempDir()
	train, val := filepath.Join(dir, "train"), filepath.Join(dir, "val")
	os.Mkdir(train, 0o755)
	os.Mkdir(val, 0o755)
	writeData(t, train, 600, 2, 12)
	writeData(t, val, 400, 3, 13)
	opt := table.Options{Columns: []string{"a", "b", "c", "d"}}

	// The loop.
	x, err := ReadTable(context.Background(), []string{filepath.Join(train, "part-*.csv")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	v, err := table.ReadFile(filepath.Join(val, "all.csv"), opt)
	if err != nil {
		t.Fatal(err)
	}
	means := make([]float64, len(sweepConfigs))
	files := make([][]byte, len(sweepConfigs))
	for i, c := range sweepConfigs {
		cfg := c.Model
		cfg.Columns = x.Names
		m, err := model.New(cfg, x.X, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Fit(x.X, nil, c.Fit.fitConfig()); err != nil {
			means[i] = nan()
			continue
		}
		means[i] = MeanLogDensity(m.LogPDF(v.X, nil))
		var b bytes.Buffer
		m.WriteTo(&b)
		files[i] = b.Bytes()
	}
	best := Choose(means)
	if best < 0 {
		t.Fatalf("the loop chose nothing: %v", means)
	}

	p, s := beam.NewPipelineWithRoot()
	rows, _ := ReadCSV(s, ReadConfig{Options: opt, ChunkRows: 50}, filepath.Join(val, "part-*.csv"))
	data := SweepData{Globs: []string{filepath.Join(train, "part-*.csv")}, Options: opt}
	model, report := filepath.Join(dir, "best.flow"), filepath.Join(dir, "trials.csv")
	WriteSweep(s, model, report, Sweep(s, data, sweepConfigs, rows))
	ptest.RunAndValidate(t, p)

	if got := readText(t, model); got != string(files[best]) {
		t.Errorf("the model file differs from the loop's best (configuration %d)", best)
	}
	recs := readCSVFile(t, report)
	if len(recs) != len(sweepConfigs)+1 {
		t.Fatalf("report of %d rows, want %d", len(recs)-1, len(sweepConfigs))
	}
	for i, r := range recs[1:] {
		chosen := "0"
		if i == best {
			chosen = "1"
		}
		if r[14] != formatFloat(means[i]) || r[15] != chosen || (r[16] == "") != (files[i] != nil) || r[16] == "" && r[13] != "400" {
			t.Errorf("configuration %d: %q; want mean %v, chosen %s", i, r, means[i], chosen)
		}
	}
	if last := recs[len(recs)-1]; !strings.Contains(last[16], "the training loss is not finite") {
		t.Errorf("the diverging configuration reports %q", last[16])
	}
}

func nan() float64 { return math.NaN() }

// TestChoose checks the rule of the choice.
func TestChoose(t *testing.T) {
	for _, c := range []struct {
		means []float64
		want  int
	}{
		{nil, -1},
		{[]float64{nan(), nan()}, -1},
		{[]float64{-3, -1, -2}, 1},
		{[]float64{nan(), -2, -2}, 1},
		{[]float64{-2, nan(), -1}, 2},
	} {
		if got := Choose(c.means); got != c.want {
			t.Errorf("Choose(%v) = %d, want %d", c.means, got, c.want)
		}
	}
}
