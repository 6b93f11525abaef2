package table

import (
	"strings"
	"testing"
)

// TestMaxColumns checks that a line of more fields than MaxColumns is
// refused, naming its line, and that quoted separators and newlines do not
// count.
func TestMaxColumns(t *testing.T) {
	opt := Options{MaxColumns: 3, MaxColumnsWhy: ": too wide"}
	ok := "a,b,\"c,d\"\n1,2,3\n4,5,\"6\n,7\"\n"
	if _, err := Read(strings.NewReader(strings.ReplaceAll(ok, "\"6\n,7\"", "6")), "ok.csv", opt); err != nil {
		t.Errorf("three columns with a quoted comma: %v", err)
	}
	for _, tc := range []struct{ in, want string }{
		{"a,b,c,d\n1,2,3,4\n", "bad.csv: line 1: more than 3 columns: too wide"},
		{"a,b,c\n1,2,3\n1,2,3,4\n", "bad.csv: line 3: more than 3 columns: too wide"},
		{"a,\"b\nc\",d\n1,2,3,4\n", "line 3: more than 3 columns"},
	} {
		_, err := Read(strings.NewReader(tc.in), "bad.csv", opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
	semi := Options{MaxColumns: 2, Comma: ';'}
	if _, err := Read(strings.NewReader("a;b;c\n1;2;3\n"), "semi.csv", semi); err == nil || !strings.Contains(err.Error(), "more than 2 columns") {
		t.Errorf("semicolons: %v", err)
	}
}
