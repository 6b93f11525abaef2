package flowsbeam

// Writing sharded CSV outputs.
//
// The sinks follow Beam's file-sink pattern: each bundle writes its
// elements to a temporary file of its own next to the output (named
// ".<base>.tmp-<run>-<uuid>.csv" in the prefix's directory), and emits the
// file's name only when the bundle ends; once every bundle is done, one
// finalising step (an Impulse that takes the temporary files as a side
// input, so that it runs exactly once, even for no files) renames them to
// "<prefix>-SSSSS-of-NNNNN.csv", in the order of their first row's file and
// row, and removes what is left: temporary files of retried bundles (a
// retried bundle writes a new file; only the committed one is named in the
// side input) and shards of an earlier output of the same prefix that this
// one does not replace.
//
// Guarantees: a shard file appears whole or not at all where the file
// system renames atomically (local files, which are also synced before the
// rename; on object stores, Beam's rename is a copy and a delete, and each
// object appears whole); an output is complete once the pipeline has
// succeeded; a pipeline that fails before the finalising step leaves the
// earlier output as it was, and its temporary files, which RemoveTemporary
// removes. The shards are not replaced all at once: a failure during the
// finalising step can leave some new and some old shards.
//
// Which rows go to which shard depends on the runner's bundles; every row
// carries its file, row and line.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/log"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/gonormflows/flows/table"
	"github.com/google/uuid"
)

// Output names the shards of a sharded output: PREFIX-SSSSS-of-NNNNN.csv
// for a prefix, and its temporary files for one run.
type Output struct {
	// Prefix is the output's path without the shard suffix, on any file
	// system Beam has registered.
	Prefix string
	// Run tells this run's temporary files from others'; NewOutput draws
	// it.
	Run string
}

// NewOutput returns the Output of prefix with a new run name.
func NewOutput(prefix string) Output {
	return Output{Prefix: prefix, Run: uuid.NewString()[:8]}
}

// ShardName returns the name of shard i of n.
func (o Output) ShardName(i, n int) string {
	return fmt.Sprintf("%s-%05d-of-%05d.csv", o.Prefix, i, n)
}

// Glob matches the shards of any output of the prefix (Beam's file systems
// match with path.Match's syntax).
func (o Output) Glob() string { return escapeGlob(o.Prefix) + "-?????-of-?????.csv" }

// tempPrefix is the start of the names of this run's temporary files.
func (o Output) tempPrefix() string {
	dir, base := path.Split(o.Prefix)
	return dir + "." + base + ".tmp-" + o.Run + "-"
}

// tempGlob matches this run's temporary files.
func (o Output) tempGlob() string { return escapeGlob(o.tempPrefix()) + "*.csv" }

// escapeGlob escapes the metacharacters of path.Match in s.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// shardName matches a shard's name after the prefix.
var shardName = regexp.MustCompile(`^-\d{5}-of-\d{5}\.csv$`)

// RemoveTemporary removes the temporary files this run of o left (after a
// failed pipeline); it is a no-op on a file system that cannot remove.
func RemoveTemporary(ctx context.Context, o Output) error {
	fs, err := filesystem.New(ctx, o.Prefix)
	if err != nil {
		return err
	}
	defer fs.Close()
	return removeMatching(ctx, fs, o.tempGlob(), nil)
}

// removeMatching removes the files that glob matches, but those in keep.
func removeMatching(ctx context.Context, fs filesystem.Interface, glob string, keep func(string) bool) error {
	rm, ok := fs.(filesystem.Remover)
	if !ok {
		return nil
	}
	files, err := fs.List(ctx, glob)
	if err != nil {
		return err
	}
	for _, f := range files {
		if keep != nil && keep(f) {
			continue
		}
		if err := rm.Remove(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// shardFile is a temporary file that a bundle wrote.
type shardFile struct {
	// Temp is its name.
	Temp string
	// Rows is the number of rows it holds.
	Rows int
	// File and Row are the file and row index of its first row, which
	// order the shards.
	File string
	Row  int
}

func init() {
	beam.RegisterType(reflect.TypeOf(shardFile{}))
	register.DoFn3x1[context.Context, Scored, func(shardFile), error](&writeScoredFn{})
	register.DoFn3x1[context.Context, DeadLetter, func(shardFile), error](&writeDeadFn{})
	register.DoFn4x1[context.Context, []byte, func(*shardFile) bool, func(string), error](&finalizeFn{})
	register.Emitter1[shardFile]()
	register.Emitter1[string]()
	register.Iter1[shardFile]()
}

// WriteScores writes the scored rows as CSV shards of o (see Output), each
// with a header row
//
//	file,row,line,log_density,<data columns>[,<context columns>][,<categorical columns>]
//
// where file is the row's file, row its index among the file's data rows
// (from 0), line its line (from 1), and log_density in nats, every number in
// the shortest form that reads back to the same bits. It returns the
// shards' names once they are final. Without rows it writes no shard and
// leaves an earlier output of o as it was (its temporary files removed):
// the pipeline does not fail for it, because a step that fails after
// another has failed may be the one a runner reports (Prism carries on
// past a failed bundle as if its input were empty), and the error of a bad
// row must not read as "no data rows". Check the rows read
// (ReadCSVCounted and CountRows) instead, as flows-beam does.
func WriteScores(s beam.Scope, o Output, scored beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.WriteScores")
	temps := beam.ParDo(s, &writeScoredFn{Out: o}, scored)
	return finalize(s, o, temps, false, "scored rows")
}

// WriteDeadLetters writes the dead letters as CSV shards of o, with the
// header row "file,line,reason". No dead letter writes no shard (and removes
// the shards of an earlier output of o).
func WriteDeadLetters(s beam.Scope, o Output, dead beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.WriteDeadLetters")
	temps := beam.ParDo(s, &writeDeadFn{Out: o}, dead)
	return finalize(s, o, temps, true, "dead letters")
}

// finalize renames the temporary files to the shards of o once every
// bundle is done, in the order of their first rows.
func finalize(s beam.Scope, o Output, temps beam.PCollection, allowEmpty bool, what string) beam.PCollection {
	return beam.ParDo(s, &finalizeFn{Out: o, AllowEmpty: allowEmpty, What: what}, beam.Impulse(s), beam.SideInput{Input: temps})
}

// finalizeShards renames the temporary files of shards numbered in their
// Row field to the n shards of o.
func finalizeShards(s beam.Scope, o Output, temps beam.PCollection, n int) beam.PCollection {
	return beam.ParDo(s, &finalizeFn{Out: o, Shards: n, What: "rows"}, beam.Impulse(s), beam.SideInput{Input: temps})
}

// shardWriter writes one bundle's temporary CSV file.
type shardWriter struct {
	wc   io.WriteCloser
	fs   filesystem.Interface
	bw   *bufio.Writer
	info shardFile
	buf  []byte
}

// open starts a temporary file of o with the header row.
func (w *shardWriter) open(ctx context.Context, o Output, header []string, file string, row int) error {
	fs, err := filesystem.New(ctx, o.Prefix)
	if err != nil {
		return err
	}
	name := o.tempPrefix() + uuid.NewString() + ".csv"
	wc, err := fs.OpenWrite(ctx, name)
	if err != nil {
		fs.Close()
		return err
	}
	w.fs, w.wc = fs, wc
	w.bw = bufio.NewWriterSize(wc, 1<<16)
	w.info = shardFile{Temp: name, File: file, Row: row}
	cw := csv.NewWriter(w.bw)
	cw.Write(header)
	cw.Flush()
	return cw.Error()
}

// close ends the file (synced, where the file system can) and returns its
// description; a writer that was never opened returns false.
func (w *shardWriter) close() (shardFile, bool, error) {
	if w.wc == nil {
		return shardFile{}, false, nil
	}
	defer func() { w.wc, w.fs, w.bw = nil, nil, nil }()
	defer w.fs.Close()
	if err := w.bw.Flush(); err != nil {
		w.wc.Close()
		return shardFile{}, false, err
	}
	if s, ok := w.wc.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			w.wc.Close()
			return shardFile{}, false, err
		}
	}
	if err := w.wc.Close(); err != nil {
		return shardFile{}, false, err
	}
	return w.info, true, nil
}

// abort closes the file after a failure; finalising removes it.
func (w *shardWriter) abort() {
	if w.wc != nil {
		w.wc.Close()
		w.fs.Close()
		w.wc, w.fs, w.bw = nil, nil, nil
	}
}

// writeScoredFn writes the Scored of a bundle to a temporary file.
type writeScoredFn struct {
	Out Output
	w   shardWriter
}

func (f *writeScoredFn) ProcessElement(ctx context.Context, sc Scored, _ func(shardFile)) error {
	if sc.Len() == 0 {
		return nil
	}
	if f.w.wc == nil {
		header := append(append(append([]string{"file", "row", "line", "log_density"}, sc.Names...), sc.ContextNames...), sc.CatNames...)
		if err := f.w.open(ctx, f.Out, header, sc.File, sc.First); err != nil {
			return err
		}
	}
	file := csvField(sc.File)
	dim, cdim, k := len(sc.Names), len(sc.ContextNames), len(sc.CatNames)
	buf := f.w.buf
	for i := range sc.Len() {
		buf = append(buf[:0], file...)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(sc.First+i), 10)
		buf = append(buf, ',')
		buf = strconv.AppendInt(buf, int64(sc.Lines[i]), 10)
		buf = append(buf, ',')
		buf = appendFloat(buf, sc.LogDensity[i])
		for _, v := range sc.X[i*dim : (i+1)*dim] {
			buf = append(buf, ',')
			buf = appendFloat(buf, v)
		}
		for _, v := range sc.C[i*cdim : (i+1)*cdim] {
			buf = append(buf, ',')
			buf = appendFloat(buf, v)
		}
		for _, lv := range sc.Cats[i*k : (i+1)*k] {
			buf = append(append(buf, ','), csvField(lv)...)
		}
		buf = append(buf, '\n')
		if _, err := f.w.bw.Write(buf); err != nil {
			f.w.abort()
			return err
		}
	}
	f.w.buf = buf
	f.w.info.Rows += sc.Len()
	return nil
}

func (f *writeScoredFn) FinishBundle(emit func(shardFile)) error {
	sf, ok, err := f.w.close()
	if ok {
		emit(sf)
	}
	return err
}

func (f *writeScoredFn) Teardown() { f.w.abort() }

// writeDeadFn writes the dead letters of a bundle to a temporary file.
type writeDeadFn struct {
	Out Output
	w   shardWriter
	cw  *csv.Writer
}

func (f *writeDeadFn) ProcessElement(ctx context.Context, d DeadLetter, _ func(shardFile)) error {
	if f.w.wc == nil {
		if err := f.w.open(ctx, f.Out, []string{"file", "line", "reason"}, d.File, d.Line); err != nil {
			return err
		}
		f.cw = csv.NewWriter(f.w.bw)
	}
	f.cw.Write([]string{d.File, strconv.Itoa(d.Line), d.Reason})
	f.w.info.Rows++
	return nil
}

func (f *writeDeadFn) FinishBundle(emit func(shardFile)) error {
	if f.cw != nil {
		f.cw.Flush()
		if err := f.cw.Error(); err != nil {
			f.w.abort()
			return err
		}
		f.cw = nil
	}
	sf, ok, err := f.w.close()
	if ok {
		emit(sf)
	}
	return err
}

func (f *writeDeadFn) Teardown() { f.w.abort() }

// finalizeFn renames the temporary files to the output's shards.
type finalizeFn struct {
	Out Output
	// AllowEmpty: no shards replace an earlier output (its shards are
	// removed); else no shards leave it as it was.
	AllowEmpty bool
	What       string
	// Shards, when positive, is the number of shards, each temporary
	// file's Row its index.
	Shards int
}

func (f *finalizeFn) ProcessElement(ctx context.Context, _ []byte, temps func(*shardFile) bool, emit func(string)) error {
	var shards []shardFile
	var sf shardFile
	for temps(&sf) {
		shards = append(shards, sf)
	}
	fs, err := filesystem.New(ctx, f.Out.Prefix)
	if err != nil {
		return err
	}
	defer fs.Close()
	if len(shards) == 0 && !f.AllowEmpty {
		// Not an error here (see WriteScores): an upstream failure
		// leaves no shards too, and its error is the one to report.
		log.Infof(ctx, "flowsbeam: no %s to write to %s; an earlier output is left as it was", f.What, f.Out.Prefix)
		return removeMatching(ctx, fs, f.Out.tempGlob(), nil)
	}
	slices.SortFunc(shards, func(a, b shardFile) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row), cmp.Compare(a.Temp, b.Temp))
	})
	n := len(shards)
	if f.Shards > 0 {
		if n != f.Shards {
			removeMatching(ctx, fs, f.Out.tempGlob(), nil)
			return fmt.Errorf("%s: %d of %d shards were written", f.Out.Prefix, n, f.Shards)
		}
		for i, sh := range shards {
			if sh.Row != i {
				return fmt.Errorf("%s: shard %d is missing", f.Out.Prefix, i)
			}
		}
	}
	final := make(map[string]bool, n)
	rows := 0
	for i, sh := range shards {
		name := f.Out.ShardName(i, n)
		if err := filesystem.Rename(ctx, fs, sh.Temp, name); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		final[name] = true
		rows += sh.Rows
		emit(name)
	}
	// Shards of an earlier output, and temporary files of retried bundles.
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, f.Out.Prefix)
		return ok && shardName.MatchString(rest) && !final[name]
	}
	if err := removeMatching(ctx, fs, f.Out.Glob(), func(n string) bool { return !stale(n) }); err != nil {
		return err
	}
	if err := removeMatching(ctx, fs, f.Out.tempGlob(), nil); err != nil {
		return err
	}
	log.Infof(ctx, "flowsbeam: wrote %d %s in %d shards of %s", rows, f.What, len(shards), f.Out.Prefix)
	return nil
}

// appendFloat appends v as the flows tool writes it (table.AppendFloat).
func appendFloat(b []byte, v float64) []byte { return table.AppendFloat(b, v) }

// csvField returns s as a CSV field: quoted when it holds a comma, a quote,
// a line break or leading space.
func csvField(s string) string {
	if s == "" || !strings.ContainsAny(s, ",\"\r\n") && s[0] != ' ' && s[0] != '\t' {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
