package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/table"
)

// csvFlags are the flags of every command that reads a CSV file.
type csvFlags struct {
	columns   listFlag
	context   listFlag
	header    string
	delimiter string
}

// add defines the flags on fs.
func (c *csvFlags) add(fs *flag.FlagSet) {
	fs.Var(&c.columns, "columns", "the `list` of data columns, by header name or 0-based index, in the\nmodel's order (default: the model's own columns by name, or every\ncolumn that is not a context column)")
	fs.Var(&c.context, "context", "the `list` of context columns of a conditional model, by header name\nor 0-based index (default: the model's own context columns by name)")
	fs.StringVar(&c.header, "header", "auto", "`auto|yes|no`: whether the first row is a header; auto takes it for\none when a cell is not a number while the cell below it is")
	fs.StringVar(&c.delimiter, "delimiter", ",", "the field delimiter, one `character` (\\t for a tab)")
}

// options returns the table options of the flags, or a usage error.
func (c *csvFlags) options(cmd string) (table.Options, error) {
	o := table.Options{Columns: c.columns, Context: c.context, ColumnsName: "--columns", ContextName: "--context", HeaderName: "--header yes"}
	switch c.header {
	case "auto":
		o.Header = table.HeaderAuto
	case "yes":
		o.Header = table.HeaderYes
	case "no":
		o.Header = table.HeaderNo
	default:
		return o, usagef(cmd, "--header %q: want auto, yes or no", c.header)
	}
	d := c.delimiter
	if d == `\t` || d == "tab" {
		d = "\t"
	}
	runes := []rune(d)
	if len(runes) != 1 || runes[0] == '"' || runes[0] == '\r' || runes[0] == '\n' {
		return o, usagef(cmd, "--delimiter %q: want one character other than a quote or a line break", c.delimiter)
	}
	o.Comma = runes[0]
	return o, nil
}

// forModel returns opt set to read the columns of the model m (the file
// path): the --columns and --context given, or else the model's own column
// names (so a file's columns may come in any order, with others beside
// them), and the widths the selection must have.
func forModel(opt table.Options, m *flows.Model, path string) table.Options {
	if len(opt.Columns) == 0 && len(m.Config.Columns) > 0 {
		opt.Columns, opt.ColumnsName = m.Config.Columns, path+"'s columns"
	}
	if len(opt.Context) == 0 && len(m.Config.Context) > 0 {
		opt.Context, opt.ContextName = m.Config.Context, path+"'s context columns"
	}
	opt.Want, opt.WantContext, opt.Model = m.Dim, m.ContextDim, path
	return opt
}

// checkContext returns an error when a conditional model is to read a file
// without context columns picked: there is no default for them.
func checkContext(opt table.Options, m *flows.Model, path string) error {
	if m.ContextDim > 0 && len(opt.Context) == 0 {
		return fmt.Errorf("%s is a conditional model of %d context %s, and records no names for them; pick them with --context",
			path, m.ContextDim, plural(m.ContextDim, "column"))
	}
	return nil
}

// openInput opens the CSV file at path, or standard input for "-", and
// returns its name in messages.
func openInput(e *env, path string) (io.Reader, string, func(), error) {
	if path == "-" {
		return e.stdin, "stdin", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return f, path, func() { f.Close() }, nil
}

// readTable reads the whole CSV file at path ("-" for standard input).
func readTable(e *env, path string, opt table.Options) (*table.Table, error) {
	r, name, done, err := openInput(e, path)
	if err != nil {
		return nil, err
	}
	defer done()
	return table.Read(r, name, opt)
}

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// joinNames lists names for a message, the first twelve and how many more.
func joinNames(names []string) string {
	const most = 12
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
