package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestReadCounts: the counts of a run are summed from its file of counts,
// which is removed, and a file that was matched but has no count fails the
// run with an error naming it.
func TestReadCounts(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "counts")
	text := "file,good,bad\na.csv,7,3\n\"b,1.csv\",0,1\n"
	write(t, name, text)
	c, err := readCounts(context.Background(), name, []string{"a.csv", "b,1.csv"})
	if err != nil || c != (rowCounts{files: 2, good: 7, bad: 4}) {
		t.Errorf("counts %+v, %v", c, err)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("the file of counts was left: %v", err)
	}
	write(t, name, text)
	_, err = readCounts(context.Background(), name, []string{"a.csv", "b,1.csv", "part-9.csv"})
	if want := "part-9.csv: the file was matched but the run has no count of its rows: the runner lost it"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
