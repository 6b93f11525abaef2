package main

// What flows fit does to a table before fitting it: the audit
// (prep.Audit) and its messages, --drop-constant, --dequantize and
// --bounds.

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/prep"
	"github.com/gonormflows/flows/table"
)

// dequantizeFlag is --dequantize: alone, every column of integers; with
// =a,b, the columns named.
type dequantizeFlag struct {
	all   bool
	names []string
}

func (d *dequantizeFlag) String() string {
	if d == nil || d.all {
		return ""
	}
	return strings.Join(d.names, ",")
}

// IsBoolFlag lets --dequantize stand alone.
func (d *dequantizeFlag) IsBoolFlag() bool { return true }

func (d *dequantizeFlag) Set(s string) error {
	switch s {
	case "true":
		*d = dequantizeFlag{all: true}
	case "false":
		*d = dequantizeFlag{}
	default:
		*d = dequantizeFlag{names: splitList(s)}
		if len(d.names) == 0 {
			return fmt.Errorf("%q names no column", s)
		}
	}
	return nil
}

// boundsFlag is --bounds col=lo:hi,...; it may be given more than once.
type boundsFlag []namedBound

// namedBound is one column's bounds as the flag names them.
type namedBound struct {
	column string
	lo, hi float64
}

func (b *boundsFlag) String() string {
	if b == nil {
		return ""
	}
	var s []string
	for _, nb := range *b {
		s = append(s, nb.column+"="+model.Bound{Lo: nb.lo, Hi: nb.hi}.String())
	}
	return strings.Join(s, ",")
}

func (b *boundsFlag) Set(s string) error {
	for _, item := range splitList(s) {
		col, rng, ok := strings.Cut(item, "=")
		lo, hi, ok2 := strings.Cut(rng, ":")
		if !ok || !ok2 || col == "" {
			return fmt.Errorf("%q: want col=lo:hi (an empty side is open)", item)
		}
		nb := namedBound{column: col, lo: math.Inf(-1), hi: math.Inf(1)}
		for _, side := range []struct {
			text string
			into *float64
		}{{lo, &nb.lo}, {hi, &nb.hi}} {
			if side.text == "" {
				continue
			}
			v, err := strconv.ParseFloat(side.text, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%q: %q is not a finite number", item, side.text)
			}
			*side.into = v
		}
		switch {
		case lo == "" && hi == "":
			return fmt.Errorf("%q: give lo, hi or both", item)
		case !(nb.lo < nb.hi):
			return fmt.Errorf("%q: want lo < hi", item)
		}
		*b = append(*b, nb)
	}
	return nil
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// prepare audits t before the fit (prep.Audit): a constant column is an
// error, or, with --drop-constant, dropped from t with a note; it sets
// cfg's Dequantize and Bounds from the flags (column names or indexes of
// t's columns, after the drop); and it warns, on standard error, of the
// other findings, but not of integers in a dequantised column (and of
// none with --quiet).
func (f *fitFlags) prepare(e *env, path string, t *table.Table, cfg *model.Config) error {
	if t.Rows() < 2 {
		return nil // too few rows to say anything; the fit says so
	}
	findings := prep.Audit(t.X, t.Names)
	var drop []int
	for _, fd := range findings {
		switch {
		case fd.Fatal() && f.dropConst:
			drop = append(drop, fd.Column)
			if !f.quiet {
				fmt.Fprintf(e.stderr, "dropped %s\n", strings.TrimSuffix(fd.Message, "; drop it"))
			}
		case fd.Fatal():
			return fmt.Errorf("%s: %s with --drop-constant, or leave it out of --columns", path, fd.Message)
		}
	}
	if len(drop) == len(t.Names) {
		return fmt.Errorf("%s: every column is constant: nothing to fit", path)
	}
	newIndex := dropColumns(t, drop)

	// --dequantize and --bounds, by the name or index of a kept column.
	column := func(flag, s string) (int, error) {
		if j := slices.Index(t.Names, s); j >= 0 {
			return j, nil
		}
		if j, err := strconv.Atoi(s); err == nil && j >= 0 && j < len(t.Names) {
			return j, nil
		}
		return 0, fmt.Errorf("%s: %s: %q is not one of the model's columns (%s; or an index, 0 to %d)", path, flag, s, joinNames(t.Names), len(t.Names)-1)
	}
	deq := map[int]bool{}
	if f.dequantize.all {
		for _, fd := range findings {
			if fd.Issue == prep.Integers {
				deq[newIndex[fd.Column]] = true
			}
		}
	}
	for _, s := range f.dequantize.names {
		j, err := column("--dequantize", s)
		if err != nil {
			return err
		}
		deq[j] = true
	}
	cfg.Dequantize = slices.Sorted(maps.Keys(deq))
	for _, nb := range f.bounds {
		j, err := column("--bounds", nb.column)
		if err != nil {
			return err
		}
		cfg.Bounds = append(cfg.Bounds, model.Bound{Column: j, Lo: nb.lo, Hi: nb.hi})
	}

	for _, fd := range findings {
		switch {
		case fd.Fatal() || f.quiet:
		case fd.Issue == prep.Integers && deq[newIndex[fd.Column]]:
		case fd.Issue == prep.Integers:
			fmt.Fprintf(e.stderr, "warning: %s: %s (--dequantize does)\n", path, fd.Message)
		default:
			fmt.Fprintf(e.stderr, "warning: %s: %s\n", path, fd.Message)
		}
	}
	if len(cfg.Dequantize) > 0 && !f.quiet {
		var names []string
		for _, j := range cfg.Dequantize {
			names = append(names, t.Names[j])
		}
		fmt.Fprintf(e.stderr, "dequantising %s: fitted as integers with uniform noise; samples are integers\n", joinNames(names))
	}
	return nil
}

// dropColumns removes the columns in drop from t and returns, for each old
// column, its new index (−1 for a dropped one).
func dropColumns(t *table.Table, drop []int) []int {
	newIndex := make([]int, len(t.Names))
	if len(drop) == 0 {
		for j := range newIndex {
			newIndex[j] = j
		}
		return newIndex
	}
	var keep []int
	var names []string
	for j, name := range t.Names {
		newIndex[j] = -1
		if !slices.Contains(drop, j) {
			newIndex[j] = len(keep)
			keep = append(keep, j)
			names = append(names, name)
		}
	}
	x := mat.NewDense(t.Rows(), len(keep), nil)
	for k, j := range keep {
		x.SetCol(k, mat.Col(nil, j, t.X))
	}
	t.X, t.Names = x, names
	return newIndex
}

// read reads the table to fit: the text columns that are not picked are
// categories (few levels) or left out (identifiers, row numbers) with a
// note; with --missing skip, the rows with a missing value are left out,
// counted and listed in --rejects (written even if the fit fails: they
// describe the file).
func (f *fitFlags) read(e *env, path string, opt table.Options) (*table.Table, error) {
	rj, err := openRejects(e, f.rows.rejects)
	if err != nil {
		return nil, err
	}
	t, err := readTable(e, path, opt)
	if err == nil {
		err = rj.add(t.Skipped)
	}
	if err := rj.finish(err); err != nil {
		return nil, err
	}
	if f.quiet {
		return t, nil
	}
	for _, note := range t.LeftOut {
		fmt.Fprintf(e.stderr, "%s: left out %s\n", path, note)
	}
	rj.note(e, path, t.Rows(), f.rows.rejects)
	if len(t.CatNames) > 0 {
		fmt.Fprintf(e.stderr, "%s: categorical %s %s: the flow models the numbers given %s, and their combinations are counted\n",
			path, plural(len(t.CatNames), "column"), joinNames(t.CatNames), map[bool]string{true: "it", false: "them"}[len(t.CatNames) == 1])
	}
	return t, nil
}

// Thresholds of smallTable's warnings.
const (
	// minValRows is the fewest validation rows whose mean NLL picks an
	// epoch reliably: below it, one odd row moves the mean by more than
	// the epochs differ.
	minValRows = 30
	// maxParamsPerValue is the most parameters per number of the table
	// (rows × columns) before the model is far larger than the table.
	maxParamsPerValue = 20
)

// smallTable warns when the table is small for the model: too few
// validation rows to choose the epoch, or far more parameters than the
// table has numbers.
func smallTable(e *env, path string, rows, dim, params, valRows int) {
	if valRows > 0 && valRows < minValRows {
		fmt.Fprintf(e.stderr, "warning: %s: only %d validation %s choose the epoch (and give the figures above): fewer than %d, so they are noisy; a larger table, or a larger --val, makes them trustworthy\n",
			path, valRows, plural(valRows, "row"), minValRows)
	}
	if values := rows * dim; params > maxParamsPerValue*values {
		fmt.Fprintf(e.stderr, "warning: %s: the model has %d parameters for %d %s of %d %s (%d numbers): far more than such a table pins down; compare the held-out NLL of a smaller model (--layers, --hidden) and of the Gaussian\n",
			path, params, rows, plural(rows, "row"), dim, plural(dim, "column"), values)
	}
}
