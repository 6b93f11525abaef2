package flowsbeam

// Reading CSV files.
//
// The unit of parallel work is the file: each matched file is read from
// start to end by one worker, through table.Reader, so that a file's header,
// its column selection, its line numbers and its errors are exactly those of
// the command line tool. A file larger than the others is read by one worker
// only; give large inputs as many shards.
//
// With dead letters, a chunk that holds a bad row loses the good rows read
// before it in the chunk (table.Reader returns none of a chunk with an
// error). So at the first bad row of a file the reader opens the file again,
// skips the rows it has already emitted, and reads the rest of the file one
// row at a time: a clean file costs nothing extra, and a file with bad rows
// is read once more up to its first bad one.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/fileio"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/filter"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// DefaultChunkRows is the number of rows of a Rows element that ReadCSV
// makes when ReadConfig.ChunkRows is zero: the chunk the command line tool
// reads and scores at a time.
const DefaultChunkRows = 4096

// Metric names, in the namespace "flows". The command logs them at the end.
const (
	MetricNamespace = "flows"
	// MetricFiles counts the files read.
	MetricFiles = "files"
	// MetricRows counts the good rows read.
	MetricRows = "rows"
	// MetricBadRows counts the rows (and whole files) sent to the dead
	// letters.
	MetricBadRows = "bad_rows"
)

// ReadConfig says how ReadCSV reads its files.
type ReadConfig struct {
	// Options picks the columns and says how to parse (see table.Options);
	// every file is read with them, each with its own header.
	Options table.Options
	// ChunkRows is the most rows of an element (default DefaultChunkRows).
	ChunkRows int
	// Categories, a model's categorical columns (Model.Categories; nil
	// for a model of numbers only), makes a row whose level the model's
	// training rows did not have a bad row, with the error flows score
	// gives it. Options.Categorical picks the columns
	// (cliflags.ForModel sets it).
	Categories *model.Categories
	// DeadLetter sends bad rows to the second output instead of failing the
	// pipeline; a file that cannot be read at all (its header lacks a
	// column, say) goes there as one dead letter with Line 0 or the line of
	// the error.
	DeadLetter bool
}

// ReadCSV reads the CSV files that the globs match, through Beam's file
// systems (local paths, and gs:// or s3:// where the program imports them;
// a .gz file is decompressed), into chunks of rows with their file and line.
// Each file is read as the command line tool reads one: its own header
// (detected, or as Options.Header says), the columns picked by name or
// index, and every picked cell a finite number. A file matched by two globs
// is read once.
//
// Without DeadLetter, a bad row fails the pipeline with the tool's error,
// which names the file, the line and the column; dead is then empty. With
// it, each bad row is a DeadLetter in dead and the rest proceeds. A file of
// zero bytes, or of a header only, gives no rows (a shard may be empty); a
// glob that matches no file fails the pipeline. The good and bad rows and
// the files are counted in the metrics MetricRows, MetricBadRows and
// MetricFiles.
func ReadCSV(s beam.Scope, cfg ReadConfig, globs ...string) (rows, dead beam.PCollection) {
	rows, dead, _ = ReadCSVCounted(s, cfg, globs...)
	return rows, dead
}

// ReadCSVCounted is ReadCSV that also returns a PCollection of FileCount,
// one for each file read: its good and bad rows, counted from the data
// rather than by Beam's counters (which a runner may lose; see
// CountRows).
func ReadCSVCounted(s beam.Scope, cfg ReadConfig, globs ...string) (rows, dead, counts beam.PCollection) {
	s = s.Scope("flowsbeam.ReadCSV")
	matched := fileio.MatchAll(s, beam.CreateList(s, globs), fileio.MatchEmptyDisallow())
	// Distinct drops files matched twice, and its shuffle spreads the
	// files over the workers.
	paths := filter.Distinct(s, beam.ParDo(s, metadataPath, matched))
	chunk := cfg.ChunkRows
	if chunk <= 0 {
		chunk = DefaultChunkRows
	}
	return beam.ParDo3(s, &readFn{Options: cfg.Options, Categories: cfg.Categories, ChunkRows: chunk, DeadLetter: cfg.DeadLetter}, paths)
}

func init() {
	register.Function1x1(metadataPath)
	register.DoFn5x1[context.Context, string, func(Rows), func(DeadLetter), func(FileCount), error](&readFn{})
	register.Emitter1[FileCount]()
	register.Emitter1[Rows]()
	register.Emitter1[DeadLetter]()
}

// metadataPath returns a matched file's path.
func metadataPath(m fileio.FileMetadata) string { return m.Path }

// readFn reads one file into chunks of rows.
type readFn struct {
	Options    table.Options
	Categories *model.Categories
	ChunkRows  int
	DeadLetter bool

	files, good, bad beam.Counter
}

func (f *readFn) Setup() {
	f.files = beam.NewCounter(MetricNamespace, MetricFiles)
	f.good = beam.NewCounter(MetricNamespace, MetricRows)
	f.bad = beam.NewCounter(MetricNamespace, MetricBadRows)
}

// open opens the file at path (decompressing a .gz file) and reports
// whether it is empty.
func open(ctx context.Context, path string) (io.ReadCloser, *bufio.Reader, bool, error) {
	rc, err := fileio.ReadableFile{Metadata: fileio.FileMetadata{Path: path}}.Open(ctx)
	if err != nil {
		return nil, nil, false, err
	}
	br := bufio.NewReaderSize(rc, 1<<16)
	_, err = br.Peek(1)
	if err != nil && err != io.EOF {
		rc.Close()
		return nil, nil, false, fmt.Errorf("%s: %v", path, err)
	}
	return rc, br, err == io.EOF, nil
}

func (f *readFn) ProcessElement(ctx context.Context, path string, emit func(Rows), dead func(DeadLetter), count func(FileCount)) error {
	c := FileCount{File: path}
	err := f.read(ctx, path, func(r Rows) {
		c.Good += r.Len()
		emit(r)
	}, func(d DeadLetter) {
		c.Bad++
		dead(d)
	})
	if err == nil {
		count(c)
	}
	return err
}

// read reads the file at path into chunks of rows and dead letters.
func (f *readFn) read(ctx context.Context, path string, emit func(Rows), dead func(DeadLetter)) error {
	f.files.Inc(ctx, 1)
	rc, br, empty, err := open(ctx, path)
	if err != nil {
		return err
	}
	defer func() { rc.Close() }()
	if empty {
		return nil
	}
	rd, err := table.NewReader(br, path, f.Options)
	if err != nil {
		if !f.DeadLetter {
			return err
		}
		f.bad.Inc(ctx, 1)
		dead(DeadLetter{File: path, Line: errorLine(err, path), Reason: err.Error()})
		return nil
	}
	// Fast: whole chunks, as long as no row is bad.
	row := 0 // data rows consumed, bad ones included
	for {
		t, err := rd.Read(f.ChunkRows)
		if err == io.EOF {
			return nil
		}
		if err == nil {
			err = checkLevels(t, f.Categories, path)
		}
		if err != nil {
			if !f.DeadLetter {
				return err
			}
			break
		}
		emit(chunkOf(path, row, t))
		f.good.Inc(ctx, int64(t.Rows()))
		row += t.Rows()
	}
	// Slow: from the chunk with the first bad row on, one row at a time.
	rc.Close()
	if rc, br, _, err = open(ctx, path); err != nil {
		return err
	}
	if rd, err = table.NewReader(br, path, f.Options); err != nil {
		return err // it read before
	}
	if row > 0 {
		if _, err := rd.Read(row); err != nil {
			return fmt.Errorf("%s: the file changed while it was read: %v", path, err)
		}
	}
	var pending *table.Table // consecutive good rows, not yet emitted
	first := 0
	flush := func() {
		if pending != nil {
			emit(chunkOf(path, first, pending))
			f.good.Inc(ctx, int64(pending.Rows()))
			pending = nil
		}
	}
	for ; ; row++ {
		t, err := rd.Read(1)
		if err == io.EOF {
			flush()
			return nil
		}
		if err == nil {
			err = checkLevels(t, f.Categories, path)
		}
		if err != nil {
			flush()
			f.bad.Inc(ctx, 1)
			dead(DeadLetter{File: path, Line: errorLine(err, path), Reason: err.Error()})
			continue
		}
		if pending == nil {
			pending, first = t, row
			continue
		}
		pending = appendTable(pending, t)
		if pending.Rows() >= f.ChunkRows {
			flush()
		}
	}
}

// chunkOf makes the Rows of the table t, whose first row is data row first
// of the file at path.
func chunkOf(path string, first int, t *table.Table) Rows {
	r := Rows{File: path, First: first, Lines: t.Lines, Names: t.Names, ContextNames: t.ContextNames,
		X: t.X.RawMatrix().Data, CatNames: t.CatNames, Cats: t.Cats}
	if t.C != nil {
		r.C = t.C.RawMatrix().Data
	}
	return r
}

// appendTable returns a with the rows of b after its own.
func appendTable(a, b *table.Table) *table.Table {
	a.Lines = append(a.Lines, b.Lines...)
	a.X = appendRows(a.X, b.X)
	if a.C != nil {
		a.C = appendRows(a.C, b.C)
	}
	a.Cats = append(a.Cats, b.Cats...)
	return a
}

// checkLevels returns the error of the first row of t (read from the file
// name) whose level the categories cat do not have, as flows score gives
// it; nil when every level is known or cat is nil.
func checkLevels(t *table.Table, cat *model.Categories, name string) error {
	if cat == nil || len(t.Cats) == 0 {
		return nil
	}
	k := len(cat.Names)
	for i, level := range t.Cats {
		if _, ok := slices.BinarySearch(cat.Levels[i%k], level); !ok {
			return levelError(name, t.Lines[i/k], cat.Names[i%k], level, cat.Levels[i%k])
		}
	}
	return nil
}

// levelError is flows score's error for an unknown level.
func levelError(name string, line int, column, level string, levels []string) error {
	const most = 12 // flows score names at most 12 levels
	list := strings.Join(levels[:min(len(levels), most)], ", ")
	if len(levels) > most {
		list += fmt.Sprintf(" and %d more", len(levels)-most)
	}
	return fmt.Errorf("%s:%d: column %q: level %q was not in the model's training rows (its levels: %s)", name, line, column, level, list)
}

// errorLine returns the line that an error of table.Reader about the file
// name names ("name:17: ..."), or 0.
func errorLine(err error, name string) int {
	rest, ok := strings.CutPrefix(err.Error(), name+":")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		end = len(rest)
	}
	n, err2 := strconv.Atoi(rest[:end])
	if err2 != nil {
		return 0
	}
	return n
}

// appendRows returns the rows of a followed by those of b (with as many
// columns), reusing a's storage where it can.
func appendRows(a, b *mat.Dense) *mat.Dense {
	ra, c := a.Dims()
	rb, _ := b.Dims()
	data := append(a.RawMatrix().Data[:ra*c], b.RawMatrix().Data[:rb*c]...)
	return mat.NewDense(ra+rb, c, data)
}
