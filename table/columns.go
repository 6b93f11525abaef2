package table

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Picking columns: by header name, by the name x<j> of a column without a
// header cell, or by index; the names of the picked columns in messages.

// selectColumns sets the data and context columns and their names from the
// options, and checks them against Want and WantContext.
func (rd *Reader) selectColumns() error {
	at := fmt.Sprintf("%s:%d", rd.name, rd.firstLine)
	seen := make(map[int]string)
	pick := func(list []string, setting string) ([]int, error) {
		var cols []int
		for _, c := range list {
			j, err := rd.findColumn(c, setting)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", at, err)
			}
			if prev, dup := seen[j]; dup {
				return nil, fmt.Errorf("%s: %s picks %s twice (%q and %q)", at, setting, rd.label(j), prev, c)
			}
			seen[j] = c
			cols = append(cols, j)
		}
		return cols, nil
	}
	var err error
	if rd.ctx, err = pick(rd.opt.Context, rd.opt.ContextName); err != nil {
		return err
	}
	if rd.cats, err = pick(rd.opt.Categorical, cmp.Or(rd.opt.CategoricalName, "categorical")); err != nil {
		return err
	}
	if len(rd.opt.Columns) > 0 {
		if rd.cols, err = pick(rd.opt.Columns, rd.opt.ColumnsName); err != nil {
			return err
		}
	} else {
		for j := range rd.width {
			if _, used := seen[j]; !used {
				rd.cols = append(rd.cols, j)
			}
		}
	}
	rd.names, rd.ctxNames, rd.catNames = rd.columnNames(rd.cols), rd.columnNames(rd.ctx), rd.columnNames(rd.cats)
	for _, c := range rd.opt.Keep {
		j, err := rd.findColumn(c, rd.opt.KeepName)
		if err != nil {
			return fmt.Errorf("%s: %v", at, err)
		}
		if slices.Contains(rd.keep, j) {
			return fmt.Errorf("%s: %s picks %s twice", at, rd.opt.KeepName, rd.label(j))
		}
		rd.keep = append(rd.keep, j)
		rd.keepNames = append(rd.keepNames, rd.columnName(j))
	}
	check := func(cols []int, names []string, want int, setting, what string, given bool) error {
		if want <= 0 || len(cols) == want {
			return nil
		}
		sel := "the file has"
		if given {
			sel = setting + " picks"
		} else if len(rd.ctx) > 0 {
			sel = "the file has, besides the context,"
		}
		return fmt.Errorf("%s: %s %d %s (%s), but %s is a model of %d %s; pick %d with %s",
			at, sel, len(cols), plural(len(cols), what), shortList(quoteList(names), 8),
			rd.opt.Model, want, plural(want, what), want, setting)
	}
	if err := check(rd.cols, rd.names, rd.opt.Want, rd.opt.ColumnsName, "column", len(rd.opt.Columns) > 0); err != nil {
		return err
	}
	return check(rd.ctx, rd.ctxNames, rd.opt.WantContext, rd.opt.ContextName, "context column", true)
}

// columnNames returns the names of the columns cols.
func (rd *Reader) columnNames(cols []int) []string {
	if len(cols) == 0 {
		return nil
	}
	names := make([]string, len(cols))
	for k, j := range cols {
		names[k] = rd.columnName(j)
	}
	return names
}

// findColumn returns the index of the column that c names: a header name
// first, then the name "x<j>" of a column j without a header cell, else a
// 0-based index; setting names the option in errors.
func (rd *Reader) findColumn(c, setting string) (int, error) {
	if rd.header {
		found := -1
		for j, h := range rd.hdr {
			if h == c {
				if found >= 0 {
					return 0, fmt.Errorf("the header has two columns named %q (%d and %d); pick one by index", c, found, j)
				}
				found = j
			}
		}
		if found >= 0 {
			return found, nil
		}
	}
	// The name this package gives a column without a header cell, "x<j>",
	// picks column j: a model fitted on a headerless file records such
	// names, and reads another headerless file by position.
	if k, ok := strings.CutPrefix(c, "x"); ok {
		if j, err := strconv.Atoi(k); err == nil && j >= 0 && j < rd.width && rd.columnName(j) == c {
			return j, nil
		}
	}
	j, err := strconv.Atoi(c)
	switch {
	case err == nil && (j < 0 || j >= rd.width):
		return 0, fmt.Errorf("%s %d: the file has %d %s, 0 to %d", setting, j, rd.width, plural(rd.width, "column"), rd.width-1)
	case err == nil:
		return j, nil
	case rd.header:
		return 0, fmt.Errorf("%s: no column is named %q; the header has %s", setting, c, shortList(quoteList(rd.hdr), 12))
	default:
		return 0, fmt.Errorf("%s %q: the file has no header row, so pick columns by 0-based index (0 to %d)", setting, c, rd.width-1)
	}
}

// columnName is the name of column j: its header cell, or "x<j>" without a
// header or when the cell is empty.
func (rd *Reader) columnName(j int) string {
	if rd.header && rd.hdr[j] != "" {
		return rd.hdr[j]
	}
	return "x" + strconv.Itoa(j)
}

// label names column j in a message: column 3 ("price"), or column 3.
func (rd *Reader) label(j int) string {
	if rd.header && rd.hdr[j] != "" {
		return fmt.Sprintf("column %d (%q)", j, rd.hdr[j])
	}
	return fmt.Sprintf("column %d", j)
}
