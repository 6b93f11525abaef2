package cliflags

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

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
		pos, err := ParseInterspersed(fs, tc.args)
		if err != nil || !slices.Equal(pos, tc.pos) || *o != tc.o || *n != tc.n {
			t.Errorf("%q: %q, -o %q, -n %d, %v", tc.args, pos, *o, *n, err)
		}
	}
}

func TestList(t *testing.T) {
	var l List
	if err := l.Set(`a,"b,c", d`); err != nil || !slices.Equal(l, List{"a", "b,c", "d"}) || l.String() != "a,b,c,d" {
		t.Errorf("Set: %q, %v", l, err)
	}
	for _, bad := range []string{"a,,b", `"a`, ""} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
}

func TestFloats(t *testing.T) {
	var l Floats
	if err := l.Set("1.5, -2,1e-3"); err != nil || !slices.Equal(l, Floats{1.5, -2, 0.001}) || l.String() != "1.5,-2,0.001" {
		t.Errorf("Set: %v, %v, %q", l, err, l.String())
	}
	for _, bad := range []string{"1,,2", "NaN", "1,inf", "x"} {
		if err := l.Set(bad); err == nil {
			t.Errorf("Set(%q): no error", bad)
		}
	}
}

func TestCSVOptions(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var c CSV
	c.Add(fs, "the first row")
	if err := fs.Parse([]string{"--delimiter", `\t`, "--header", "no", "--columns", "x,y"}); err != nil {
		t.Fatal(err)
	}
	o, err := c.Options()
	if err != nil || o.Comma != '\t' || !slices.Equal(o.Columns, []string{"x", "y"}) {
		t.Errorf("Options = %+v, %v", o, err)
	}
	for _, tc := range [][2]string{{"header", "maybe"}, {"delimiter", `"`}, {"delimiter", ";;"}} {
		c := CSV{Header: "auto", Delimiter: ","}
		if tc[0] == "header" {
			c.Header = tc[1]
		} else {
			c.Delimiter = tc[1]
		}
		if _, err := c.Options(); err == nil || !strings.HasPrefix(err.Error(), "--"+tc[0]) {
			t.Errorf("--%s %q: err = %v, want one naming the flag", tc[0], tc[1], err)
		}
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		arg, want string
	}{
		{"--epoch", "; did you mean -epochs?"},
		{"--hiden", "; did you mean -hidden?"},
		{"--epochss", "; did you mean -epochs?"},
		{"--colour", ""},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		fs.Int("epochs", 0, "")
		fs.Int("hidden", 0, "")
		fs.String("o", "", "")
		_, err := ParseInterspersed(fs, []string{"a", tc.arg, "3"})
		if err == nil {
			t.Fatalf("%s: no error", tc.arg)
		}
		want := "flag provided but not defined: -" + strings.TrimLeft(tc.arg, "-") + tc.want
		if err.Error() != want {
			t.Errorf("%s: %q, want %q", tc.arg, err, want)
		}
	}
}
