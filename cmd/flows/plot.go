package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/model"
)

// plotFlags are the flags of flows plot.
type plotFlags struct {
	csv        csvFlags
	out        string
	n          autoInt
	seed       uint64
	show       listFlag
	logScale   bool
	xlim, ylim rangeFlag
	title      string
}

var plotCommand = &command{
	name:  "plot",
	args:  "model.flow [data.csv]",
	short: "draw a model's corner plot: its density, samples and data",
	long: `Plot draws the corner plot of a model of any number of columns: a grid of
panels, one row and one column per model column, where the panel in row i
and column j has column j across and column i up, so that a column of panels
shares its horizontal axis and a row its vertical one. Column names label
the axes and the diagonal.

  - On the diagonal, each column's marginal density: the model's (a blue
    line, estimated from 20000 samples, or exact for a model of 1 column)
    over the data's histogram (grey bars), when a CSV file is given.
  - Below it, the data rows (dark dots) over -n samples drawn from the
    model (orange dots); both are drawn smaller and more transparent the
    more of them there are.
  - Above it, the model's density of each pair of columns, as a heat map
    with a colour bar: exact for a model of 2 columns, and for more the
    pair's marginal density estimated by a 2-D histogram of 20000 samples,
    relative to each panel's peak (the panels' units differ). --log-scale
    colours by the log of the density, over 4 powers of 10.

The data are the CSV file's columns found by the model's names (or as
--columns picks them, in the model's order); at most 5000 rows, evenly
spaced through the file, are drawn. --show draws some of the model's
columns only. Each axis spans the middle 99% of the data (or, without
data, of the samples), padded by a tenth; --xlim and --ylim set the first
two shown columns' ranges. Points outside are not drawn. A conditional
model has no corner plot. For a model with categorical columns, the points
are coloured by the level of the first one (data dark, samples light), and
the densities are estimated from samples of the whole model.

The picture is written to the -o file atomically, as PNG, or as SVG or PDF
when the name ends in .svg or .pdf. The model card page of flows serve shows
the same picture.`,
	nArgs: [2]int{1, 2},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &plotFlags{n: autoInt{v: -1}}
		f.csv.add(fs)
		fs.StringVar(&f.out, "o", "", "the picture `file` to write (required): .png, .svg or .pdf")
		fs.Var(&f.n, "n", "the number of samples to scatter (0: none; default as many as the data\nrows, from 1000 to 5000, or 2000 without data)")
		fs.Uint64Var(&f.seed, "seed", 0, "the seed of the samples")
		fs.Var(&f.show, "show", "the model's columns to draw, a `list` of names or 0-based indexes\n(default all)")
		fs.BoolVar(&f.logScale, "log-scale", false, "colour the density panels by the log of the density")
		fs.Var(&f.xlim, "xlim", "the range `lo,hi` of the first shown column")
		fs.Var(&f.ylim, "ylim", "the range `lo,hi` of the second shown column")
		fs.StringVar(&f.title, "title", "", "the picture's title (default the file names)")
		return func(e *env, args []string) error { return f.run(e, args) }
	},
}

// autoInt is an integer flag whose default is worked out later: v < 0
// until it is set.
type autoInt struct{ v int }

func (a *autoInt) String() string {
	if a == nil || a.v < 0 {
		return ""
	}
	return strconv.Itoa(a.v)
}

func (a *autoInt) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a count (0 or more)", s)
	}
	a.v = v
	return nil
}

// run draws the plot of the model args[0] over the data args[1], if any.
func (f *plotFlags) run(e *env, args []string) error {
	if f.out == "" || f.out == "-" {
		return usagef("plot", "no picture file: give one with -o plot.png")
	}
	format, err := pictureFormat("plot", "-o", f.out)
	if err != nil {
		return err
	}
	opt, err := f.csv.options("plot")
	if err != nil {
		return err
	}
	if err := checkNotInput(f.out, args...); err != nil {
		return err
	}
	if err := atomicfile.CheckWritable(f.out); err != nil {
		return err
	}
	m, err := loadModel(args[0])
	if err != nil {
		return err
	}
	if m.ContextDim > 0 {
		return fmt.Errorf("%s is a conditional model; plot draws unconditional ones", args[0])
	}
	if err := checkRows(args[0], "-n", m, f.n.v, false); err != nil {
		return err
	}
	o := cornerOptions{Names: modelNames(m), N: f.n.v, Seed: f.seed, LogScale: f.logScale}
	if len(args) == 2 {
		t, err := readTable(e, args[1], cliflags.ForModel(opt, m, args[0]))
		if err != nil {
			return err
		}
		o.Data, o.Names, o.DataLevels = t.X, t.Names, t.Cats
	}
	if o.Show, err = pickShown(f.show, o.Names, args[0]); err != nil {
		return err
	}
	shown := m.Dim
	if o.Show != nil {
		shown = len(o.Show)
	}
	if f.ylim.set && shown < 2 {
		return usagef("plot", "--ylim sets the second shown column's range, but %d %s shown", shown, plural(shown, "column is"))
	}
	o.Lims = []rangeFlag{f.xlim, f.ylim}
	o.Title = f.title
	if o.Title == "" {
		o.Title = plotTitle(args[0], args[1:]...)
	}
	cf, err := newCorner(m, o)
	if err != nil {
		return fmt.Errorf("%s: %v", args[0], err)
	}
	b, err := cf.encode(format)
	if err != nil {
		return err
	}
	return writeOutput(e, f.out, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// plotTitle is the default title of the picture of the model file at path
// over the data files: their base names.
func plotTitle(path string, data ...string) string {
	t := filepath.Base(path)
	for _, d := range data {
		t += " on " + filepath.Base(d)
	}
	return t
}

// modelNames returns the model's column names, or x0, x1, ... for a
// model without names.
func modelNames(m *model.Model) []string {
	if len(m.Config.Columns) == m.Dim {
		return m.Config.Columns
	}
	names := make([]string, m.Dim)
	for j := range names {
		names[j] = "x" + strconv.Itoa(j)
	}
	return names
}

// pickShown returns the indexes of the model's columns that show lists,
// by name or 0-based index (nil for none listed: all are shown).
func pickShown(show, names []string, path string) ([]int, error) {
	if show == nil {
		return nil, nil
	}
	var out []int
	seen := map[int]bool{}
	for _, s := range show {
		j := -1
		for c, n := range names {
			if n == s {
				j = c
				break
			}
		}
		if j < 0 {
			c, err := strconv.Atoi(s)
			if err != nil || c < 0 || c >= len(names) {
				return nil, usagef("plot", "--show %s: %s has no column of that name or index; its columns are %s",
					s, path, joinNames(names))
			}
			j = c
		}
		if seen[j] {
			return nil, usagef("plot", "--show lists column %q twice", names[j])
		}
		seen[j] = true
		out = append(out, j)
	}
	return out, nil
}
