package flowsbeam

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/gonormflows/flows/table"
)

func init() {
	register.DoFn2x0[Rows, func(Scored)](&unscoredFn{})
}

// unscoredFn passes rows on as Scored without log densities (CountRows
// counts rows only), dropping the chunk of file Drop whose first row is
// data row 0: a runner that loses an element.
type unscoredFn struct{ Drop string }

func (f *unscoredFn) ProcessElement(r Rows, emit func(Scored)) {
	if f.Drop != "" && filepath.Base(r.File) == f.Drop && r.First == 0 {
		return
	}
	emit(Scored{Rows: r})
}

// countFiles reads badFiles with dead letters and runs CountRows on what
// reached unscoredFn{Drop: drop}; it returns the counts it wrote and the
// pipeline's error.
func countFiles(t *testing.T, drop string) ([]FileCount, error) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range badFiles {
		writeFile(t, filepath.Join(dir, name), text)
	}
	p, s := beam.NewPipelineWithRoot()
	cfg := ReadConfig{Options: table.Options{Columns: []string{"x", "y"}}, ChunkRows: 3, DeadLetter: true}
	rows, dead, counts := ReadCSVCounted(s, cfg, filepath.Join(dir, "*.csv"))
	name := filepath.Join(dir, "counts")
	CountRows(s, name, counts, beam.ParDo(s, &unscoredFn{Drop: drop}, rows), dead)
	if err := ptest.Run(p); err != nil {
		return nil, err
	}
	got, err := ReadFileCounts(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range got {
		got[i].File = filepath.Base(got[i].File)
	}
	noTemps(t, dir)
	return got, nil
}

// TestCountRows counts each file's good and bad rows from the data.
func TestCountRows(t *testing.T) {
	got, err := countFiles(t, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []FileCount{{"a.csv", 7, 3}, {"b.csv", 0, 1}, {"c.csv", 1, 0}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
}

// TestCountRowsLost fails the pipeline, naming the file, when rows read
// do not all reach the scorer: here a step loses a.csv's first chunk, as a
// runner that drops an element would.
func TestCountRowsLost(t *testing.T) {
	_, err := countFiles(t, "a.csv")
	want := "a.csv: 7 good and 3 bad rows were read, but 4 reached the scorer and 3 the dead letters: the runner lost or duplicated rows"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("pipeline error: %v\nwant one with %q", err, want)
	}
}

// TestCheckCounts checks counts against the rows that went on.
func TestCheckCounts(t *testing.T) {
	counts := func() []FileCount { return []FileCount{{"b", 2, 0}, {"a", 1, 1}} }
	for _, tc := range []struct {
		counts []FileCount
		got    map[string][2]int
		want   string
	}{
		{counts(), map[string][2]int{"a": {1, 1}, "b": {2, 0}}, ""},
		{counts(), map[string][2]int{"a": {1, 1}, "b": {1, 0}}, "b: 2 good and 0 bad rows were read, but 1 reached the scorer and 0 the dead letters"},
		{counts(), map[string][2]int{"a": {1, 1}, "b": {2, 0}, "c": {0, 1}}, "c: 0 rows reached the scorer and 1 the dead letters, but the file was not counted as read"},
		{append(counts(), FileCount{"a", 1, 1}), map[string][2]int{"a": {2, 2}, "b": {2, 0}}, "a: read twice"},
	} {
		err := checkCounts(tc.counts, tc.got)
		if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v, %v: %v, want %q", tc.counts, tc.got, err, tc.want)
		}
	}
}
