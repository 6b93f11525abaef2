package flowsbeam

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// scoreShards scores the shards in dir with the model at path through
// ReadCSV, Score (ScoreInline when inline) and WriteScores and returns the
// output and the counters.
func scoreShards(t *testing.T, dir, modelPath string, read ReadConfig, score ScoreConfig, inline bool) (Output, map[string]int64) {
	t.Helper()
	p, s := beam.NewPipelineWithRoot()
	mf, m, err := LoadModelFile(context.Background(), modelPath)
	if err != nil {
		t.Fatal(err)
	}
	read.Options.Columns, read.Options.Want = m.Config.Columns, m.Dim
	rows, _ := ReadCSV(s, read, filepath.Join(dir, "part-*.csv"))
	o := NewOutput(filepath.Join(dir, "out", "scores"))
	var scored beam.PCollection
	if inline {
		scored = ScoreInline(s, mf, rows, score)
	} else {
		scored = Score(s, beam.Create(s, mf), rows, score)
	}
	WriteScores(s, o, scored)
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	return o, counters(pr)
}

// checkAgainstCLI checks that the scored shards give, row by row and bit
// for bit, what flows score gives on dir/all.csv: the shards' rows, mapped
// to the concatenated file's lines, have the same log densities and values.
func checkAgainstCLI(t *testing.T, dir, modelPath string, o Output, n, shards int) {
	t.Helper()
	cli := readCSV(t, runFlows(t, "score", modelPath, filepath.Join(dir, "all.csv")))
	if got, want := strings.Join(cli[0], ","), "row,line,log_density,a,b,c,d"; got != want {
		t.Fatalf("flows score header %q, want %q", got, want)
	}
	byLine := make(map[int][]string, n) // line of all.csv → log density and values
	for _, r := range cli[1:] {
		line, err := strconv.ParseFloat(r[1], 64) // flows score writes 1e+06 for a million
		if err != nil {
			t.Fatal(err)
		}
		byLine[int(line)] = r[2:]
	}
	header, recs := readShards(t, o)
	if got, want := strings.Join(header, ","), "file,row,line,log_density,a,b,c,d"; got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	if len(recs) != n {
		t.Fatalf("%d scored rows, want %d", len(recs), n)
	}
	seen := make(map[int]bool, n)
	for _, r := range recs {
		var shard int
		if _, err := fmt.Sscanf(filepath.Base(r[0]), "part-%05d.csv", &shard); err != nil {
			t.Fatalf("file %q: %v", r[0], err)
		}
		row, line := atoi(t, r[1]), atoi(t, r[2])
		if line != row+2 {
			t.Fatalf("%s: row %d on line %d, want line %d", r[0], row, line, row+2)
		}
		// The shard's data row i is the whole file's row shard·n/shards+i.
		all := shard*n/shards + row + 2
		want, ok := byLine[all]
		if !ok || seen[all] {
			t.Fatalf("%s:%d is line %d of all.csv, which flows score did not score once", r[0], line, all)
		}
		seen[all] = true
		if strings.Join(r[3:], ",") != strings.Join(want, ",") {
			t.Fatalf("%s:%d (all.csv:%d): %q, flows score %q", r[0], line, all, r[3:], want)
		}
	}
}

// TestScoreMatchesCLI scores 1,000,000 rows in 16 shards on Prism and
// compares every row's log density, bit for bit, with flows score on the
// concatenated file, with the model inside the pipeline (ScoreInline, what
// flows-beam runs). With -short it scores 20,000 rows; beam/ci.sh runs it
// in full.
func TestScoreMatchesCLI(t *testing.T) {
	n, shards := 1_000_000, 16
	if testing.Short() {
		n = 20_000
	}
	dir := t.TempDir()
	writeData(t, dir, n, shards, 1)
	fit := filepath.Join(dir, "fit.csv")
	rows := strings.SplitN(readText(t, filepath.Join(dir, "all.csv")), "\n", 3001)
	writeFile(t, fit, strings.Join(rows[:3000], "\n")+"\n")
	modelPath := fitModel(t, dir, fit, model.KindMAF)
	o, c := scoreShards(t, dir, modelPath, ReadConfig{}, ScoreConfig{}, true)
	if c[MetricRows] != int64(n) || c[MetricFiles] != int64(shards) || c[MetricBadRows] != 0 {
		t.Errorf("counters %v, want %d rows of %d files, no bad rows", c, n, shards)
	}
	checkAgainstCLI(t, dir, modelPath, o, n, shards)
	noTemps(t, filepath.Dir(o.Prefix))
}

// TestScoreBatching checks that the chunks read and the batches scored do
// not change a bit of the scores (a row's log density does not depend on
// its batch): tiny chunks gathered into batches, chunks scored alone, and
// batches of one row, with the model a side input (Score) and inside the
// pipeline (ScoreInline).
func TestScoreBatching(t *testing.T) {
	const n, shards = 3000, 5
	dir := t.TempDir()
	writeData(t, dir, n, shards, 2)
	modelPath := fitModel(t, dir, filepath.Join(dir, "all.csv"), model.KindRealNVP)
	for _, c := range []struct {
		chunk, batch int
	}{{7, 100}, {4096, 4096}, {50, 1}, {1, 4096}} {
		for _, inline := range []bool{false, true} {
			t.Run(fmt.Sprintf("chunk=%d/batch=%d/inline=%v", c.chunk, c.batch, inline), func(t *testing.T) {
				o, _ := scoreShards(t, dir, modelPath, ReadConfig{ChunkRows: c.chunk}, ScoreConfig{BatchRows: c.batch}, inline)
				checkAgainstCLI(t, dir, modelPath, o, n, shards)
				os.RemoveAll(filepath.Dir(o.Prefix))
			})
		}
	}
}

// TestCorruptModel checks that a damaged model file fails at the start
// with the library's error: ReadModelFile returns it before the pipeline
// is built, and a pipeline given the damaged bytes (as a side input or
// inside the pipeline) fails with it before
// scoring a row, writing no output.
func TestCorruptModel(t *testing.T) {
	dir := t.TempDir()
	writeData(t, dir, 200, 2, 3)
	modelPath := fitModel(t, dir, filepath.Join(dir, "all.csv"), model.KindMAF)
	data, err := os.ReadFile(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	bad := filepath.Join(dir, "bad.flow")
	writeFile(t, bad, string(data))
	_, libErr := model.Load(bad)
	if !errors.Is(libErr, model.ErrChecksum) {
		t.Fatalf("model.Load: %v, want a checksum error", libErr)
	}

	_, s := beam.NewPipelineWithRoot()
	if _, _, err := ReadModelFile(s, bad); !errors.Is(err, model.ErrChecksum) || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadModelFile: %v, want the library's checksum error naming %s", err, bad)
	}

	for _, inline := range []bool{false, true} {
		p, s := beam.NewPipelineWithRoot()
		mf := ModelFile{Path: bad, Data: data}
		rows, _ := ReadCSV(s, ReadConfig{Options: table.Options{Want: 4}}, filepath.Join(dir, "part-*.csv"))
		o := NewOutput(filepath.Join(dir, "out", "scores"))
		if inline {
			WriteScores(s, o, ScoreInline(s, mf, rows, ScoreConfig{}))
		} else {
			WriteScores(s, o, Score(s, beam.Create(s, mf), rows, ScoreConfig{}))
		}
		err = ptest.Run(p)
		// The library's message, after the path (its wording after the
		// sentinel's includes the checksums).
		want := strings.TrimPrefix(libErr.Error(), "flows: model file "+bad+": ")
		if err == nil || !strings.Contains(err.Error(), bad+": ") || !strings.Contains(err.Error(), want) {
			t.Fatalf("inline=%v: pipeline error: %v\nwant one naming %s with %q", inline, err, bad, want)
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "out", "*")); len(files) > 0 {
			t.Errorf("inline=%v: a failed pipeline left files: %v", inline, files)
		}
	}
}

// readText reads a file.
func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
