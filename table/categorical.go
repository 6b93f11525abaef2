package table

// Categorical columns: cells read as text levels (Options.Categorical), and
// the detection of text columns when no columns are picked
// (Options.Detect): few distinct values make a category, many make
// identifiers, which are left out.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// MaxLevels is the most distinct values a text column may have to be
// detected as a category (Options.Detect). A text column with more, or
// with hardly a repeated value, is taken for identifiers (row names, ids)
// and left out, with a note in Table.LeftOut.
const MaxLevels = 32

// catCells appends the levels of the categorical columns of rec, data row
// row, to dst, or returns the error of a missing one.
func (rd *Reader) catCells(dst []string, rec *record, row int) ([]string, error) {
	for _, j := range rd.cats {
		c := strings.TrimSpace(text(rec.fields[j]))
		if rd.isNA(c) {
			issue, why := NotANumber, fmt.Sprintf("%s: %q marks a missing value", rd.label(j), c)
			if c == "" {
				issue, why = EmptyCell, fmt.Sprintf("%s: empty cell, want a level", rd.label(j))
			}
			e := &RowError{Name: rd.name, Line: rec.lines[j], Row: row, Column: j, Issue: issue, Missing: true,
				Msg: fmt.Sprintf("%s:%d: %s", rd.name, rec.lines[j], why)}
			if rd.header {
				e.Header = rd.hdr[j]
			}
			if !rd.opt.SkipMissing {
				e.Msg += "; leave such rows out with " + rd.opt.MissingName
			}
			return dst, e
		}
		dst = append(dst, c)
	}
	return dst, nil
}

// detect reads the whole file and sorts the columns that the options do
// not pick (as context, categories or kept columns) into numbers, categories
// and identifiers: a column whose cells that are not missing are mostly
// not numbers is text; text with at most MaxLevels distinct values, each
// seen twice on average, is a category; other text is left out. It sets
// opt.Categorical to the given categories and the detected ones, and
// opt.Columns to the numeric columns, and returns what it left out.
func (rd *Reader) detect() ([]string, error) {
	for {
		rec, err := rd.record()
		if err != nil {
			return nil, err
		}
		if rec == nil {
			break
		}
		rd.pending = append(rd.pending, rec)
	}
	taken := map[int]bool{}
	for _, list := range [][]string{rd.opt.Context, rd.opt.Categorical, rd.opt.Keep} {
		for _, c := range list {
			j, err := rd.findColumn(c, "")
			if err != nil {
				return nil, nil // selectColumns reports it
			}
			taken[j] = true
		}
	}
	var leftOut []string
	for j := range rd.width {
		if taken[j] {
			continue
		}
		levels, isText := rd.levels(j)
		switch {
		case !isText && rd.rowIndex(j):
			leftOut = append(leftOut, fmt.Sprintf("%s: no name and a distinct whole number in every row, taken for row numbers; carry it with %s",
				rd.label(j), rd.opt.KeepName))
		case !isText:
			rd.opt.Columns = append(rd.opt.Columns, rd.columnRef(j))
		case len(levels) <= MaxLevels && 2*len(levels) <= rd.count(j):
			rd.opt.Categorical = append(rd.opt.Categorical, rd.columnRef(j))
		default:
			leftOut = append(leftOut, fmt.Sprintf("%s: text with %d distinct values, taken for identifiers; carry it with %s",
				rd.label(j), len(levels), rd.opt.KeepName))
		}
	}
	return leftOut, nil
}

// levels returns the distinct values of column j among the buffered rows
// that are not missing (up to MaxLevels+1 of them), and whether the column
// is text: at least as many of those cells are not numbers as are; levels
// is nil for a column of numbers.
func (rd *Reader) levels(j int) ([]string, bool) {
	// Text when most cells that are not missing are not numbers: a column
	// of numbers with a stray word in it stays numbers, and the word is
	// an error naming its line.
	text, numbers := 0, 0
	for _, rec := range rd.pending {
		if j < len(rec.fields) {
			switch c := strings.TrimSpace(rec.fields[j]); {
			case rd.isNA(c):
			case isNumber(c):
				numbers++
			default:
				text++
			}
		}
	}
	if text == 0 || text < numbers {
		return nil, false
	}
	seen := map[string]bool{}
	var levels []string
	for _, rec := range rd.pending {
		if j >= len(rec.fields) {
			continue
		}
		c := strings.TrimSpace(rec.fields[j])
		if rd.isNA(c) || seen[c] {
			continue
		}
		seen[c] = true
		if levels = append(levels, c); len(levels) > MaxLevels {
			break
		}
	}
	return levels, true
}

// rowIndex reports whether column j is a file's row numbers, as R's
// write.csv and pandas' to_csv write them: no header cell (or no header),
// and a distinct whole number in every row.
func (rd *Reader) rowIndex(j int) bool {
	if rd.header && rd.hdr[j] != "" || len(rd.pending) < 2 {
		return false
	}
	seen := map[float64]bool{}
	for _, rec := range rd.pending {
		if j >= len(rec.fields) {
			return false
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rec.fields[j]), 64)
		if err != nil || v != math.Trunc(v) || seen[v] {
			return false
		}
		seen[v] = true
	}
	return true
}

// count returns the number of buffered rows whose cell in column j is not
// missing.
func (rd *Reader) count(j int) int {
	n := 0
	for _, rec := range rd.pending {
		if j < len(rec.fields) && !rd.isNA(rec.fields[j]) {
			n++
		}
	}
	return n
}

// columnRef is how the options pick column j: its name, which findColumn
// finds again (a header cell, or x<j> without one).
func (rd *Reader) columnRef(j int) string {
	if rd.header && rd.hdr[j] != "" && slices.Index(rd.hdr, rd.hdr[j]) == j {
		return rd.hdr[j]
	}
	if rd.header && rd.hdr[j] != "" {
		return fmt.Sprint(j) // a repeated name: by index
	}
	return rd.columnName(j)
}
