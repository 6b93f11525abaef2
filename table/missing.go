package table

// Missing values: the cells that mark one (Options.NA) and the rows left
// out for one (Options.SkipMissing).

import (
	"errors"
	"strings"
)

// DefaultNA are the cells that mark a missing value unless Options.NA
// says otherwise: R's NA, an empty cell, NaN (pandas, NumPy) and null
// (SQL, JSON).
var DefaultNA = []string{"NA", "", "NaN", "null"}

// isNA reports whether the cell s marks a missing value.
func (rd *Reader) isNA(s string) bool {
	s = strings.TrimSpace(s)
	for _, na := range rd.opt.NA {
		if strings.EqualFold(s, na) {
			return true
		}
	}
	return false
}

// skip decides, after the first bad cell err of rec (data row row), whether
// the row is left out: with SkipMissing, when every bad cell of the
// selected columns is a missing value. It returns the error to report: the
// first missing cell's for a skipped row, else the first cell that is bad
// for another reason.
func (rd *Reader) skip(err error, rec *record, row int) (bool, *RowError) {
	var first *RowError
	if !errors.As(err, &first) || !first.Missing || !rd.opt.SkipMissing {
		if first == nil {
			first = &RowError{Name: rd.name, Msg: err.Error()}
		}
		return false, first
	}
	for _, cols := range [][]int{rd.cols, rd.ctx} {
		for _, j := range cols {
			if _, e := rd.cells(nil, rec, row, []int{j}); e != nil {
				if re := e.(*RowError); !re.Missing {
					return false, re
				}
			}
		}
	}
	return true, first // a categorical cell is bad only when missing
}
