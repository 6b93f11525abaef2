package flowsbeam

// The least likely rows.
//
// TopAnomalies is a combiner over chunks of scored rows whose accumulator
// holds at most k rows in a max-heap by log density, so a worker keeps k
// rows whatever it reads, and the runner merges the workers' heaps. Rows
// are ordered as the command line tool's --top orders them (NaN lowest,
// then by log density) and ties are broken by file and row, so the result
// does not depend on the order in which the runner adds and merges.

import (
	"cmp"
	"container/heap"
	"math"
	"reflect"
	"slices"
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/gonormflows/flows/table"
)

// Anomaly is one scored row.
type Anomaly struct {
	// File, Row and Line say where the row is (see Rows).
	File      string
	Row, Line int
	// LogDensity is its log density.
	LogDensity float64
	// Values holds its data columns, then its context columns.
	Values []float64
	// Levels holds its categorical columns' levels as text (a model of a
	// mixed table); nil without categorical columns.
	Levels []string
}

// Anomalies is the least likely rows of a set, lowest log density first.
type Anomalies struct {
	// Names and ContextNames name the columns of the rows' Values, and
	// CatNames those of their Levels.
	Names, ContextNames, CatNames []string
	// Rows holds the rows.
	Rows []Anomaly
}

// lower orders rows by log density, NaN lowest, then by file and row.
func lower(a, b Anomaly) int {
	key := func(v float64) float64 {
		if math.IsNaN(v) {
			return math.Inf(-1)
		}
		return v
	}
	return cmp.Or(cmp.Compare(key(a.LogDensity), key(b.LogDensity)), cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row))
}

// maxHeap is a heap of rows with the highest on top.
type maxHeap []Anomaly

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return lower(h[j], h[i]) < 0 }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(Anomaly)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TopAnomalies returns the k least likely rows of scored (a PCollection of
// Scored) as a one-element PCollection of Anomalies, lowest log density
// first, ties broken by file and row (no rows for an empty scored).
func TopAnomalies(s beam.Scope, k int, scored beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.TopAnomalies")
	return beam.Combine(s, &topFn{K: k}, scored)
}

// TopAnomaliesPerKey returns the k least likely rows of each key of keyed
// (a PCollection of KV<string, Scored>, from KeyByFile or KeyByColumn) as
// a PCollection of KV<string, Anomalies>.
func TopAnomaliesPerKey(s beam.Scope, k int, keyed beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.TopAnomaliesPerKey")
	return beam.CombinePerKey(s, &topFn{K: k}, keyed)
}

// KeyByFile keys each chunk of scored rows by its file.
func KeyByFile(s beam.Scope, scored beam.PCollection) beam.PCollection {
	return beam.ParDo(s.Scope("flowsbeam.KeyByFile"), fileKey, scored)
}

// KeyByColumn keys the scored rows by the value of the named data or
// context column (as table.FormatFloat writes it), splitting chunks where
// the value changes. A chunk without the column fails the pipeline.
func KeyByColumn(s beam.Scope, column string, scored beam.PCollection) beam.PCollection {
	return beam.ParDo(s.Scope("flowsbeam.KeyByColumn"), &columnKeyFn{Column: column}, scored)
}

func init() {
	beam.RegisterCoder(reflect.TypeOf(Anomalies{}), encodeAnomalies, decodeAnomalies)
	beam.RegisterType(reflect.TypeOf(Anomaly{}))
	register.Combiner3[Anomalies, Scored, Anomalies](&topFn{})
	register.Function1x2(fileKey)
	register.DoFn2x1[Scored, func(string, Scored), error](&columnKeyFn{})
	register.Emitter2[string, Scored]()
}

// topFn keeps the K least likely rows.
type topFn struct {
	K int
}

func (f *topFn) CreateAccumulator() Anomalies { return Anomalies{} }

func (f *topFn) AddInput(a Anomalies, sc Scored) Anomalies {
	if a.Names == nil {
		a.Names, a.ContextNames, a.CatNames = sc.Names, sc.ContextNames, sc.CatNames
	}
	dim, cdim, k := len(sc.Names), len(sc.ContextNames), len(sc.CatNames)
	h := (*maxHeap)(&a.Rows)
	for i := range sc.Len() {
		r := Anomaly{File: sc.File, Row: sc.First + i, Line: sc.Lines[i], LogDensity: sc.LogDensity[i]}
		if len(*h) == f.K && lower(r, (*h)[0]) >= 0 {
			continue
		}
		r.Values = make([]float64, 0, dim+cdim)
		r.Values = append(append(r.Values, sc.X[i*dim:(i+1)*dim]...), sc.C[i*cdim:(i+1)*cdim]...)
		if k > 0 {
			r.Levels = slices.Clone(sc.Cats[i*k : (i+1)*k])
		}
		f.push(h, r)
	}
	return a
}

// push adds r to the heap of at most K rows.
func (f *topFn) push(h *maxHeap, r Anomaly) {
	if f.K <= 0 {
		return
	}
	if len(*h) < f.K {
		heap.Push(h, r)
		return
	}
	if lower(r, (*h)[0]) < 0 {
		(*h)[0] = r
		heap.Fix(h, 0)
	}
}

func (f *topFn) MergeAccumulators(a, b Anomalies) Anomalies {
	if a.Names == nil {
		a.Names, a.ContextNames, a.CatNames = b.Names, b.ContextNames, b.CatNames
	}
	h := (*maxHeap)(&a.Rows)
	heap.Init(h) // a decoded accumulator is a heap already; Init is cheap
	for _, r := range b.Rows {
		f.push(h, r)
	}
	return a
}

func (f *topFn) ExtractOutput(a Anomalies) Anomalies {
	a.Rows = slices.Clone(a.Rows)
	slices.SortFunc(a.Rows, lower)
	return a
}

// fileKey keys a chunk by its file.
func fileKey(sc Scored) (string, Scored) { return sc.File, sc }

// columnKeyFn keys rows by the value of a column.
type columnKeyFn struct {
	Column string
}

func (f *columnKeyFn) ProcessElement(sc Scored, emit func(string, Scored)) error {
	values, width, j := sc.X, len(sc.Names), slices.Index(sc.Names, f.Column)
	if j < 0 {
		values, width, j = sc.C, len(sc.ContextNames), slices.Index(sc.ContextNames, f.Column)
	}
	if j < 0 {
		return &columnError{file: sc.File, column: f.Column, names: append(slices.Clone(sc.Names), sc.ContextNames...)}
	}
	start := 0
	for i := 1; i <= sc.Len(); i++ {
		if i < sc.Len() && values[i*width+j] == values[start*width+j] {
			continue
		}
		emit(table.FormatFloat(values[start*width+j]), sliceScored(sc, start, i))
		start = i
	}
	return nil
}

// columnError says that a chunk lacks the key column.
type columnError struct {
	file, column string
	names        []string
}

func (e *columnError) Error() string {
	return e.file + ": no column " + strconv.Quote(e.column) + " among the columns read (" + joinQuoted(e.names) + ")"
}

// joinQuoted lists names quoted.
func joinQuoted(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += strconv.Quote(n)
	}
	return s
}

// sliceScored returns rows i to j of sc.
func sliceScored(sc Scored, i, j int) Scored {
	dim, cdim := len(sc.Names), len(sc.ContextNames)
	r := sc.Rows
	r.First += i
	r.Lines = r.Lines[i:j:j]
	r.X = r.X[i*dim : j*dim : j*dim]
	if r.C != nil {
		r.C = r.C[i*cdim : j*cdim : j*cdim]
	}
	return Scored{Rows: r, LogDensity: sc.LogDensity[i:j:j]}
}

func encodeAnomalies(a Anomalies) []byte {
	var e encoder
	e.strings(a.Names)
	e.strings(a.ContextNames)
	e.strings(a.CatNames)
	e.uint(uint64(len(a.Rows)))
	for _, r := range a.Rows {
		e.string(r.File)
		e.int(r.Row)
		e.int(r.Line)
		e.floats([]float64{r.LogDensity})
		e.floats(r.Values)
		e.strings(r.Levels)
	}
	return e.b
}

func decodeAnomalies(b []byte) (Anomalies, error) {
	d := decoder{b: b}
	a := Anomalies{Names: d.strings(), ContextNames: d.strings(), CatNames: d.strings()}
	n := d.length(1)
	if n > 0 {
		a.Rows = make([]Anomaly, n)
	}
	for i := range a.Rows {
		r := Anomaly{File: d.string(), Row: d.int(), Line: d.int()}
		if lp := d.floats(); len(lp) == 1 {
			r.LogDensity = lp[0]
		} else if d.err == nil {
			d.err = errCorrupt
		}
		r.Values = d.floats()
		r.Levels = d.strings()
		a.Rows[i] = r
	}
	return a, d.check("Anomalies")
}
