// Package cliflags holds what the command-line tools flows (cmd/flows) and
// flows-beam (beam/cmd/flows-beam) share, so that a flag means the same in
// both: the flags that pick a CSV file's columns, the lists they take,
// flags between positional arguments, and the flags' help.
package cliflags

import (
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// List is a flag holding a comma-separated list, parsed as one CSV record
// so that a name with a comma can be quoted: --columns '"a,b",c'.
type List []string

func (l *List) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

// Set parses s; an empty item is an error.
func (l *List) Set(s string) error {
	rec, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return fmt.Errorf("not a comma-separated list: %v", err)
	}
	for i := range rec {
		rec[i] = strings.TrimSpace(rec[i])
		if rec[i] == "" {
			return fmt.Errorf("item %d of %q is empty", i+1, s)
		}
	}
	*l = rec
	return nil
}

// Floats is a flag holding a comma-separated list of finite numbers.
type Floats []float64

func (l *Floats) String() string {
	if l == nil {
		return ""
	}
	s := make([]string, len(*l))
	for i, v := range *l {
		s[i] = table.FormatFloat(v)
	}
	return strings.Join(s, ",")
}

// Set parses s; an item that is not a finite number is an error.
func (l *Floats) Set(s string) error {
	var out []float64
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%q is not a list of finite numbers", s)
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// CSV are the flags of a command that reads CSV files: --columns,
// --context, --header and --delimiter.
type CSV struct {
	Columns   List
	Context   List
	Header    string
	Delimiter string
}

// Add defines the flags on fs; rows names the rows --header speaks of
// ("the first row", "the first row of each file").
func (c *CSV) Add(fs *flag.FlagSet, rows string) {
	fs.Var(&c.Columns, "columns", "the `list` of data columns, by header name or 0-based index, in the\nmodel's order (default: the model's own columns by name, or every\ncolumn that is not a context column)")
	fs.Var(&c.Context, "context", "the `list` of context columns of a conditional model, by header name\nor 0-based index (default: the model's own context columns by name)")
	fs.StringVar(&c.Header, "header", "auto", "`auto|yes|no`: whether "+rows+" is a header; auto takes it for\none when a cell is not a number while the cell below it is")
	fs.StringVar(&c.Delimiter, "delimiter", ",", "the field delimiter, one `character` (\\t for a tab)")
}

// Options returns the table options of the flags, or an error that says
// which flag is wrong.
func (c *CSV) Options() (table.Options, error) {
	o := table.Options{Columns: c.Columns, Context: c.Context, ColumnsName: "--columns", ContextName: "--context", HeaderName: "--header yes"}
	switch c.Header {
	case "auto":
		o.Header = table.HeaderAuto
	case "yes":
		o.Header = table.HeaderYes
	case "no":
		o.Header = table.HeaderNo
	default:
		return o, fmt.Errorf("--header %q: want auto, yes or no", c.Header)
	}
	d := c.Delimiter
	if d == `\t` || d == "tab" {
		d = "\t"
	}
	runes := []rune(d)
	if len(runes) != 1 || runes[0] == '"' || runes[0] == '\r' || runes[0] == '\n' {
		return o, fmt.Errorf("--delimiter %q: want one character other than a quote or a line break", c.Delimiter)
	}
	o.Comma = runes[0]
	return o, nil
}

// ForModel returns opt set to read the columns of the model m (the file
// path): the --columns and --context given, or else the model's own column
// names (so a file's columns may come in any order, with others beside
// them), and the widths the selection must have.
func ForModel(opt table.Options, m *model.Model, path string) table.Options {
	if len(opt.Columns) == 0 && len(m.Config.Columns) > 0 {
		opt.Columns, opt.ColumnsName = m.Config.Columns, path+"'s columns"
	}
	if len(opt.Context) == 0 && len(m.Config.Context) > 0 {
		opt.Context, opt.ContextName = m.Config.Context, path+"'s context columns"
	}
	if m.Categories != nil {
		opt.Categorical = m.Categories.Names
	}
	opt.Want, opt.WantContext, opt.Model = m.Dim, m.ContextDim, path
	return opt
}

// CheckContext returns an error when a conditional model is to read a file
// without context columns picked: there is no default for them.
func CheckContext(opt table.Options, m *model.Model, path string) error {
	if m.ContextDim > 0 && len(opt.Context) == 0 {
		column := "columns"
		if m.ContextDim == 1 {
			column = "column"
		}
		return fmt.Errorf("%s is a conditional model of %d context %s, and records no names for them; pick them with --context",
			path, m.ContextDim, column)
	}
	return nil
}

// ParseInterspersed parses the flags of args, which may come before,
// between or after the positional arguments (flows fit data.csv -o
// m.flow), and returns the positional arguments in order. Everything after
// "--" is positional, and so is "-" (standard input).
func ParseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, suggest(fs, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// undefinedPrefix starts the flag package's error for a flag fs lacks.
const undefinedPrefix = "flag provided but not defined: -"

// suggest adds to the flag package's error for an undefined flag the
// defined flags it is most likely a typo of: those it is a prefix of (or
// that are a prefix of it: --epoch, --epochss), and those one or two edits
// away (--hiden). Other errors come back as they are.
func suggest(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	name, ok := strings.CutPrefix(msg, undefinedPrefix)
	if !ok {
		return err
	}
	name = strings.TrimLeft(name, "-")
	var near []string
	fs.VisitAll(func(f *flag.Flag) {
		if len(f.Name) > 1 && len(name) > 1 && (strings.HasPrefix(f.Name, name) || strings.HasPrefix(name, f.Name) || editDistance(f.Name, name) <= 2) {
			near = append(near, "-"+f.Name)
		}
	})
	if len(near) == 0 {
		return err
	}
	sort.Strings(near)
	return fmt.Errorf("%s; did you mean %s?", msg, strings.Join(near, " or "))
}

// editDistance is the Levenshtein distance between a and b, in bytes
// (flag names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// PrintFlags writes the flags of fs to w under "Flags:", sorted by name,
// two dashes before a long name (one or two both work), each with its
// usage and default.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		kind, usage := flag.UnquoteUsage(f)
		head := dash + f.Name
		if kind != "" {
			head += " " + kind
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			usage += " (default " + f.DefValue + ")"
		}
		lines = append(lines, [2]string{head, usage})
	})
	if len(lines) == 0 {
		return
	}
	sort.SliceStable(lines, func(i, j int) bool {
		return strings.TrimLeft(lines[i][0], "-") < strings.TrimLeft(lines[j][0], "-")
	})
	fmt.Fprintln(w, "\nFlags:")
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n    \t%s\n", l[0], strings.ReplaceAll(l[1], "\n", "\n    \t"))
	}
}
