package main

// The flags of fit and score for tables as they come: missing values
// (--missing, --na, --rejects), categorical columns (--categorical) and
// columns carried through (--keep).

import (
	"encoding/csv"
	"flag"
	"fmt"
	"strconv"

	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/table"
)

// rowsFlags are the flags of a command that reads a table's rows to fit or
// score them.
type rowsFlags struct {
	missing     string
	na          cliflags.List
	rejects     string
	categorical cliflags.List
	keep        cliflags.List
}

// add defines the flags on fs; fit takes --categorical, score --keep.
func (r *rowsFlags) add(fs *flag.FlagSet, cmd string) {
	fs.StringVar(&r.missing, "missing", "error", "`error|skip`: what a row with a missing value (see --na) does: stop with an\nerror naming it, or be left out, counted and listed in --rejects")
	fs.Var(&r.na, "na", "the `list` of cells that mark a missing value, compared without case\n(default NA,,NaN,null: R's NA, an empty cell, NaN and null)")
	fs.StringVar(&r.rejects, "rejects", "", "with --missing skip, write the rows left out to this CSV `file`: file,line,reason")
	if cmd == "fit" {
		fs.Var(&r.categorical, "categorical", "the `list` of categorical columns, by name or index, besides the text\ncolumns of few levels that fit finds itself")
	}
	if cmd == "score" {
		fs.Var(&r.keep, "keep", "the `list` of columns (names, ids: any content) to copy into the output\nbeside each row's log density")
	}
}

// apply sets opt from the flags, or returns a usage error of cmd.
func (r *rowsFlags) apply(cmd string, opt *table.Options) error {
	switch r.missing {
	case "error":
	case "skip":
		opt.SkipMissing = true
	default:
		return usagef(cmd, "--missing %q: want error or skip", r.missing)
	}
	if r.rejects != "" && !opt.SkipMissing {
		return usagef(cmd, "--rejects lists the rows --missing skip leaves out; give --missing skip too")
	}
	if r.na != nil {
		opt.NA = r.na
	}
	opt.Categorical, opt.Keep = r.categorical, r.keep
	opt.MissingName, opt.KeepName = "--missing skip", "--keep"
	if cmd == "fit" {
		opt.CategoricalName = "--categorical" // score reads the model's own
	}
	return nil
}

// rejects writes the rows left out for a missing value to a CSV file
// (file,line,reason, the shape of flows-beam's dead letters) as they come,
// and counts them; a nil *rejects only counts.
type rejects struct {
	out *output
	cw  *csv.Writer
	n   int
}

// openRejects opens the --rejects file at path, or returns a *rejects that
// only counts for "".
func openRejects(e *env, path string) (*rejects, error) {
	if path == "" {
		return &rejects{}, nil
	}
	o, err := openOutput(e, path)
	if err != nil {
		return nil, err
	}
	r := &rejects{out: o, cw: csv.NewWriter(o.w)}
	return r, r.cw.Write([]string{"file", "line", "reason"})
}

// add writes the skipped rows of a chunk.
func (r *rejects) add(skipped []*table.RowError) error {
	r.n += len(skipped)
	if r.cw == nil {
		return nil
	}
	for _, s := range skipped {
		if err := r.cw.Write([]string{s.Name, strconv.Itoa(s.Line), s.Msg}); err != nil {
			return err
		}
	}
	return nil
}

// finish commits the file when err is nil (abandons it otherwise) and
// returns err or the error of writing.
func (r *rejects) finish(err error) error {
	if r.out == nil {
		return err
	}
	r.cw.Flush()
	if err == nil {
		err = r.cw.Error()
	}
	return r.out.finish(err)
}

// note says on standard error how many rows were left out, and where they
// are listed.
func (r *rejects) note(e *env, name string, rows int, path string) {
	if r.n == 0 {
		return
	}
	where := "; list them with --rejects FILE"
	if path != "" {
		where = "; listed in " + path
	}
	fmt.Fprintf(e.stderr, "%s: skipped %d of %d %s with a missing value%s\n", name, r.n, rows+r.n, plural(rows+r.n, "row"), where)
}
