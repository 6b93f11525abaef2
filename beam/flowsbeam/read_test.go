package flowsbeam

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/passert"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/gonormflows/flows/table"
)

func init() {
	register.Function2x0(rowStrings)
	register.Function1x1(deadString)
}

// rowStrings describes each row of a chunk as "file:row:line:values".
func rowStrings(r Rows, emit func(string)) {
	dim, cdim := len(r.Names), len(r.ContextNames)
	for i := range r.Len() {
		var v []string
		for _, x := range r.X[i*dim : (i+1)*dim] {
			v = append(v, table.FormatFloat(x))
		}
		for _, x := range r.C[i*cdim : (i+1)*cdim] {
			v = append(v, "c"+table.FormatFloat(x))
		}
		emit(fmt.Sprintf("%s:%d:%d:%s:%s", filepath.Base(r.File), r.First+i, r.Lines[i],
			strings.Join(append(append([]string{}, r.Names...), r.ContextNames...), "|"), strings.Join(v, "|")))
	}
}

// deadString describes a dead letter as "file:line:reason" with the
// directory dropped.
func deadString(d DeadLetter) string {
	return fmt.Sprintf("%s:%d:%s", filepath.Base(d.File), d.Line, strings.ReplaceAll(d.Reason, filepath.Dir(d.File)+"/", ""))
}

// readFiles writes the files and reads them with ReadCSV, checking the
// rows and dead letters it gives (as rowStrings and deadString describe
// them) and its counters.
func readFiles(t *testing.T, files map[string]string, cfg ReadConfig, globs []string, rows, dead []string, count map[string]int64) {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		writeFile(t, filepath.Join(dir, name), text)
	}
	for i := range globs {
		globs[i] = filepath.Join(dir, globs[i])
	}
	p, s := beam.NewPipelineWithRoot()
	r, d := ReadCSV(s, cfg, globs...)
	passert.EqualsList(s, beam.ParDo(s, rowStrings, r), rows)
	passert.EqualsList(s, beam.ParDo(s, deadString, d), dead)
	pr, err := ptest.RunWithMetrics(p)
	if err != nil {
		t.Fatal(err)
	}
	got := counters(pr)
	for k, v := range count {
		if got[k] != v {
			t.Errorf("counter %s = %d, want %d", k, got[k], v)
		}
	}
}

// TestReadCSV reads files as the command line tool does: each its own
// header, columns by name, line numbers, quoted cells over lines; empty
// and header-only files give no rows, and a file matched twice is read
// once.
func TestReadCSV(t *testing.T) {
	files := map[string]string{
		"a.csv": "y,label,x\n1,cat,2\n3,dog,4\n\"5\",\"a\nb\",6\n7,x,8\n",
		"b.csv": "x,y\n10,20\n",
		"c.csv": "",
		"d.csv": "x,y\n",
	}
	cfg := ReadConfig{Options: table.Options{Columns: []string{"x", "y"}}, ChunkRows: 2}
	rows := []string{
		"a.csv:0:2:x|y:2|1", "a.csv:1:3:x|y:4|3", "a.csv:2:4:x|y:6|5", "a.csv:3:6:x|y:8|7",
		"b.csv:0:2:x|y:10|20",
	}
	readFiles(t, files, cfg, []string{"*.csv", "a.csv"}, rows, nil,
		map[string]int64{MetricRows: 5, MetricBadRows: 0, MetricFiles: 4})
}

// TestReadCSVContext reads context columns beside the data.
func TestReadCSVContext(t *testing.T) {
	files := map[string]string{"a.csv": "x,c,y\n1,9,2\n3,8,4\n"}
	cfg := ReadConfig{Options: table.Options{Context: []string{"c"}}}
	readFiles(t, files, cfg, []string{"a.csv"}, []string{"a.csv:0:2:x|y|c:1|2|c9", "a.csv:1:3:x|y|c:3|4|c8"}, nil, nil)
}

// TestReadCSVGzip reads a gzipped file.
func TestReadCSVGzip(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "a.csv.gz"))
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	zw.Write([]byte("x\n1\n2\n"))
	zw.Close()
	f.Close()
	p, s := beam.NewPipelineWithRoot()
	r, _ := ReadCSV(s, ReadConfig{}, filepath.Join(dir, "*.gz"))
	passert.Equals(s, beam.ParDo(s, rowStrings, r), "a.csv.gz:0:2:x:1", "a.csv.gz:1:3:x:2")
	ptest.RunAndValidate(t, p)
}

// badFiles are files with bad rows, and their rows and dead letters.
var badFiles = map[string]string{
	// Data rows 3 (line 5: not a number), 5 (line 7: a short row) and 6
	// (line 8: a bare quote) are bad, in chunks of 3 rows.
	"a.csv": "x,y\n1,2\n3,4\n5,6\n7,abc\n9,10\n11\n1\"3,14\n15,16\n17,18\n19,20\n",
	// The header has no column y.
	"b.csv": "x,z\n1,2\n",
	// Good.
	"c.csv": "x,y\n21,22\n",
}

var badRows = []string{
	"a.csv:0:2:x|y:1|2", "a.csv:1:3:x|y:3|4", "a.csv:2:4:x|y:5|6",
	"a.csv:4:6:x|y:9|10", "a.csv:7:9:x|y:15|16", "a.csv:8:10:x|y:17|18", "a.csv:9:11:x|y:19|20",
	"c.csv:0:2:x|y:21|22",
}

var badDead = []string{
	`a.csv:5:a.csv:5: column 1 ("y"): "abc" is not a number; a column of text is a category (name it with categorical) or an identifier (leave it out of columns)`,
	`a.csv:7:a.csv:7: a row of 1 column, but the first row (line 1) has 2`,
	`a.csv:8:a.csv:8:2: bare " in non-quoted-field`,
	`b.csv:1:b.csv:1: columns: no column is named "y"; the header has "x", "z"`,
}

// TestReadCSVDeadLetters sends the bad rows to the dead letters with the
// command line tool's errors, and keeps every good row, those before a bad
// row in its chunk included.
func TestReadCSVDeadLetters(t *testing.T) {
	cfg := ReadConfig{Options: table.Options{Columns: []string{"x", "y"}}, ChunkRows: 3, DeadLetter: true}
	readFiles(t, badFiles, cfg, []string{"*.csv"}, badRows, badDead,
		map[string]int64{MetricRows: 8, MetricBadRows: 4, MetricFiles: 3})
}

// TestReadCSVBadRowFails fails the pipeline at a bad row without dead
// letters, with the error the command line tool gives for the file.
func TestReadCSVBadRowFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.csv")
	writeFile(t, path, badFiles["a.csv"])
	_, want := table.ReadFile(path, table.Options{})
	if want == nil || !strings.HasPrefix(want.Error(), path+":5: column 1") {
		t.Fatalf("table.ReadFile: %v", want)
	}
	p, s := beam.NewPipelineWithRoot()
	r, _ := ReadCSV(s, ReadConfig{}, path)
	beam.ParDo(s, rowStrings, r)
	err := ptest.Run(p)
	if err == nil || !strings.Contains(err.Error(), "\n"+want.Error()+"\n") {
		t.Fatalf("pipeline error: %v\nwant a line %q", err, want)
	}
}

// TestReadCSVNoFile fails the pipeline for a glob that matches nothing.
func TestReadCSVNoFile(t *testing.T) {
	p, s := beam.NewPipelineWithRoot()
	glob := filepath.Join(t.TempDir(), "*.csv")
	ReadCSV(s, ReadConfig{}, glob)
	if err := ptest.Run(p); err == nil || !strings.Contains(err.Error(), glob) {
		t.Fatalf("pipeline error: %v, want one naming %s", err, glob)
	}
}
