package main

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

	"gonum.org/v1/gonum/mat"
)

// csvOptions says how to read a CSV file into a table.
type csvOptions struct {
	// columns selects columns by header name or 0-based index, in order;
	// nil selects them all.
	columns []string
	// header is "auto", "yes" or "no" (see looksLikeHeader); "" is auto.
	header string
	// comma is the field delimiter; 0 is a comma.
	comma rune
	// dim, when positive, is the number of columns the selection must
	// have: the dimension of the model named model.
	dim   int
	model string
}

// table is the numeric part of a CSV file: the selected columns of its data
// rows, with what it takes to name a cell in a message.
type table struct {
	name      string     // the file's name in messages ("data.csv", or "stdin")
	header    bool       // the first row is a header
	hdr       []string   // the header's cells, trimmed, when header
	width     int        // the number of columns of every row
	cols      []int      // the selected columns, as indexes into a row
	names     []string   // the selected columns' names (see columnName)
	firstLine int        // the line of the first row, header or data
	x         *mat.Dense // the data rows, the selected columns in order
	lines     []int      // lines[i] is the line where data row i starts
}

// utf8BOM is the byte order mark that some programs put at the start of a
// UTF-8 file; it is not part of the first header name.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// readTable reads the CSV file at path ("-" for standard input) as a table.
func readTable(e *env, path string, opt csvOptions) (*table, error) {
	if path == "-" {
		return parseTable("stdin", e.stdin, opt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseTable(path, f, opt)
}

// record is one row of the file with the line where each field starts.
type record struct {
	fields []string
	lines  []int
}

// parseTable reads CSV data from r; name is the file's name in messages.
//
// Every error names the file and, where there is one, the line (counting
// from 1) and the column (counting from 0, as --columns does): a cell that
// is empty, not a number, out of range or not finite; a row with a
// different number of columns than the first; an empty file; a header
// without data rows; a selection of columns that does not exist or does not
// match the model's dimension.
func parseTable(name string, r io.Reader, opt csvOptions) (*table, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		br.Discard(len(utf8BOM))
	}
	cr := csv.NewReader(br)
	if opt.comma != 0 {
		cr.Comma = opt.comma
	}
	cr.FieldsPerRecord = -1 // rows of the wrong length get a better message below
	cr.TrimLeadingSpace = cr.Comma != '\t' && cr.Comma != ' '
	read := func() (*record, error) {
		f, err := cr.Read()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d:%d: %v", name, pe.Line, pe.Column, pe.Err)
			}
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		rec := &record{fields: f, lines: make([]int, len(f))}
		for j := range f {
			rec.lines[j], _ = cr.FieldPos(j)
		}
		return rec, nil
	}

	first, err := read()
	if err != nil {
		return nil, err
	}
	if first == nil {
		return nil, fmt.Errorf("%s: the file is empty: want a header row (optional) and rows of numbers", name)
	}
	second, err := read()
	if err != nil {
		return nil, err
	}
	t := &table{name: name, width: len(first.fields), firstLine: first.lines[0]}
	switch opt.header {
	case "yes":
		t.header = true
	case "no":
		t.header = false
	default:
		t.header = looksLikeHeader(first.fields, second)
	}
	if t.header {
		t.hdr = make([]string, t.width)
		for j, c := range first.fields {
			t.hdr[j] = strings.TrimSpace(c)
		}
	}
	if err := t.selectColumns(opt); err != nil {
		return nil, err
	}

	data := make([]float64, 0, 64*len(t.cols))
	row := func(rec *record) error {
		if len(rec.fields) != t.width {
			return fmt.Errorf("%s:%d: a row of %d %s, but the first row (line %d) has %d",
				name, rec.lines[0], len(rec.fields), plural(len(rec.fields), "column"), t.firstLine, t.width)
		}
		for _, j := range t.cols {
			v, err := t.cell(rec.fields[j], j)
			if err != nil {
				msg := fmt.Sprintf("%s:%d: %v", name, rec.lines[j], err)
				if rec == first && opt.header != "yes" && opt.header != "no" {
					msg += " (if line " + strconv.Itoa(t.firstLine) + " is a header, add --header yes)"
				}
				return errors.New(msg)
			}
			data = append(data, v)
		}
		t.lines = append(t.lines, rec.lines[0])
		return nil
	}
	if !t.header {
		if err := row(first); err != nil {
			return nil, err
		}
	}
	if second != nil {
		if err := row(second); err != nil {
			return nil, err
		}
		cr.ReuseRecord = true
		for {
			rec, err := read()
			if err != nil {
				return nil, err
			}
			if rec == nil {
				break
			}
			if err := row(rec); err != nil {
				return nil, err
			}
		}
	}
	if len(t.lines) == 0 {
		return nil, fmt.Errorf("%s:%d: a header row but no data rows", name, t.firstLine)
	}
	t.x = mat.NewDense(len(t.lines), len(t.cols), data)
	return t, nil
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

// selectColumns sets t.cols and t.names from opt.columns, and checks the
// selection against opt.dim.
func (t *table) selectColumns(opt csvOptions) error {
	at := fmt.Sprintf("%s:%d", t.name, t.firstLine)
	if len(opt.columns) == 0 {
		t.cols = make([]int, t.width)
		for j := range t.cols {
			t.cols[j] = j
		}
	}
	seen := make(map[int]string)
	for _, c := range opt.columns {
		j, err := t.findColumn(c)
		if err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
		if prev, dup := seen[j]; dup {
			return fmt.Errorf("%s: --columns names %s twice (%q and %q)", at, t.label(j), prev, c)
		}
		seen[j] = c
		t.cols = append(t.cols, j)
	}
	t.names = make([]string, len(t.cols))
	for k, j := range t.cols {
		t.names[k] = t.columnName(j)
	}
	if opt.dim > 0 && len(t.cols) != opt.dim {
		what := "the file has"
		if len(opt.columns) > 0 {
			what = "--columns selects"
		}
		return fmt.Errorf("%s: %s %d %s (%s), but %s is a model of %d %s; choose %d with --columns",
			at, what, len(t.cols), plural(len(t.cols), "column"), strings.Join(quoteAll(t.names), ", "),
			opt.model, opt.dim, plural(opt.dim, "column"), opt.dim)
	}
	return nil
}

// findColumn returns the index of the column that c names: a header name
// first, else a 0-based index.
func (t *table) findColumn(c string) (int, error) {
	if t.header {
		found := -1
		for j, h := range t.hdr {
			if h == c {
				if found >= 0 {
					return 0, fmt.Errorf("the header has two columns named %q (%d and %d); select one by index", c, found, j)
				}
				found = j
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	j, err := strconv.Atoi(c)
	switch {
	case err == nil && (j < 0 || j >= t.width):
		return 0, fmt.Errorf("--columns %d: the file has %d %s, 0 to %d", j, t.width, plural(t.width, "column"), t.width-1)
	case err == nil:
		return j, nil
	case t.header:
		return 0, fmt.Errorf("--columns: no column is named %q; the header has %s", c, strings.Join(quoteAll(t.hdr), ", "))
	default:
		return 0, fmt.Errorf("--columns %q: the file has no header row, so select columns by 0-based index (0 to %d)", c, t.width-1)
	}
}

// columnName is the name of column j: its header cell, or "x<j>" without a
// header or when the cell is empty.
func (t *table) columnName(j int) string {
	if t.header && t.hdr[j] != "" {
		return t.hdr[j]
	}
	return "x" + strconv.Itoa(j)
}

// label names column j in a message: column 3 ("price"), or column 3.
func (t *table) label(j int) string {
	if t.header && t.hdr[j] != "" {
		return fmt.Sprintf("column %d (%q)", j, t.hdr[j])
	}
	return fmt.Sprintf("column %d", j)
}

// cell parses the cell s of column j, or says why it is not a finite
// number.
func (t *table) cell(s string, j int) (float64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseFloat(s, 64)
	switch {
	case s == "":
		return 0, fmt.Errorf("%s: empty cell, want a number", t.label(j))
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("%s: %q is out of the range of float64", t.label(j), s)
	case err != nil:
		return 0, fmt.Errorf("%s: %q is not a number", t.label(j), s)
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Errorf("%s: %q is not a finite number", t.label(j), s)
	}
	return v, nil
}

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// quoteAll returns the strings quoted, for a list in a message.
func quoteAll(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return q
}
