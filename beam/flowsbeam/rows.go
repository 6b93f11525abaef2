package flowsbeam

// The elements of the pipelines and their coders.
//
// Rows and Scored carry thousands of rows each, so they have a compact
// binary coder of their own (little-endian, float64 bits as they are) rather
// than Beam's schema coder: a chunk that crosses a fusion break (a
// Reshuffle, a GroupByKey, a runner that does not fuse) is encoded once as a
// few flat arrays.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"gonum.org/v1/gonum/mat"
)

// Rows is a chunk of data rows of one file, with where each row came from.
// Its rows are consecutive data rows of the file: row i is data row
// First+i (counting from 0, bad rows included, a header not) and starts on
// line Lines[i] (counting from 1).
type Rows struct {
	// File is the file's path, as the glob matched it.
	File string
	// First is the index of the first row among the file's data rows.
	First int
	// Lines holds the line where each row starts; its length is the
	// number of rows.
	Lines []int
	// Names and ContextNames name the data and context columns.
	Names, ContextNames []string
	// X holds the data columns, row-major: len(Lines)×len(Names).
	X []float64
	// C holds the context columns, row-major, len(Lines)×len(ContextNames);
	// nil without context columns.
	C []float64
	// CatNames name the categorical columns (of a model of a mixed
	// table), and Cats holds their levels as text, row-major,
	// len(Lines)×len(CatNames); both nil without categorical columns.
	CatNames []string
	Cats     []string
}

// Len returns the number of rows.
func (r Rows) Len() int { return len(r.Lines) }

// Data returns the data columns as a matrix that shares X.
func (r Rows) Data() *mat.Dense {
	return mat.NewDense(r.Len(), len(r.Names), r.X)
}

// Context returns the context columns as a matrix that shares C, or nil
// without context columns.
func (r Rows) Context() *mat.Dense {
	if len(r.ContextNames) == 0 {
		return nil
	}
	return mat.NewDense(r.Len(), len(r.ContextNames), r.C)
}

// Scored is a chunk of rows with the log density of each under a model.
type Scored struct {
	Rows
	// LogDensity holds the log density of each row, in nats, in the data's
	// units: the lower, the less likely the row.
	LogDensity []float64
}

// DeadLetter is a row (or a file) that could not be read, and why.
type DeadLetter struct {
	// File is the file's path.
	File string
	// Line is the line of the bad row (from 1); 0 when the file as a whole
	// could not be read.
	Line int
	// Reason is the error, as the command line tool would print it: it
	// names the file, the line and the column.
	Reason string
}

func init() {
	beam.RegisterCoder(reflect.TypeOf(Rows{}), encodeRows, decodeRows)
	beam.RegisterCoder(reflect.TypeOf(Scored{}), encodeScored, decodeScored)
	beam.RegisterType(reflect.TypeOf(DeadLetter{}))
}

// encoder appends values to a byte slice.
type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int)     { e.b = binary.AppendVarint(e.b, int64(v)) }
func (e *encoder) string(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *encoder) strings(s []string) {
	e.uint(uint64(len(s)))
	for _, v := range s {
		e.string(v)
	}
}
func (e *encoder) ints(s []int) {
	e.uint(uint64(len(s)))
	for _, v := range s {
		e.int(v)
	}
}

// floats writes a length (with 0 for nil and n+1 otherwise, so that nil
// and empty differ) and the values' bits.
func (e *encoder) floats(s []float64) {
	if s == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(s)) + 1)
	for _, v := range s {
		e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
	}
}

// decoder reads what encoder wrote; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

var errCorrupt = errors.New("flowsbeam: corrupt encoded element")

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return int(v)
}

// length reads a count of items of at least size bytes each.
func (d *decoder) length(size int) int {
	n := d.uint()
	if d.err == nil && n > uint64(len(d.b)/size) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.length(1)
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strings() []string {
	n := d.length(1)
	if d.err != nil || n == 0 {
		return nil
	}
	s := make([]string, n)
	for i := range s {
		s[i] = d.string()
	}
	return s
}

func (d *decoder) ints() []int {
	n := d.length(1)
	if d.err != nil || n == 0 {
		return nil
	}
	s := make([]int, n)
	for i := range s {
		s[i] = d.int()
	}
	return s
}

func (d *decoder) floats() []float64 {
	n := d.uint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.b)/8) {
		d.err = errCorrupt
		return nil
	}
	s := make([]float64, n)
	for i := range s {
		s[i] = math.Float64frombits(binary.LittleEndian.Uint64(d.b[8*i:]))
	}
	d.b = d.b[8*n:]
	return s
}

func (e *encoder) rows(r Rows) {
	e.string(r.File)
	e.int(r.First)
	e.ints(r.Lines)
	e.strings(r.Names)
	e.strings(r.ContextNames)
	e.floats(r.X)
	e.floats(r.C)
	e.strings(r.CatNames)
	e.strings(r.Cats)
}

func (d *decoder) rows() Rows {
	return Rows{File: d.string(), First: d.int(), Lines: d.ints(), Names: d.strings(),
		ContextNames: d.strings(), X: d.floats(), C: d.floats(), CatNames: d.strings(), Cats: d.strings()}
}

// check returns the decoder's error, or an error when bytes are left.
func (d *decoder) check(what string) error {
	if d.err == nil && len(d.b) > 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return fmt.Errorf("%w (%s)", d.err, what)
	}
	return nil
}

func encodeRows(r Rows) []byte {
	e := encoder{b: make([]byte, 0, 64+8*(len(r.X)+len(r.C))+3*len(r.Lines))}
	e.rows(r)
	return e.b
}

func decodeRows(b []byte) (Rows, error) {
	d := decoder{b: b}
	r := d.rows()
	return r, d.check("Rows")
}

func encodeScored(s Scored) []byte {
	e := encoder{b: make([]byte, 0, 64+8*(len(s.X)+len(s.C)+len(s.LogDensity))+3*len(s.Lines))}
	e.rows(s.Rows)
	e.floats(s.LogDensity)
	return e.b
}

func decodeScored(b []byte) (Scored, error) {
	d := decoder{b: b}
	s := Scored{Rows: d.rows()}
	s.LogDensity = d.floats()
	return s, d.check("Scored")
}
