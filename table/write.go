package table

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/atomicfile"
)

// Writer writes a table as CSV: a header row, then rows of numbers in the
// shortest form that reads back exactly.
type Writer struct {
	cw  *csv.Writer
	buf []string
}

// NewWriter writes the header names to w and returns a Writer for the
// rows.
func NewWriter(w io.Writer, names []string) (*Writer, error) {
	cw := csv.NewWriter(w)
	if err := cw.Write(names); err != nil {
		return nil, err
	}
	return &Writer{cw: cw, buf: make([]string, len(names))}, nil
}

// WriteRow writes one row of len(names) values.
func (w *Writer) WriteRow(row []float64) error {
	if len(row) != len(w.buf) {
		return fmt.Errorf("table: a row of %d values under a header of %d names", len(row), len(w.buf))
	}
	for j, v := range row {
		w.buf[j] = FormatFloat(v)
	}
	return w.cw.Write(w.buf)
}

// WriteCells writes one row of len(names) cells as they are: text beside
// numbers (a kept identifier, a level), each number formatted with
// AppendFloat.
func (w *Writer) WriteCells(cells []string) error {
	if len(cells) != len(w.buf) {
		return fmt.Errorf("table: a row of %d cells under a header of %d names", len(cells), len(w.buf))
	}
	return w.cw.Write(cells)
}

// WriteRows writes the rows of x (which has len(names) columns).
func (w *Writer) WriteRows(x *mat.Dense) error {
	r, _ := x.Dims()
	for i := range r {
		if err := w.WriteRow(x.RawRowView(i)); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes any buffered rows and returns the first error of any write.
func (w *Writer) Flush() error {
	w.cw.Flush()
	return w.cw.Error()
}

// Write writes the table with the header names and the rows of x to w.
func Write(w io.Writer, names []string, x *mat.Dense) error {
	tw, err := NewWriter(w, names)
	if err != nil {
		return err
	}
	if err := tw.WriteRows(x); err != nil {
		return err
	}
	return tw.Flush()
}

// WriteFile writes the table to the file at path atomically: the file
// holds either its old contents or the whole table, never a part.
func WriteFile(path string, names []string, x *mat.Dense) error {
	return atomicfile.Write(path, func(w io.Writer) error { return Write(w, names, x) })
}

// FormatFloat formats v in the shortest form that reads back exactly: in
// plain decimals for magnitudes from 1e-6 up to 1e21 (so 1234567 and a row
// number stay whole numbers, not 1.234567e+06), with an exponent
// otherwise.
func FormatFloat(v float64) string { return string(AppendFloat(nil, v)) }

// AppendFloat appends v to b as FormatFloat writes it.
func AppendFloat(b []byte, v float64) []byte {
	if a := math.Abs(v); a == 0 || a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
