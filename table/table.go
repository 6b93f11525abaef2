// Package table reads and writes tables of numbers as CSV, for the flows of
// package flows: columns picked by header name or index (data columns and,
// for a conditional model, context columns), the rows as a *mat.Dense, and
// errors that name the file, line and column of a bad cell:
//
//	data.csv:17: column 3 ("price"): "abc" is not a number
//
// Read reads a whole file; a Reader reads one in chunks of rows, so that a
// file larger than memory can be scored in bounded memory. Write and
// WriteFile write a table, WriteFile atomically. The command-line tool
// (cmd/flows), the HTTP server and the Beam pipelines read their data
// through this package, so that each reads a file the same way.
package table

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"gonum.org/v1/gonum/mat"
)

// Header says whether the first row of a file is a header.
type Header int

const (
	// HeaderAuto takes the first row for a header when one of its cells is
	// neither empty nor a number while the cell below it is a number (or,
	// in a file of one row, when any cell is not a number).
	HeaderAuto Header = iota
	// HeaderYes: the first row is a header.
	HeaderYes
	// HeaderNo: the first row is data.
	HeaderNo
)

// Options says how to read a file. The zero value reads every column as
// data, detects a header, and splits at commas.
type Options struct {
	// Columns picks the data columns, in order, by header name, by the
	// name "x<j>" that column j gets without a header cell, or by 0-based
	// index (a name first); nil picks every column that is not a context
	// column, in the file's order.
	Columns []string
	// Context picks the context columns of a conditional model, in order,
	// the same way; nil picks none.
	Context []string
	// Header says whether the first row is a header (default HeaderAuto).
	Header Header
	// Comma is the field delimiter (default ',').
	Comma rune
	// Want, when positive, is the number of data columns the selection
	// must have: the dimension of the model called Model, both named in
	// the error. WantContext is the same for the context columns.
	Want, WantContext int
	Model             string
	// Categorical picks columns whose cells are categories: text levels,
	// in Table.Cats; a number there is a level too.
	Categorical []string
	// Detect, when Columns is nil, reads the whole file first and sorts
	// the columns not picked otherwise into numbers (the data columns),
	// categories (text with at most MaxLevels distinct values, added to
	// Categorical) and identifiers (other text, and row numbers: a column
	// without a name holding a distinct whole number in every row, as R
	// and pandas write them), which are left out, each with a note in
	// Table.LeftOut.
	Detect bool
	// Keep picks columns of any content (names, identifiers, dates) to
	// carry through as text beside the rows, in Table.Kept, the same way
	// as Columns; a kept column may also be a data or context column.
	Keep []string
	// SkipMissing leaves out the rows with a missing value (a cell of a
	// selected column that is one of NA) and lists them in the table's
	// Skipped; without it such a row is an error, like any bad cell.
	SkipMissing bool
	// NA are the cells, compared without case after trimming spaces, that
	// mark a missing value; nil means DefaultNA.
	NA []string
	// ColumnsName, ContextName, CategoricalName, KeepName, HeaderName and
	// MissingName name the settings in messages (defaults "columns",
	// "context", "keep", "Header: HeaderYes" and "SkipMissing: true"; the
	// command line says "--columns", "--context", "--categorical",
	// "--keep", "--header yes" and "--missing skip"). A cell of text in a
	// column of numbers points to CategoricalName only when it is set (a
	// reader that may still pick categories, as flows fit).
	ColumnsName, ContextName, KeepName, HeaderName, MissingName, CategoricalName string
	// MaxColumns, when positive, is the most fields a line may have: a
	// longer line is an error (ending with MaxColumnsWhy) once its
	// MaxColumns+1st field is seen, before the line is parsed, so that
	// its cost stays bounded (see widelimit.go). Only a single-byte Comma
	// is counted.
	MaxColumns    int
	MaxColumnsWhy string
}

// Table is the numeric part of a file (or of a chunk of it): the selected
// columns of its data rows.
type Table struct {
	// Names and ContextNames name the selected data and context columns:
	// a column's header cell, or "x<j>" for column j without one.
	Names, ContextNames []string
	// X holds the data columns of the rows, C the context columns (nil
	// without context columns).
	X, C *mat.Dense
	// CatNames name the categorical columns, and Cats holds their levels
	// as text, row-major like Kept.
	CatNames []string
	Cats     []string
	// LeftOut says which text columns Detect left out, and why.
	LeftOut []string
	// KeepNames name the kept columns (Options.Keep), and Kept holds
	// their cells as text, row-major: row i's are Kept[i·k : (i+1)·k] for
	// k kept columns.
	KeepNames []string
	Kept      []string
	// First is the index of the first row among the file's data rows
	// (from 0; a header is not a data row), and Lines[i] the line of the
	// file (from 1) where row i starts.
	First int
	Lines []int
	// Skipped are the rows left out for a missing value (SkipMissing), in
	// file order, each with its line, data row and first missing column.
	Skipped []*RowError
	// index[i] is the data row of row i when rows were skipped; nil when
	// the rows are First, First+1, ….
	index []int
}

// Rows returns the number of rows.
func (t *Table) Rows() int { return len(t.Lines) }

// Row returns the index among the file's data rows (from 0, skipped rows
// counted) of row i of t.
func (t *Table) Row(i int) int {
	if t.index != nil {
		return t.index[i]
	}
	return t.First + i
}

// ReadFile reads the whole file at path as a table; see Read.
func ReadFile(path string, opt Options) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, path, opt)
}

// Read reads all of r as a table; name is the file's name in messages.
//
// Every error names the file and, where there is one, the line (counting
// from 1) and the column (counting from 0, as a selection by index does):
// a cell that is empty, not a number, out of range or not finite; a row
// with a different number of columns than the first; an empty file; a
// header without data rows; a selection of columns that does not exist or
// does not match Want.
func Read(r io.Reader, name string, opt Options) (*Table, error) {
	rd, err := NewReader(r, name, opt)
	if err != nil {
		return nil, err
	}
	t, err := rd.Read(-1)
	switch {
	case err == io.EOF:
		return nil, rd.noRows()
	case err == nil && t.Rows() == 0:
		return nil, fmt.Errorf("%s: every data row has a missing value (%d %s skipped; the first: %v)",
			name, len(t.Skipped), plural(len(t.Skipped), "row"), t.Skipped[0])
	}
	return t, err
}

// record is one row of the file with the line where each field starts.
type record struct {
	fields []string
	lines  []int
}

// Reader reads a file in chunks of rows.
type Reader struct {
	name      string
	cr        *csv.Reader
	header    bool
	hdr       []string // the header's cells, trimmed, when header
	width     int      // the columns of every row
	cols      []int    // the data columns, as indexes into a row
	ctx       []int    // the context columns
	keep      []int    // the kept columns
	cats      []int    // the categorical columns
	catNames  []string
	leftOut   []string // Detect's notes
	names     []string
	ctxNames  []string
	keepNames []string
	firstLine int       // the line of the first row, header or data
	pending   []*record // rows read while looking for a header, not yet returned
	rows      int       // data rows returned so far
	opt       Options
}

// utf8BOM is the byte order mark that some programs put at the start of a
// UTF-8 file; it is not part of the first header name.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// NewReader reads the first rows of r (the header, when there is one) and
// selects the columns; name is the file's name in messages. It returns
// Read's errors for an empty file and a bad selection.
func NewReader(r io.Reader, name string, opt Options) (*Reader, error) {
	if opt.ColumnsName == "" {
		opt.ColumnsName = "columns"
	}
	if opt.ContextName == "" {
		opt.ContextName = "context"
	}
	if opt.KeepName == "" {
		opt.KeepName = "keep"
	}
	if opt.HeaderName == "" {
		opt.HeaderName = "Header: HeaderYes"
	}
	if opt.MissingName == "" {
		opt.MissingName = "SkipMissing: true"
	}
	if opt.NA == nil {
		opt.NA = DefaultNA
	}
	if comma := opt.Comma; opt.MaxColumns > 0 && comma < utf8.RuneSelf {
		if comma == 0 {
			comma = ','
		}
		r = &columnLimit{r: r, why: opt.MaxColumnsWhy, comma: byte(comma), max: opt.MaxColumns, fields: 1, line: 1}
	}
	br := bufio.NewReaderSize(r, 1<<16)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	if opt.Comma != 0 {
		cr.Comma = opt.Comma
	}
	cr.FieldsPerRecord = -1 // rows of the wrong length get a better message
	cr.TrimLeadingSpace = cr.Comma != '\t' && cr.Comma != ' '
	rd := &Reader{name: name, cr: cr, opt: opt}
	first, err := rd.record()
	if err != nil {
		return nil, err
	}
	if first == nil {
		return nil, fmt.Errorf("%s: the file is empty: want a header row (optional) and rows of numbers", name)
	}
	second, err := rd.record()
	if err != nil {
		return nil, err
	}
	rd.width, rd.firstLine = len(first.fields), first.lines[0]
	switch opt.Header {
	case HeaderYes:
		rd.header = true
	case HeaderNo:
		rd.header = false
	default:
		rd.header = looksLikeHeader(first.fields, second)
	}
	if rd.header {
		rd.hdr = make([]string, rd.width)
		for j, c := range first.fields {
			rd.hdr[j] = strings.TrimSpace(text(c))
		}
	} else {
		rd.pending = append(rd.pending, first)
	}
	if second != nil {
		rd.pending = append(rd.pending, second)
	}
	if opt.Detect && len(opt.Columns) == 0 {
		if rd.leftOut, err = rd.detect(); err != nil {
			return nil, err
		}
	}
	if err := rd.selectColumns(); err != nil {
		return nil, err
	}
	return rd, nil
}

// text returns s, or, when s is not valid UTF-8, s read as Latin-1 (ISO
// 8859-1, each byte the code point of its value), which is how spreadsheet
// programs on some systems export names with accents. Names read this way
// are the same in every file of that encoding, so a model stores them as
// UTF-8 and finds its columns again in its own training file; invalid
// UTF-8 kept as it was would become U+FFFD in the model file.
func text(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := range len(s) {
		r[i] = rune(s[i])
	}
	return string(r)
}

// Names returns the names of the selected data columns.
func (rd *Reader) Names() []string { return rd.names }

// ContextNames returns the names of the selected context columns.
func (rd *Reader) ContextNames() []string { return rd.ctxNames }

// KeepNames returns the names of the kept columns (Options.Keep).
func (rd *Reader) KeepNames() []string { return rd.keepNames }

// HasHeader reports whether the file's first row is a header.
func (rd *Reader) HasHeader() bool { return rd.header }

// Header returns the header's cells (trimmed), or nil without a header.
func (rd *Reader) Header() []string { return rd.hdr }

// record reads the next record, or nil at the end of the file.
func (rd *Reader) record() (*record, error) {
	f, err := rd.cr.Read()
	if err == io.EOF {
		return nil, nil
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d:%d: %v", rd.name, pe.Line, pe.Column, pe.Err)
		}
		return nil, fmt.Errorf("%s: %v", rd.name, err)
	}
	rec := &record{fields: f, lines: make([]int, len(f))}
	for j := range f {
		rec.lines[j], _ = rd.cr.FieldPos(j)
	}
	return rec, nil
}

// noRows is the error of a file without data rows.
func (rd *Reader) noRows() error {
	return fmt.Errorf("%s:%d: a header row but no data rows", rd.name, rd.firstLine)
}

// Read returns the next rows of the file, at most max of them (all the
// rest when max < 0), or (nil, io.EOF) after the last row. A bad row is an
// error naming its line and column; the rows before it in the chunk are
// not returned. Rows skipped for a missing value (SkipMissing) do not
// count towards max; a chunk whose rows were all skipped has no rows (X
// and C are nil) and only Skipped.
func (rd *Reader) Read(max int) (*Table, error) {
	t := &Table{Names: rd.names, ContextNames: rd.ctxNames, KeepNames: rd.keepNames, CatNames: rd.catNames, LeftOut: rd.leftOut, First: rd.rows}
	var data, cdata []float64
	for max < 0 || len(t.Lines) < max {
		var rec *record
		if len(rd.pending) > 0 {
			rec, rd.pending = rd.pending[0], rd.pending[1:]
		} else {
			var err error
			if rec, err = rd.record(); err != nil {
				return nil, err
			}
			if rec == nil {
				break
			}
		}
		row := rd.rows
		rd.rows++
		if len(rec.fields) != rd.width {
			return nil, &RowError{Name: rd.name, Line: rec.lines[0], Row: row, Column: -1, Issue: Width,
				Msg: fmt.Sprintf("%s:%d: a row of %d %s, but the first row (line %d) has %d",
					rd.name, rec.lines[0], len(rec.fields), plural(len(rec.fields), "column"), rd.firstLine, rd.width)}
		}
		d, err := rd.cells(data, rec, row, rd.cols)
		var cd []float64
		if err == nil {
			cd, err = rd.cells(cdata, rec, row, rd.ctx)
		}
		n := len(t.Cats)
		if err == nil {
			t.Cats, err = rd.catCells(t.Cats, rec, row)
		}
		if err != nil {
			skip, serr := rd.skip(err, rec, row)
			if !skip {
				return nil, serr
			}
			t.Cats = t.Cats[:n]
			t.Skipped = append(t.Skipped, serr)
			if t.index == nil {
				t.index = make([]int, len(t.Lines))
				for i := range t.Lines {
					t.index[i] = t.First + i
				}
			}
			continue
		}
		data, cdata = d, cd
		for _, j := range rd.keep {
			t.Kept = append(t.Kept, text(rec.fields[j]))
		}
		if t.index != nil {
			t.index = append(t.index, row)
		}
		t.Lines = append(t.Lines, rec.lines[0])
	}
	if len(t.Lines) == 0 {
		if len(t.Skipped) > 0 {
			// The rows left were all skipped: a chunk of no rows (X and C
			// nil), so the caller sees them; io.EOF comes on the next call.
			return t, nil
		}
		return nil, io.EOF
	}
	t.X = mat.NewDense(len(t.Lines), len(rd.cols), data)
	if len(rd.ctx) > 0 {
		t.C = mat.NewDense(len(t.Lines), len(rd.ctx), cdata)
	}
	return t, nil
}

// cells appends the values of the columns cols of rec, data row row, to
// dst.
func (rd *Reader) cells(dst []float64, rec *record, row int, cols []int) ([]float64, error) {
	for _, j := range cols {
		v, issue, why := rd.cell(rec.fields[j], j)
		if issue != 0 {
			msg := fmt.Sprintf("%s:%d: %s", rd.name, rec.lines[j], why)
			maybeHeader := row == 0 && !rd.header && rec.lines[0] == rd.firstLine && rd.opt.Header == HeaderAuto
			if maybeHeader {
				msg += " (if line " + strconv.Itoa(rd.firstLine) + " is a header, say so with " + rd.opt.HeaderName + ")"
			}
			e := &RowError{Name: rd.name, Line: rec.lines[j], Row: row, Column: j, Issue: issue, Msg: msg, Missing: rd.isNA(rec.fields[j])}
			switch {
			case e.Missing && !rd.opt.SkipMissing:
				e.Msg += "; it marks a missing value: leave such rows out with " + rd.opt.MissingName
			case issue == NotANumber && !e.Missing && !maybeHeader && rd.opt.CategoricalName != "":
				e.Msg += "; a column of text is a category (name it with " + rd.opt.CategoricalName + ") or an identifier (leave it out of " + rd.opt.ColumnsName + ")"
			}
			if rd.header {
				e.Header = rd.hdr[j]
			}
			return nil, e
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// looksLikeHeader reports whether the first row is a header: some cell of
// it is neither empty nor a number while the cell below it, in the second
// row, is a number. With one row only, a cell that is neither empty nor a
// number is enough. So a header is recognised above numeric data, even
// with columns of text (labels, ids) that are not used, and a first row of
// data with an empty cell is not taken for one.
func looksLikeHeader(first []string, second *record) bool {
	for j, c := range first {
		if c = strings.TrimSpace(c); c == "" || isNumber(c) {
			continue
		}
		if second == nil || (j < len(second.fields) && isNumber(strings.TrimSpace(second.fields[j]))) {
			return true
		}
	}
	return false
}

// isNumber reports whether s parses as a float64, NaN and ±Inf included.
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil || errors.Is(err, strconv.ErrRange)
}

// cell parses the cell s of column j, or says why it is not a finite
// number.
func (rd *Reader) cell(s string, j int) (float64, Issue, string) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case s == "":
		return 0, EmptyCell, fmt.Sprintf("%s: empty cell, want a number", rd.label(j))
	case errors.Is(err, strconv.ErrRange):
		return 0, NotFinite, fmt.Sprintf("%s: %q is out of the range of float64", rd.label(j), s)
	case err != nil:
		return 0, NotANumber, fmt.Sprintf("%s: %q is not a number", rd.label(j), s)
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, NotFinite, fmt.Sprintf("%s: %q is not a finite number", rd.label(j), s)
	}
	return v, 0, ""
}

// Issue says what is wrong with a row (see RowError).
type Issue int

const (
	// EmptyCell is a selected cell with nothing in it.
	EmptyCell Issue = iota + 1
	// NotANumber is a cell that does not parse as a number.
	NotANumber
	// NotFinite is NaN, ±Inf, or a number beyond the range of float64.
	NotFinite
	// Width is a row with another number of columns than the first.
	Width
)

// RowError is the error of a bad data row: a cell of a selected column
// that is not a finite number, or a row of the wrong width. Its message
// names the file, the line and the column, as "data.csv:17: column 3
// ("price"): "abc" is not a number"; its fields say the same for programs
// (flows serve turns them into a JSON error).
type RowError struct {
	// Name is the input's name as given to NewReader; Line the line
	// (from 1) of the bad cell, or of the row's start for Width.
	Name string
	Line int
	// Row is the data row, counting from 0 (a header is not a data row).
	Row int
	// Column is the file's column of the bad cell (from 0), or −1 for
	// Width; Header is its header cell, or "".
	Column int
	Header string
	Issue  Issue
	// Missing says that the cell is one of the tokens of a missing value
	// (Options.NA), whatever its Issue.
	Missing bool
	// Msg is the whole message.
	Msg string
}

// Error returns the message.
func (e *RowError) Error() string { return e.Msg }

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// quoteList returns the strings quoted, for a list in a message.
func quoteList(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return q
}

// shortList joins items, or the first max of them and how many more.
func shortList(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:max], ", "), len(items)-max)
}
