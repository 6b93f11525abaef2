package main

// Sizes from the command line: model.Limits checks them before anything of
// that size is allocated (see model/limits.go); here its errors name the
// flag that set the size.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// sizeFlags maps a model.SizeError's Config field to the flag that sets it.
var sizeFlags = map[string]string{"Layers": "--layers", "Hidden": "--hidden", "Bins": "--bins"}

// flagSizeError returns err with a model.SizeError's field named by its
// flag (a table's columns and rows by what they are), prefixed by path;
// other errors as they are.
func flagSizeError(path string, err error) error {
	var se *model.SizeError
	if !errors.As(err, &se) {
		return err
	}
	e := *se
	switch {
	case sizeFlags[e.Field] != "":
		e.Field = sizeFlags[e.Field]
		if e.Field == "--hidden" {
			e.Value = strings.ReplaceAll(strings.Trim(se.Value, "[]"), " ", ",")
		}
	case e.Field == "columns":
		e.Field = "the table's columns:"
	case e.Field == "rows":
		e.Field = "the table's rows:"
	}
	return fmt.Errorf("%s: %s", path, strings.TrimPrefix(e.Error(), "flows: "))
}

// checkRows returns an error naming flag when rows rows through m need more
// memory than the limit allows.
func checkRows(path, flag string, m *model.Model, rows int, training bool) error {
	if err := model.DefaultLimits().CheckModelRows(flag, m, rows, training); err != nil {
		return fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "flows: "))
	}
	return nil
}

// checkFitSizes checks the model fit would make of cfg on t before it is
// made, naming the flag whose size is too large.
func checkFitSizes(path string, cfg model.Config, t *table.Table) error {
	_, dim := t.X.Dims()
	cdim := 0
	if t.C != nil {
		_, cdim = t.C.Dims()
	}
	err := model.DefaultLimits().CheckConfig(cfg, dim, cdim, t.Rows())
	if se := (*model.SizeError)(nil); !errors.As(err, &se) {
		return nil // New reports a bad cfg, with the columns
	}
	return flagSizeError(path, err)
}

// limitFitSizes checks cfg's own sizes (--layers, --hidden, --bins) on the
// smallest table, before the file is read, and, when the columns are not
// picked by name, sets opt to refuse a line of more columns than a model of
// cfg may have under the limit, before the line is parsed.
func limitFitSizes(path string, cfg model.Config, opt *table.Options) error {
	l := model.DefaultLimits()
	if err := flagSizeError(path, l.CheckConfig(cfg, 2, 0, 0)); err != nil {
		return err
	}
	if opt.Columns != nil {
		return nil
	}
	// The estimate grows with the columns: find the most it allows.
	lo, hi := 2, 1<<24 // lo fits (checked above)
	if l.CheckConfig(cfg, hi, 0, 0) == nil {
		return nil
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if l.CheckConfig(cfg, mid, 0, 0) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	opt.MaxColumns = lo
	opt.MaxColumnsWhy = fmt.Sprintf(": a model of these settings with more would need over the memory limit of %s (%s); pick columns with --columns",
		model.FormatBytes(l.Memory), model.MemoryEnv)
	return nil
}
