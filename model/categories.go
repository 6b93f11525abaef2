package model

// The discrete part of a model of a mixed table.
//
// A row of a mixed table is numbers x and categories k (one level of each
// categorical column). Its density is p(k) · p(x | k): the flow models x
// given the one-hot code of k (appended to the context every layer already
// takes), and Categories models k by an exact table of the combinations of
// levels seen in training, with one pseudo-row spread evenly over all the
// K combinations the levels allow:
//
//	p(k) = (count(k) + 1/K) / (rows + 1)
//
// which sums to 1 over the K combinations, gives a combination never seen
// in training a small probability rather than none, and is the frequency
// of k in training as rows grow. The table is exact: it does not share
// strength between combinations (an autoregressive net over the columns,
// as in MADE with softmax outputs, would; it is not built, see the note
// in README), so it suits tables whose combinations are few next to their
// rows. Its log probability is in nats and adds to the flow's log density
// of the numbers.

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// Categories is the model of a mixed table's categorical columns: their
// levels, the table of the combinations seen in training, and the one-hot
// code that conditions the flow.
type Categories struct {
	// Names are the categorical columns, in the order of Levels.
	Names []string `json:"names"`
	// Levels are each column's levels, sorted (so the model does not
	// depend on the order of the training rows).
	Levels [][]string `json:"levels"`
	// Combos holds the combinations seen in training, each as the index
	// of its level in every column (row-major, len(Names) a combination),
	// in ascending order; Counts[i] is the number of training rows of
	// combination i.
	Combos []int `json:"combos"`
	Counts []int `json:"counts"`
	Rows   int   `json:"rows"`
	index  map[string]int
}

// maxLevelsTotal bounds the one-hot width, the sum of the columns' levels.
const maxLevelsTotal = 4096

// NewCategories returns the table of the rows' categories: names are the
// categorical columns and cats their levels as text, row-major (as
// table.Table's Cats).
func NewCategories(names []string, cats []string) (*Categories, error) {
	m := len(names)
	if m == 0 || len(cats)%m != 0 || len(cats) == 0 {
		return nil, fmt.Errorf("model: %d levels for %d categorical columns", len(cats), m)
	}
	c := &Categories{Names: slices.Clone(names), Levels: make([][]string, m), Rows: len(cats) / m}
	width := 0
	for j := range m {
		var lv []string
		for i := j; i < len(cats); i += m {
			lv = append(lv, cats[i])
		}
		slices.Sort(lv)
		c.Levels[j] = slices.Compact(lv)
		width += len(c.Levels[j])
	}
	if width > maxLevelsTotal {
		return nil, fmt.Errorf("model: the categorical columns have %d levels in all; at most %d fit a model", width, maxLevelsTotal)
	}
	counts := map[string]int{}
	code := make([]int, m)
	for i := 0; i < len(cats); i += m {
		for j := range m {
			code[j], _ = slices.BinarySearch(c.Levels[j], cats[i+j])
		}
		counts[comboKey(code)]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys) // key order is the combinations' ascending order
	for _, k := range keys {
		c.Combos = append(c.Combos, unkey(k, m)...)
		c.Counts = append(c.Counts, counts[k])
	}
	return c, c.check()
}

// comboKey is the map key of a combination: its level indexes as fixed-width
// big-endian bytes, so that keys sort as the combinations do.
func comboKey(code []int) string {
	var b strings.Builder
	for _, v := range code {
		b.WriteByte(byte(v >> 8))
		b.WriteByte(byte(v))
	}
	return b.String()
}

// unkey is comboKey's inverse for m columns.
func unkey(k string, m int) []int {
	code := make([]int, m)
	for j := range m {
		code[j] = int(k[2*j])<<8 | int(k[2*j+1])
	}
	return code
}

// check validates a table (built, or read from a model file) and builds
// its index.
func (c *Categories) check() error {
	m := len(c.Names)
	switch {
	case m == 0 || len(c.Levels) != m:
		return fmt.Errorf("model: categories: %d names and %d lists of levels", m, len(c.Levels))
	case len(c.Combos) != m*len(c.Counts) || len(c.Counts) == 0:
		return fmt.Errorf("model: categories: %d combination indexes for %d counts of %d columns", len(c.Combos), len(c.Counts), m)
	}
	width, total := 0, 0
	for j, lv := range c.Levels {
		if len(lv) == 0 || !slices.IsSorted(lv) || len(slices.Compact(slices.Clone(lv))) != len(lv) {
			return fmt.Errorf("model: categories: the levels of %q are empty, unsorted or repeated", c.Names[j])
		}
		width += len(lv)
	}
	if width > maxLevelsTotal {
		return fmt.Errorf("model: categories: %d levels in all, more than %d", width, maxLevelsTotal)
	}
	c.index = make(map[string]int, len(c.Counts))
	for i, n := range c.Counts {
		code := c.Combos[i*m : (i+1)*m]
		for j, v := range code {
			if v < 0 || v >= len(c.Levels[j]) {
				return fmt.Errorf("model: categories: combination %d has level %d of %q, which has %d", i, v, c.Names[j], len(c.Levels[j]))
			}
		}
		k := comboKey(code)
		if _, dup := c.index[k]; dup || n <= 0 {
			return fmt.Errorf("model: categories: combination %d is repeated or has count %d", i, n)
		}
		c.index[k] = i
		total += n
	}
	if total != c.Rows {
		return fmt.Errorf("model: categories: counts add up to %d, not the %d rows", total, c.Rows)
	}
	return nil
}

// ColumnNames returns the categorical columns' names; nil for a nil
// *Categories.
func (c *Categories) ColumnNames() []string {
	if c == nil {
		return nil
	}
	return c.Names
}

// Width is the width of the one-hot code: the levels of all the columns;
// 0 for a nil *Categories (a model of numbers only).
func (c *Categories) Width() int {
	if c == nil {
		return 0
	}
	w := 0
	for _, lv := range c.Levels {
		w += len(lv)
	}
	return w
}

// logCombos is log K, the log of the number of combinations the levels
// allow.
func (c *Categories) logCombos() float64 {
	s := 0.0
	for _, lv := range c.Levels {
		s += math.Log(float64(len(lv)))
	}
	return s
}

// UnknownLevelError is the error of a row whose level a categorical column
// did not have in training.
type UnknownLevelError struct {
	Row    int    // the row in the batch, from 0
	Column string // the categorical column
	Level  string
	Levels []string // the column's levels
}

func (e *UnknownLevelError) Error() string {
	return fmt.Sprintf("row %d: column %q: level %q was not in the training rows (levels: %s)",
		e.Row, e.Column, e.Level, strings.Join(e.Levels, ", "))
}

// Encode returns, for rows of levels (row-major, as table.Table's Cats),
// their one-hot code (n × Width) and log p(k) of each row, or an
// *UnknownLevelError for the first row with a level not seen in training.
func (c *Categories) Encode(cats []string) (*mat.Dense, []float64, error) {
	m := len(c.Names)
	if len(cats)%m != 0 || len(cats) == 0 {
		return nil, nil, fmt.Errorf("model: %d levels for rows of %d categorical columns", len(cats), m)
	}
	n := len(cats) / m
	onehot := mat.NewDense(n, c.Width(), nil)
	logp := make([]float64, n)
	code := make([]int, m)
	logK := c.logCombos()
	for i := range n {
		off := 0
		for j := range m {
			v, ok := slices.BinarySearch(c.Levels[j], cats[i*m+j])
			if !ok {
				return nil, nil, &UnknownLevelError{Row: i, Column: c.Names[j], Level: cats[i*m+j], Levels: c.Levels[j]}
			}
			code[j] = v
			onehot.Set(i, off+v, 1)
			off += len(c.Levels[j])
		}
		count := 0.0
		if at, ok := c.index[comboKey(code)]; ok {
			count = float64(c.Counts[at])
		}
		// log((count + 1/K) / (rows + 1)), with 1/K as exp(−log K).
		logp[i] = math.Log(count+math.Exp(-logK)) - math.Log(float64(c.Rows)+1)
	}
	return onehot, logp, nil
}

// Sample draws n rows of levels (row-major) from p(k): with probability
// rows/(rows+1) a training row's combination, else a combination drawn
// uniformly from all K, one level of each column.
func (c *Categories) Sample(key flows.Key, n int) []string {
	m := len(c.Names)
	rng := key.Rand()
	cum := make([]int, len(c.Counts))
	total := 0
	for i, k := range c.Counts {
		total += k
		cum[i] = total
	}
	out := make([]string, 0, n*m)
	for range n {
		if rng.IntN(c.Rows+1) < c.Rows {
			at, _ := slices.BinarySearch(cum, rng.IntN(c.Rows)+1)
			for j, v := range c.Combos[at*m : (at+1)*m] {
				out = append(out, c.Levels[j][v])
			}
			continue
		}
		for _, lv := range c.Levels {
			out = append(out, lv[rng.IntN(len(lv))])
		}
	}
	return out
}
