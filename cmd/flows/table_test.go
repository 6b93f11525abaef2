package main

import (
	"bytes"
	"flag"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/gonormflows/flows/optim"
)

func TestParseTable(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		opt    csvOptions
		header bool
		names  []string
		x      []float64 // row-major
		lines  []int
	}{
		{"header", "x,y\n1,2\n3,4\n", csvOptions{}, true, []string{"x", "y"}, []float64{1, 2, 3, 4}, []int{2, 3}},
		{"no header", "1,2\n3,4\n", csvOptions{}, false, []string{"x0", "x1"}, []float64{1, 2, 3, 4}, []int{1, 2}},
		{"label column, no header", "cat,1,2\ndog,3,4\n", csvOptions{columns: []string{"1", "2"}}, false, []string{"x1", "x2"}, []float64{1, 2, 3, 4}, []int{1, 2}},
		{"label column, header", "label,a,b\ncat,1,2\n", csvOptions{columns: []string{"b", "a"}}, true, []string{"b", "a"}, []float64{2, 1}, []int{2}},
		{"pandas index", ",a,b\n0,1,2\n1,3,4\n", csvOptions{}, true, []string{"x0", "a", "b"}, []float64{0, 1, 2, 1, 3, 4}, []int{2, 3}},
		{"byte order mark", "\ufeffx,y\n1,2\n", csvOptions{columns: []string{"x"}}, true, []string{"x"}, []float64{1}, []int{2}},
		{"crlf, blank lines, spaces", "x, y\r\n\r\n 1 , 2\r\n\r\n3,4\r\n", csvOptions{}, true, []string{"x", "y"}, []float64{1, 2, 3, 4}, []int{3, 5}},
		{"quoted names", "\"a,b\",c\n1,2\n", csvOptions{columns: []string{"a,b"}}, true, []string{"a,b"}, []float64{1}, []int{2}},
		{"numeric header forced", "2019,2020\n1,2\n", csvOptions{header: "yes", columns: []string{"2020"}}, true, []string{"2020"}, []float64{2}, []int{2}},
		{"header refused", "a,b\n1,2\n", csvOptions{header: "no", columns: []string{"1"}}, false, nil, nil, nil},
		{"semicolons", "a;b\n1,5;2\n", csvOptions{comma: ';', columns: []string{"b"}}, true, []string{"b"}, []float64{2}, []int{2}},
		{"tabs", "a\tb\n1\t 2\n", csvOptions{comma: '\t'}, true, []string{"a", "b"}, []float64{1, 2}, []int{2}},
		{"multi-line quoted cell", "note,x\n\"two\nlines\",1\n\"\",2\n", csvOptions{columns: []string{"x"}}, true, []string{"x"}, []float64{1, 2}, []int{2, 4}},
		{"one row of names", "x\n5\n", csvOptions{}, true, []string{"x"}, []float64{5}, []int{2}},
		{"exact floats", "x\n0.1\n1e-300\n-0x1p-2\n", csvOptions{}, true, []string{"x"}, []float64{0.1, 1e-300, -0.25}, []int{2, 3, 4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := parseTable("d.csv", strings.NewReader(tc.in), tc.opt)
			if tc.x == nil {
				if err == nil {
					t.Fatalf("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tab.header != tc.header || !slices.Equal(tab.names, tc.names) || !slices.Equal(tab.lines, tc.lines) {
				t.Errorf("header %v, names %q, lines %v; want %v, %q, %v", tab.header, tab.names, tab.lines, tc.header, tc.names, tc.lines)
			}
			if !slices.Equal(tab.x.RawMatrix().Data, tc.x) {
				t.Errorf("x = %v, want %v", tab.x.RawMatrix().Data, tc.x)
			}
		})
	}
}

func TestParseTableErrors(t *testing.T) {
	tests := []struct {
		in   string
		opt  csvOptions
		want string
	}{
		{"x,y\n1,2\n3,abc\n", csvOptions{}, `d.csv:3: column 1 ("y"): "abc" is not a number`},
		{"1,2\n3,abc\n", csvOptions{}, `d.csv:2: column 1: "abc" is not a number`},
		{"x,y\n1,2\n3,abc\n", csvOptions{columns: []string{"x"}}, ""}, // the bad column is not used
		{"x,y\nabc,def\n", csvOptions{}, `d.csv:1: column 0: "x" is not a number (if line 1 is a header, add --header yes)`},
		{"x,y\n1,2\n\n\n3\n", csvOptions{}, "d.csv:5: a row of 1 column, but the first row (line 1) has 2"},
		{"x,\"y\n", csvOptions{}, "d.csv:1:6: extraneous or missing \" in quoted-field"},
		{"a,a\n1,2\n", csvOptions{columns: []string{"a"}}, `d.csv:1: the header has two columns named "a" (0 and 1); select one by index`},
		{"a,b\n1,2\n", csvOptions{dim: 3, model: "m.flow"}, `d.csv:1: the file has 2 columns ("a", "b"), but m.flow is a model of 3 columns; choose 3 with --columns`},
		{"a,b\n1,2\n", csvOptions{columns: []string{"-1"}}, "d.csv:1: --columns -1: the file has 2 columns, 0 to 1"},
	}
	for _, tc := range tests {
		_, err := parseTable("d.csv", strings.NewReader(tc.in), tc.opt)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		args []string
		pos  []string
		o    string
		n    int
	}{
		{[]string{"a", "-o", "x", "b"}, []string{"a", "b"}, "x", 0},
		{[]string{"-o=x", "a", "--n", "3"}, []string{"a"}, "x", 3},
		{[]string{"a", "-", "-n", "2"}, []string{"a", "-"}, "", 2},
		{[]string{"a", "--", "-o", "b"}, []string{"a", "-o", "b"}, "", 0},
		{nil, nil, "", 0},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		o := fs.String("o", "", "")
		n := fs.Int("n", 0, "")
		pos, err := parseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *o != tc.o || *n != tc.n {
			t.Errorf("%q: %q, -o %q, -n %d, %v", tc.args, pos, *o, *n, err)
		}
	}
}

func TestSpan(t *testing.T) {
	v := make([]float64, 1001)
	for i := range v {
		v[i] = float64(i)
	}
	v[500] = 1e9 // an outlier does not stretch the box
	lo, hi := span(v)
	if lo > 5 || lo < -200 || hi < 995 || hi > 1200 {
		t.Errorf("span = %v, %v", lo, hi)
	}
	if lo, hi := span([]float64{3, 3}); !(lo < 3 && hi > 3) {
		t.Errorf("span of a constant = %v, %v", lo, hi)
	}
}

func TestAutoBatch(t *testing.T) {
	for _, tc := range []struct {
		n    int
		val  float64
		want int
	}{{400, 0.1, 36}, {100, 0.1, 16}, {100000, 0.1, 256}, {400, 0, 40}} {
		if got := autoBatch(tc.n, tc.val); got != tc.want {
			t.Errorf("autoBatch(%d, %v) = %d, want %d", tc.n, tc.val, got, tc.want)
		}
	}
}

// TestProgress draws the bar into a buffer, as on a terminal.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	pr := newProgress(&buf, 10, mpb.WithAutoRefresh(), mpb.WithWidth(80))
	for epoch := 1; epoch <= 4; epoch++ {
		pr.update(optim.Progress{Epoch: epoch, TrainNLL: 2.5, ValNLL: 2.75, Elapsed: time.Second})
	}
	pr.update(optim.Progress{Epoch: 5, TrainNLL: 2.25, ValNLL: math.NaN()})
	pr.finish(true) // stopped early: the bar completes at epoch 5
	out := buf.String()
	for _, w := range []string{"fit", "epoch 5 / 5", "train 2.2500"} {
		if !strings.Contains(out, w) {
			t.Errorf("the bar does not show %q:\n%q", w, out)
		}
	}
	var nilBar *progress
	nilBar.finish(false) // no bar: nothing to do
}
