package table

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

func TestRead(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		opt   Options
		names []string
		x     []float64 // row-major
		lines []int
	}{
		{"header", "x,y\n1,2\n3,4\n", Options{}, []string{"x", "y"}, []float64{1, 2, 3, 4}, []int{2, 3}},
		{"no header", "1,2\n3,4\n", Options{}, []string{"x0", "x1"}, []float64{1, 2, 3, 4}, []int{1, 2}},
		{"label column, no header", "cat,1,2\ndog,3,4\n", Options{Columns: []string{"1", "2"}}, []string{"x1", "x2"}, []float64{1, 2, 3, 4}, []int{1, 2}},
		{"label column, header", "label,a,b\ncat,1,2\n", Options{Columns: []string{"b", "a"}}, []string{"b", "a"}, []float64{2, 1}, []int{2}},
		{"pandas index", ",a,b\n0,1,2\n1,3,4\n", Options{}, []string{"x0", "a", "b"}, []float64{0, 1, 2, 1, 3, 4}, []int{2, 3}},
		{"byte order mark", "\ufeffx,y\n1,2\n", Options{Columns: []string{"x"}}, []string{"x"}, []float64{1}, []int{2}},
		{"crlf, blank lines, spaces", "x, y\r\n\r\n 1 , 2\r\n\r\n3,4\r\n", Options{}, []string{"x", "y"}, []float64{1, 2, 3, 4}, []int{3, 5}},
		{"quoted names", "\"a,b\",c\n1,2\n", Options{Columns: []string{"a,b"}}, []string{"a,b"}, []float64{1}, []int{2}},
		{"numeric header forced", "2019,2020\n1,2\n", Options{Header: HeaderYes, Columns: []string{"2020"}}, []string{"2020"}, []float64{2}, []int{2}},
		{"header refused", "a,b\n1,2\n", Options{Header: HeaderNo, Columns: []string{"1"}}, nil, nil, nil},
		{"semicolons", "a;b\n1,5;2\n", Options{Comma: ';', Columns: []string{"b"}}, []string{"b"}, []float64{2}, []int{2}},
		{"tabs", "a\tb\n1\t 2\n", Options{Comma: '\t'}, []string{"a", "b"}, []float64{1, 2}, []int{2}},
		{"multi-line quoted cell", "note,x\n\"two\nlines\",1\n\"\",2\n", Options{Columns: []string{"x"}}, []string{"x"}, []float64{1, 2}, []int{2, 4}},
		{"one row of names", "x\n5\n", Options{}, []string{"x"}, []float64{5}, []int{2}},
		{"exact floats", "x\n0.1\n1e-300\n-0x1p-2\n", Options{}, []string{"x"}, []float64{0.1, 1e-300, -0.25}, []int{2, 3, 4}},
		{"headerless names by position", "1,2,3\n4,5,6\n", Options{Columns: []string{"x2", "x0"}}, []string{"x2", "x0"}, []float64{3, 1, 6, 4}, []int{1, 2}},
		{"empty header cell by its name", ",a,b\n0,1,2\n", Options{Columns: []string{"x0", "b"}}, []string{"x0", "b"}, []float64{0, 2}, []int{2}},
		{"x name of a named column", "a,b\n1,2\n", Options{Columns: []string{"x1"}}, nil, nil, nil},
		{"x name beyond the columns", "1,2\n", Options{Columns: []string{"x2"}}, nil, nil, nil},
		{"latin-1 header", "caf\xe9,b\n1,2\n", Options{Columns: []string{"café"}}, []string{"café"}, []float64{1}, []int{2}},
		{"context left out of the data", "a,c,b\n1,9,2\n", Options{Context: []string{"c"}}, []string{"a", "b"}, []float64{1, 2}, []int{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := Read(strings.NewReader(tc.in), "d.csv", tc.opt)
			if tc.x == nil {
				if err == nil {
					t.Fatalf("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(tab.Names, tc.names) || !slices.Equal(tab.Lines, tc.lines) {
				t.Errorf("names %q, lines %v; want %q, %v", tab.Names, tab.Lines, tc.names, tc.lines)
			}
			if !slices.Equal(tab.X.RawMatrix().Data, tc.x) {
				t.Errorf("x = %v, want %v", tab.X.RawMatrix().Data, tc.x)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		in   string
		opt  Options
		want string
	}{
		{"x,y\n1,2\n3,abc\n", Options{}, `d.csv:3: column 1 ("y"): "abc" is not a number`},
		{"1,2\n3,abc\n", Options{}, `d.csv:2: column 1: "abc" is not a number`},
		{"x,y\n1,2\n3,abc\n", Options{Columns: []string{"x"}}, ""}, // the bad column is not used
		{"x,y\n1,2\n3,abc\n", Options{CategoricalName: "--categorical", ColumnsName: "--columns"}, `d.csv:3: column 1 ("y"): "abc" is not a number; a column of text is a category (name it with --categorical) or an identifier (leave it out of --columns)`},
		{"x,y\nabc,def\n", Options{}, `d.csv:1: column 0: "x" is not a number (if line 1 is a header, say so with Header: HeaderYes)`},
		{"x,y\n1,2\n\n\n3\n", Options{}, "d.csv:5: a row of 1 column, but the first row (line 1) has 2"},
		{"x,\"y\n", Options{}, "d.csv:1:6: extraneous or missing \" in quoted-field"},
		{"a,a\n1,2\n", Options{Columns: []string{"a"}}, `d.csv:1: the header has two columns named "a" (0 and 1); pick one by index`},
		{"a,b\n1,2\n", Options{Want: 3, Model: "m.flow"}, `d.csv:1: the file has 2 columns ("a", "b"), but m.flow is a model of 3 columns; pick 3 with columns`},
		{"a,b\n1,2\n", Options{Columns: []string{"-1"}, ColumnsName: "--columns"}, "d.csv:1: --columns -1: the file has 2 columns, 0 to 1"},
		{"a,b,c\n1,2,3\n", Options{Context: []string{"c"}, WantContext: 2, Model: "m.flow"}, `d.csv:1: context picks 1 context column ("c"), but m.flow is a model of 2 context columns; pick 2 with context`},
		{"a,b\n1,2\n", Options{Columns: []string{"a"}, Context: []string{"0"}}, `d.csv:1: columns picks column 0 ("a") twice ("0" and "a")`},
		{"", Options{}, "d.csv: the file is empty: want a header row (optional) and rows of numbers"},
		{"a,b\n", Options{}, "d.csv:1: a header row but no data rows"},
	}
	for _, tc := range tests {
		_, err := Read(strings.NewReader(tc.in), "d.csv", tc.opt)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

// TestLongListShortened: a file of 200 columns read for a model of 2
// names the first few columns, not all 200.
func TestLongListShortened(t *testing.T) {
	var b strings.Builder
	for j := range 200 {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString("c" + string(rune('0'+j%10)) + strings.Repeat("x", j/10))
	}
	b.WriteString("\n" + strings.Repeat("1,", 199) + "1\n")
	_, err := Read(strings.NewReader(b.String()), "wide.csv", Options{Want: 2, Model: "m.flow"})
	if err == nil || !strings.Contains(err.Error(), "and 192 more") || len(err.Error()) > 300 {
		t.Errorf("err = %v", err)
	}
}

// TestReaderChunks reads a file in chunks of every size and checks that the
// chunks put together are the whole table.
func TestReaderChunks(t *testing.T) {
	var b strings.Builder
	b.WriteString("a,ctx,b\n")
	for i := range 37 {
		b.WriteString(strings.Join([]string{FormatFloat(float64(i) / 3), FormatFloat(float64(i % 3)), FormatFloat(-float64(i))}, ",") + "\n")
	}
	opt := Options{Context: []string{"ctx"}}
	whole, err := Read(strings.NewReader(b.String()), "d.csv", opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 2, 5, 36, 37, 100} {
		rd, err := NewReader(strings.NewReader(b.String()), "d.csv", opt)
		if err != nil {
			t.Fatal(err)
		}
		var x, c []float64
		var lines []int
		for {
			ch, err := rd.Read(size)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.First != len(lines) || ch.Rows() > size {
				t.Fatalf("size %d: chunk starts at %d with %d rows", size, ch.First, ch.Rows())
			}
			x = append(x, ch.X.RawMatrix().Data...)
			c = append(c, ch.C.RawMatrix().Data...)
			lines = append(lines, ch.Lines...)
		}
		if !slices.Equal(x, whole.X.RawMatrix().Data) || !slices.Equal(c, whole.C.RawMatrix().Data) || !slices.Equal(lines, whole.Lines) {
			t.Errorf("size %d: the chunks differ from the whole table", size)
		}
	}
}

func TestWriteReadsBack(t *testing.T) {
	x := mat.NewDense(3, 2, []float64{0.1, -1e-300, 3, 4.5e300, math.Copysign(0, -1), 1.0 / 3})
	path := filepath.Join(t.TempDir(), "t.csv")
	if err := WriteFile(path, []string{"a", "b,c"}, x); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, []string{"a", "b,c"}) || !mat.Equal(got.X, x) {
		t.Errorf("read back %q %v", got.Names, mat.Formatted(got.X))
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf, []string{"a"})
	if err := w.WriteRow([]float64{1, 2}); err == nil {
		t.Error("a row wider than the header was written")
	}
	if _, err := os.Stat(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// TestFormatFloat: whole numbers stay whole, and every value reads back
// exactly.
func TestFormatFloat(t *testing.T) {
	for v, want := range map[float64]string{
		0: "0", 9999999: "9999999", -1234567: "-1234567", 0.5: "0.5", 1e-6: "0.000001",
		1e20: "100000000000000000000", 1e21: "1e+21", 1e-7: "1e-07", 0.30000000000000004: "0.30000000000000004",
		math.MaxFloat64: "1.7976931348623157e+308", math.SmallestNonzeroFloat64: "5e-324",
	} {
		got := FormatFloat(v)
		if got != want {
			t.Errorf("FormatFloat(%v) = %q, want %q", v, got, want)
		}
		if back, err := strconv.ParseFloat(got, 64); err != nil || back != v {
			t.Errorf("FormatFloat(%v) = %q reads back as %v (%v)", v, got, back, err)
		}
	}
}

// TestRowError: a bad row's error carries its place as fields.
func TestRowError(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RowError
	}{
		{"a,b\n1,2\n3,x\n", RowError{Line: 3, Row: 1, Column: 1, Header: "b", Issue: NotANumber}},
		{"a,b\n1,2\n3,4\n5,\n", RowError{Line: 4, Row: 2, Column: 1, Header: "b", Issue: EmptyCell, Missing: true}},
		{"a,b\n1,NaN\n", RowError{Line: 2, Row: 0, Column: 1, Header: "b", Issue: NotFinite, Missing: true}},
		{"a,b\n1,NA\n", RowError{Line: 2, Row: 0, Column: 1, Header: "b", Issue: NotANumber, Missing: true}},
		{"1,2\n3,4,5\n", RowError{Line: 2, Row: 1, Column: -1, Issue: Width}},
	} {
		_, err := Read(strings.NewReader(tc.in), "in.csv", Options{})
		var re *RowError
		if !errors.As(err, &re) {
			t.Errorf("%q: %v is not a RowError", tc.in, err)
			continue
		}
		tc.want.Name, tc.want.Msg = "in.csv", re.Msg
		if *re != tc.want || !strings.HasPrefix(re.Msg, fmt.Sprintf("in.csv:%d: ", tc.want.Line)) {
			t.Errorf("%q: %+v, want %+v", tc.in, *re, tc.want)
		}
	}
}

// TestSkipMissing: with SkipMissing, rows with a missing value are left
// out and listed with their line, data row and first missing column; a
// row with a cell bad for another reason is still an error; without it,
// the error points to the way out.
func TestSkipMissing(t *testing.T) {
	in := "Ozone,Wind,Day\n41,7.4,1\nNA,8,2\n12,NA,3\n,14.3,4\n28,null,5\n23,nan,6\n19,8.6,7\n"
	_, err := Read(strings.NewReader(in), "aq.csv", Options{MissingName: "--missing skip"})
	if err == nil || err.Error() != `aq.csv:3: column 0 ("Ozone"): "NA" is not a number; it marks a missing value: leave such rows out with --missing skip` {
		t.Errorf("without skipping: %v", err)
	}
	tab, err := Read(strings.NewReader(in), "aq.csv", Options{SkipMissing: true, Columns: []string{"Ozone", "Wind"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tab.X.RawMatrix().Data, []float64{41, 7.4, 19, 8.6}) || !slices.Equal(tab.Lines, []int{2, 8}) || tab.Row(0) != 0 || tab.Row(1) != 6 {
		t.Errorf("kept rows %v, lines %v, rows %d %d", tab.X.RawMatrix().Data, tab.Lines, tab.Row(0), tab.Row(1))
	}
	var got []string
	for _, e := range tab.Skipped {
		got = append(got, fmt.Sprintf("%d/%d/%d", e.Line, e.Row, e.Column))
	}
	if want := []string{"3/1/0", "4/2/1", "5/3/0", "6/4/1", "7/5/1"}; !slices.Equal(got, want) {
		t.Errorf("skipped (line/row/column) %v, want %v", got, want)
	}

	// A column that is not selected may be missing; other NA tokens.
	tab, err = Read(strings.NewReader(in), "aq.csv", Options{SkipMissing: true, Columns: []string{"Day"}, NA: []string{"-"}})
	if err != nil || tab.Rows() != 7 || len(tab.Skipped) != 0 {
		t.Errorf("Day only: %v, %d rows, %d skipped", err, tab.Rows(), len(tab.Skipped))
	}
	if _, err := Read(strings.NewReader(in), "aq.csv", Options{SkipMissing: true, NA: []string{"-"}}); err == nil {
		t.Errorf("NA not among the tokens is an error")
	}

	// A missing cell beside a bad one is an error, not a skip.
	if _, err := Read(strings.NewReader("a,b\n1,2\nNA,x\n"), "m.csv", Options{SkipMissing: true}); err == nil || !strings.Contains(err.Error(), `"x" is not a number`) {
		t.Errorf("missing beside bad: %v", err)
	}

	// Chunks: skipped rows do not count towards a chunk's size, and a
	// chunk of skipped rows alone comes back with no rows.
	rd, err := NewReader(strings.NewReader("a\n1\nNA\nNA\n2\n3\nNA\n"), "c.csv", Options{SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	var rows, skipped []int
	for {
		c, err := rd.Read(2)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.Rows() {
			rows = append(rows, c.Row(i))
		}
		for _, e := range c.Skipped {
			skipped = append(skipped, e.Row)
		}
	}
	if !slices.Equal(rows, []int{0, 3, 4}) || !slices.Equal(skipped, []int{1, 2, 5}) {
		t.Errorf("chunked: rows %v, skipped %v", rows, skipped)
	}
	if _, err := Read(strings.NewReader("a\nNA\n"), "all.csv", Options{SkipMissing: true, Header: HeaderYes}); err == nil || !strings.Contains(err.Error(), "every data row has a missing value") {
		t.Errorf("all rows missing: %v", err)
	}
}

// TestKeep: kept columns come through as text, beside the data, skipped
// rows included in neither.
func TestKeep(t *testing.T) {
	in := "name,mpg,cyl\n\"Mazda RX4\",21,6\nDatsun 710,NA,4\nValiant,18.1,6\n"
	tab, err := Read(strings.NewReader(in), "cars.csv", Options{Columns: []string{"mpg", "cyl"}, Keep: []string{"name", "cyl"}, SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tab.KeepNames, []string{"name", "cyl"}) || !slices.Equal(tab.Kept, []string{"Mazda RX4", "6", "Valiant", "6"}) {
		t.Errorf("kept %q: %q", tab.KeepNames, tab.Kept)
	}
	for _, bad := range [][]string{{"nope"}, {"name", "0"}} {
		if _, err := Read(strings.NewReader(in), "cars.csv", Options{Columns: []string{"mpg"}, Keep: bad, KeepName: "--keep"}); err == nil || !strings.Contains(err.Error(), "--keep") {
			t.Errorf("Keep %q: %v", bad, err)
		}
	}
}

// TestDetect: without Columns, Detect sorts text columns into categories
// (few levels) and identifiers (left out), and reads the rest as numbers.
func TestDetect(t *testing.T) {
	var iris strings.Builder
	iris.WriteString("\"\",\"Sepal.Length\",\"Species\"\n")
	species := []string{"setosa", "versicolor", "virginica"}
	for i := range 30 {
		fmt.Fprintf(&iris, "\"r%d\",%d.5,\"%s\"\n", i, i, species[i%3])
	}
	tab, err := Read(strings.NewReader(iris.String()), "iris.csv", Options{Detect: true, KeepName: "--keep"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tab.Names, []string{"Sepal.Length"}) || !slices.Equal(tab.CatNames, []string{"Species"}) || tab.Rows() != 30 {
		t.Fatalf("names %q, categories %q, %d rows", tab.Names, tab.CatNames, tab.Rows())
	}
	if !slices.Equal(tab.Cats[:4], []string{"setosa", "versicolor", "virginica", "setosa"}) {
		t.Errorf("levels %q", tab.Cats[:4])
	}
	if len(tab.LeftOut) != 1 || !strings.Contains(tab.LeftOut[0], "column 0: text with 30 distinct values") || !strings.Contains(tab.LeftOut[0], "--keep") {
		t.Errorf("left out: %q", tab.LeftOut)
	}

	// R's row numbers are left out too.
	tab, err = Read(strings.NewReader("\"\",\"a\",\"b\"\n\"1\",2,3\n\"2\",2.5,4\n\"3\",2,5\n"), "r.csv", Options{Detect: true})
	if err != nil || !slices.Equal(tab.Names, []string{"a", "b"}) || len(tab.LeftOut) != 1 || !strings.Contains(tab.LeftOut[0], "row numbers") {
		t.Errorf("row numbers: %v, %q, %q", err, tab.Names, tab.LeftOut)
	}

	// Kept, explicit categories (numbers are levels too), a missing level.
	in := "name,mpg,cyl\nA,21,6\nB,22,4\nC,18.1,NA\nD,19,6\n"
	tab, err = Read(strings.NewReader(in), "cars.csv", Options{Detect: true, Keep: []string{"name"}, Categorical: []string{"cyl"}, SkipMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tab.Names, []string{"mpg"}) || !slices.Equal(tab.Cats, []string{"6", "4", "6"}) || len(tab.Skipped) != 1 || !slices.Equal(tab.Kept, []string{"A", "B", "D"}) {
		t.Errorf("names %q, cats %q, skipped %d, kept %q", tab.Names, tab.Cats, len(tab.Skipped), tab.Kept)
	}
	if _, err := Read(strings.NewReader(in), "cars.csv", Options{Categorical: []string{"cyl"}, Columns: []string{"mpg"}}); err == nil || !strings.Contains(err.Error(), `"NA" marks a missing value`) {
		t.Errorf("missing level: %v", err)
	}
	if _, err := Read(strings.NewReader(in), "cars.csv", Options{Categorical: []string{"cyl"}, Columns: []string{"cyl"}}); err == nil {
		t.Errorf("a column both data and category: no error")
	}
}
