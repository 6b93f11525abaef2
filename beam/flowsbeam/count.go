package flowsbeam

// Counting rows from the data.
//
// Beam's counters are reports, not data: Prism (v2.77.0) drops a bundle's
// counter values when two bundles of a stage finish before it has asked
// the worker what the counters' short ids mean (its metrics store keeps
// one waiting payload per short id, and the second bundle's replaces the
// first's), so under load "read 1002 good rows from 2 files" could be
// printed for 3002 rows of 4 files, every row scored and written.
// CountRows counts from the pipeline's own elements instead, and checks
// that every row read reached the scorer or the dead letters.

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// FileCount is what was read of one file (from ReadCSVCounted).
type FileCount struct {
	// File is the file's path.
	File string
	// Good and Bad count its good rows and its dead letters.
	Good, Bad int
}

func init() {
	register.Function1x2(scoredFile)
	register.Function1x2(deadFile)
	register.Function2x1(sumInts)
	register.DoFn5x1[context.Context, []byte, func(*FileCount) bool, func(*string, *int) bool, func(*string, *int) bool, error](&countRowsFn{})
	register.Iter1[FileCount]()
	register.Iter2[string, int]()
}

func scoredFile(sc Scored) (string, int)  { return sc.File, sc.Len() }
func deadFile(d DeadLetter) (string, int) { return d.File, 1 }
func sumInts(a, b int) int                { return a + b }

// CountRows writes the counts of ReadCSVCounted to the CSV file name
// ("file,good,bad", a row per file in the order of the paths; see
// ReadFileCounts), once it has checked them against the rows that reached
// scored (a PCollection of Scored) and dead (of DeadLetter, or an empty
// PCollection when there are no dead letters): a file whose good rows are
// not all scored, or whose bad rows are not all dead letters, fails the
// pipeline with an error naming the file. A file that failed to be read
// has no count (its error is the pipeline's), so a caller should check
// that every file it gave has one (flows-beam does).
func CountRows(s beam.Scope, name string, counts, scored, dead beam.PCollection) {
	s = s.Scope("flowsbeam.CountRows")
	perFile := func(fn any, col beam.PCollection) beam.PCollection {
		return beam.CombinePerKey(s, sumInts, beam.ParDo(s, fn, col))
	}
	beam.ParDo0(s, &countRowsFn{Name: name}, beam.Impulse(s), beam.SideInput{Input: counts},
		beam.SideInput{Input: perFile(scoredFile, scored)}, beam.SideInput{Input: perFile(deadFile, dead)})
}

type countRowsFn struct{ Name string }

func (f *countRowsFn) ProcessElement(ctx context.Context, _ []byte, counts func(*FileCount) bool, scored, dead func(*string, *int) bool) error {
	got := map[string][2]int{} // the good rows scored and the dead letters, by file
	var file string
	var n int
	for scored(&file, &n) {
		g := got[file]
		g[0] += n
		got[file] = g
	}
	for dead(&file, &n) {
		g := got[file]
		g[1] += n
		got[file] = g
	}
	var all []FileCount
	var c FileCount
	for counts(&c) {
		all = append(all, c)
	}
	if err := checkCounts(all, got); err != nil {
		return err
	}
	return WriteFile(ctx, f.Name, func(w io.Writer) error { return writeFileCounts(w, all) })
}

// checkCounts sorts the counts by file and checks them against the rows
// that reached the scorer and the dead letters, by file.
func checkCounts(counts []FileCount, got map[string][2]int) error {
	slices.SortFunc(counts, func(a, b FileCount) int { return strings.Compare(a.File, b.File) })
	for i := 1; i < len(counts); i++ {
		if counts[i-1].File == counts[i].File {
			return fmt.Errorf("%s: read twice", counts[i].File)
		}
	}
	for _, c := range counts {
		g := got[c.File]
		if g[0] != c.Good || g[1] != c.Bad {
			return fmt.Errorf("%s: %d good and %d bad rows were read, but %d reached the scorer and %d the dead letters: the runner lost or duplicated rows",
				c.File, c.Good, c.Bad, g[0], g[1])
		}
		delete(got, c.File)
	}
	for file, g := range got {
		if g != [2]int{} {
			return fmt.Errorf("%s: %d rows reached the scorer and %d the dead letters, but the file was not counted as read", file, g[0], g[1])
		}
	}
	return nil
}

// writeFileCounts writes counts as CSV "file,good,bad".
func writeFileCounts(w io.Writer, counts []FileCount) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"file", "good", "bad"})
	for _, c := range counts {
		cw.Write([]string{c.File, strconv.Itoa(c.Good), strconv.Itoa(c.Bad)})
	}
	cw.Flush()
	return cw.Error()
}

// ReadFileCounts reads the file of CountRows through Beam's file systems,
// and removes it.
func ReadFileCounts(ctx context.Context, name string) ([]FileCount, error) {
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	b, err := filesystem.Read(ctx, fs, name)
	if err != nil {
		return nil, err
	}
	removeFile(ctx, fs, name)
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil || len(recs) == 0 || !slices.Equal(recs[0], []string{"file", "good", "bad"}) {
		return nil, fmt.Errorf("%s: not a file of counts (%v)", name, err)
	}
	var out []FileCount
	for _, r := range recs[1:] {
		good, err1 := strconv.Atoi(r[1])
		bad, err2 := strconv.Atoi(r[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: a bad count in %q", name, r)
		}
		out = append(out, FileCount{File: r[0], Good: good, Bad: bad})
	}
	return out, nil
}

// CountsFile is the name of the temporary file of CountRows for this run
// of o (not matched by the glob of its temporary shards).
func (o Output) CountsFile() string { return o.tempPrefix() + "counts" }

// RemoveFile removes the file name through Beam's file systems, where the
// file system can remove files; it returns the error of a file system that
// cannot be opened.
func RemoveFile(ctx context.Context, name string) error {
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return err
	}
	defer fs.Close()
	removeFile(ctx, fs, name)
	return nil
}
