package model

// A Model's data domain: bounded columns (Config.Bounds, a fixed Bounded
// layer first in the flow) and integer columns (Config.Dequantize).
//
// Dequantisation follows Uria, Murray and Larochelle (2013) and Theis, van
// den Oord and Bethge (2016): the flow is a density q of x + u, u uniform
// on [0,1) per integer column, fitted to the integers with fresh noise for
// every minibatch (Model.Fit). It defines the distribution of the
// integers P(k) = ∫_{[0,1)ᵐ} q(k + u) du exactly, and its samples floor to
// draws from P. Model.LogPDF scores a row at its cell's midpoint, log q(k +
// ½): the one-point rule for the cell's integral, deterministic, so the
// same row always gets the same score (the noisy score log q(k + u) of a
// fit's validation rows is a lower bound on log P(k) in expectation).
//
// flows.UniformDequantization is the same noise as a model of its own, for
// rows whose every column is an integer, with Monte-Carlo bounds on log
// P(k) rather than the midpoint score. A Model dequantises some columns of
// a row and not others, scores at the midpoint and fits through
// optim.Fit's Augment, so it draws its own noise (Model.Dequantize) rather
// than wrapping that model: sharing that model's draws would change what
// every fit with dequantised columns gives for a seed.

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/gonormflows/flows"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/prep"
)

// Bound bounds a column of a Model's data (see Config.Bounds): its values
// lie strictly between Lo and Hi, and a side at −Inf or +Inf is open.
type Bound struct {
	Column int     // the column, counting from 0
	Lo, Hi float64 // Lo < Hi; −Inf or +Inf leave a side open
}

// boundJSON is Bound in a model file: an open side is left out, as JSON has
// no infinities.
type boundJSON struct {
	Column int      `json:"column"`
	Lo     *float64 `json:"lo,omitempty"`
	Hi     *float64 `json:"hi,omitempty"`
}

// MarshalJSON writes b as {"column":2,"lo":0,"hi":1}, leaving out an open
// side.
func (b Bound) MarshalJSON() ([]byte, error) {
	j := boundJSON{Column: b.Column}
	if !math.IsInf(b.Lo, -1) {
		j.Lo = &b.Lo
	}
	if !math.IsInf(b.Hi, 1) {
		j.Hi = &b.Hi
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; a side left out is open.
func (b *Bound) UnmarshalJSON(data []byte) error {
	var j boundJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	*b = Bound{Column: j.Column, Lo: math.Inf(-1), Hi: math.Inf(1)}
	if j.Lo != nil {
		b.Lo = *j.Lo
	}
	if j.Hi != nil {
		b.Hi = *j.Hi
	}
	return nil
}

// String formats b as "lo:hi", leaving an open side empty.
func (b Bound) String() string {
	s := ""
	if !math.IsInf(b.Lo, -1) {
		s = fmt.Sprint(b.Lo)
	}
	s += ":"
	if !math.IsInf(b.Hi, 1) {
		s += fmt.Sprint(b.Hi)
	}
	return s
}

// checkDomain returns an error unless c's Dequantize and Bounds name
// columns of dim, each once, with valid bounds.
func (c Config) checkDomain(dim int) error {
	if err := c.checkShape(dim); err != nil {
		return err
	}
	seen := make(map[int]bool, len(c.Dequantize))
	for _, j := range c.Dequantize {
		switch {
		case j < 0 || j >= dim:
			return fmt.Errorf("flows: Config: Dequantize: column %d of %d columns (0 to %d)", j, dim, dim-1)
		case seen[j]:
			return fmt.Errorf("flows: Config: Dequantize: column %d given twice", j)
		}
		seen[j] = true
	}
	clear(seen)
	for _, b := range c.Bounds {
		switch {
		case b.Column < 0 || b.Column >= dim:
			return fmt.Errorf("flows: Config: Bounds: column %d of %d columns (0 to %d)", b.Column, dim, dim-1)
		case seen[b.Column]:
			return fmt.Errorf("flows: Config: Bounds: column %d given twice", b.Column)
		case !(b.Lo < b.Hi) || math.IsInf(b.Lo, 1) || math.IsInf(b.Hi, -1):
			return fmt.Errorf("flows: Config: Bounds: column %d: %v to %v, want lower < upper", b.Column, b.Lo, b.Hi)
		case math.IsInf(b.Lo, -1) && math.IsInf(b.Hi, 1):
			return fmt.Errorf("flows: Config: Bounds: column %d: both sides open; leave the column out", b.Column)
		}
		seen[b.Column] = true
	}
	return nil
}

// boundedLayer returns the Bounded layer of c's Bounds for dim columns, or
// nil without bounds.
func (c Config) boundedLayer(dim int) flows.InitFunc {
	if len(c.Bounds) == 0 {
		return nil
	}
	lo, hi := make([]float64, dim), make([]float64, dim)
	for j := range dim {
		lo[j], hi[j] = math.Inf(-1), math.Inf(1)
	}
	for _, b := range c.Bounds {
		lo[b.Column], hi[b.Column] = b.Lo, b.Hi
	}
	return flows.Bounded(lo, hi)
}

// dataError returns the DataError of value v at row i, column j.
func (c Config) dataError(i, j int, v float64, reason string) *DataError {
	e := &DataError{Row: i, Column: j, Value: v, Reason: reason}
	if j < len(c.Columns) {
		e.Name = c.Columns[j]
	}
	return e
}

// DataError is the error of a value that a model cannot be fitted to (see
// Model.CheckData).
type DataError struct {
	// Row and Column locate the value (counting from 0); Name is the
	// column's name in Config.Columns, or "" without names.
	Row, Column int
	Name        string
	Value       float64
	// Reason says what is wrong and what to do.
	Reason string
}

// Error formats e as "row 3, column 2 ("age"): -1 is …".
func (e *DataError) Error() string {
	col := fmt.Sprintf("column %d", e.Column)
	if e.Name != "" {
		col += fmt.Sprintf(" (%q)", e.Name)
	}
	return fmt.Sprintf("row %d, %s: %v %s", e.Row, col, e.Value, e.Reason)
}

// checkData returns an error naming the first row and column of x (n×dim,
// finite) that a model of c cannot be fitted to: a value of a dequantised
// column that is not an integer, or a value outside its column's bounds
// (for a dequantised column, a cell [k, k+1) not inside them).
func (c Config) checkData(who string, x *mat.Dense) error {
	if len(c.Dequantize) == 0 && len(c.Bounds) == 0 {
		return nil
	}
	n, _ := x.Dims()
	for i := range n {
		row := x.RawRowView(i)
		for _, j := range c.Dequantize {
			if v := row[j]; v != math.Floor(v) {
				return fmt.Errorf("flows: %s: %w", who, c.dataError(i, j, v, "is not an integer, but the column is dequantised"))
			}
			if err := c.pixelError(who, i, j, row[j]); err != nil {
				return err
			}
		}
		for _, b := range c.Bounds {
			v, top := row[b.Column], row[b.Column]
			if slices.Contains(c.Dequantize, b.Column) {
				top = v + 1 // the cell [v, v+1) must lie inside
				if v >= b.Lo && top <= b.Hi {
					continue
				}
			} else if v > b.Lo && v < b.Hi {
				continue
			}
			what := "is not strictly inside"
			if top != v {
				what = "is a dequantised cell [k, k+1) not inside"
			}
			return fmt.Errorf("flows: %s: %w", who, c.dataError(i, b.Column, v, fmt.Sprintf("%s the bounds %v; widen them", what, b)))
		}
	}
	return nil
}

// midpoints returns x with each dequantised column's values moved to the
// middle of their cells, ⌊v⌋ + ½, or x itself without such columns.
func (c Config) midpoints(x *mat.Dense) *mat.Dense {
	if len(c.Dequantize) == 0 || x == nil {
		return x
	}
	out := mat.DenseCopyOf(x)
	n, _ := out.Dims()
	for i := range n {
		row := out.RawRowView(i)
		for _, j := range c.Dequantize {
			if j < len(row) {
				row[j] = math.Floor(row[j]) + 0.5
			}
		}
	}
	return out
}

// Dequantize adds to each dequantised column of x (Config.Dequantize) a
// draw from the uniform distribution on (0, 1), in place, from key: the
// noise Model.Fit puts on every minibatch. It does nothing for a model
// without dequantised columns, and panics for an x without Dim columns.
func (m *Model) Dequantize(key flows.Key, x *mat.Dense) {
	if len(m.Config.Dequantize) == 0 {
		return
	}
	if _, d := x.Dims(); d != m.Dim {
		panic(fmt.Sprintf("flows: Model.Dequantize: batch has %d columns, want %d", d, m.Dim))
	}
	rng := key.Rand()
	n, _ := x.Dims()
	for i := range n {
		row := x.RawRowView(i)
		for _, j := range m.Config.Dequantize {
			u := rng.Float64()
			for u == 0 {
				u = rng.Float64()
			}
			row[j] += u
		}
	}
}

// CheckData returns an error naming the first row and column of x that the
// model cannot be fitted to: a NaN or ±Inf, a value outside its column's
// bounds (Config.Bounds), or a value of a dequantised column that is not an
// integer (Config.Dequantize); and for an x without Dim columns or a
// context c of the wrong shape (for a mixed table, c is the flow's context
// that Context makes). Model.Fit calls it first.
func (m *Model) CheckData(x, c *mat.Dense) error {
	const who = "Model.CheckData"
	if err := checkTable(who, x); err != nil {
		return err
	}
	n, d := x.Dims()
	if d != m.Dim {
		return fmt.Errorf("flows: %s: %d columns, the model has %d", who, d, m.Dim)
	}
	switch cdim := m.ContextDim + m.Categories.Width(); {
	case cdim == 0 && c != nil && !c.IsEmpty():
		return fmt.Errorf("flows: %s: a context for an unconditional model", who)
	case cdim > 0:
		if c == nil {
			return fmt.Errorf("flows: %s: no context for a model of %d context columns", who, cdim)
		}
		if r, k := c.Dims(); r != n || k != cdim {
			return fmt.Errorf("flows: %s: a %d×%d context for %d rows and %d context columns", who, r, k, n, cdim)
		}
		if err := checkTable(who+": context", c); err != nil {
			return err
		}
	}
	return m.Config.checkData(who, x)
}

// finishSample floors the dequantised columns of a sample, in place, and
// returns it.
func (c Config) finishSample(x *mat.Dense) *mat.Dense {
	if len(c.Dequantize) == 0 {
		return x
	}
	n, _ := x.Dims()
	for i := range n {
		row := x.RawRowView(i)
		for _, j := range c.Dequantize {
			row[j] = math.Floor(row[j])
		}
	}
	c.clampPixels(x)
	return x
}

// checkTable returns an error naming who for a nil or empty x, and for the
// first NaN or ±Inf entry, naming its row and column (counting from 0).
func checkTable(who string, x *mat.Dense) error {
	if err := prep.CheckFinite(x); err != nil {
		return fmt.Errorf("flows: %s: %w", who, err)
	}
	return nil
}
