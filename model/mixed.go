package model

// Mixed tables: numbers and categories in one model (see categories.go for
// the discrete part). The flow models the numbers given the categories'
// one-hot code, which follows the context columns in the flow's context;
// these functions make that context and add the categories' log
// probability.

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/optim"
)

// NewMixed makes a model of a mixed table, as New does for numbers: x holds
// the rows' numbers, cats their levels as text, row-major, one per column
// named in names (as table.Table's Cats and CatNames), and c their
// contexts (nil for none). The model's density of a row is p(k) · p(x | k,
// c): Categories, an exact table of the combinations of levels seen in
// cats, gives p(k), and the flow gives the density of the numbers given
// the one-hot code of k (and c). Log densities are then in nats of the
// numbers' units plus the categories' log probability.
//
// Categories that depend on a context are not modelled (p(k) does not
// read c), so NewMixed refuses a context: fit one model per context
// value, or make the context a category.
func NewMixed(cfg Config, x *mat.Dense, names, cats []string, c *mat.Dense) (*Model, error) {
	if c != nil {
		return nil, fmt.Errorf("flows: NewMixed: categorical columns with a context are not modelled (the categories' table does not read the context)")
	}
	cat, err := NewCategories(names, cats)
	if err != nil {
		return nil, err
	}
	// The one-hot code is rows × levels: check it before making it.
	if err := DefaultLimits().CheckRows("categorical levels", len(cats), cat.Width(), 0); err != nil {
		return nil, err
	}
	onehot, _, err := cat.Encode(cats)
	if err != nil {
		return nil, err
	}
	if r, _ := onehot.Dims(); x != nil && !x.IsEmpty() && r != x.RawMatrix().Rows {
		return nil, fmt.Errorf("flows: NewMixed: %d rows of levels for %d rows of numbers", r, x.RawMatrix().Rows)
	}
	return newModel(cfg, x, nil, cat, onehot)
}

// joinContext returns the flow's context of the rows: c followed by the
// one-hot code, or whichever of them is not nil.
func joinContext(c, onehot *mat.Dense) *mat.Dense {
	switch {
	case onehot == nil:
		return c
	case c == nil:
		return onehot
	}
	n, k := c.Dims()
	_, w := onehot.Dims()
	full := mat.NewDense(n, k+w, nil)
	for i := range n {
		row := full.RawRowView(i)
		copy(row, c.RawRowView(i))
		copy(row[k:], onehot.RawRowView(i))
	}
	return full
}

// Context returns the flow's context for rows of levels cats (row-major,
// one per categorical column) and contexts c, with log p(k) of each row:
// the context that LogPDF, Sample, Latent, CheckData and Fit take for a
// model of a mixed table. For a model of numbers only it returns c and no
// log probabilities. A level the training rows did not have is an
// *UnknownLevelError naming the row, the column and the level.
func (m *Model) Context(cats []string, c *mat.Dense) (*mat.Dense, []float64, error) {
	return flowContext(m.Categories, cats, c)
}

// flowContext is Model.Context for the categories' table cat (nil for a
// model of numbers only).
func flowContext(cat *Categories, cats []string, c *mat.Dense) (*mat.Dense, []float64, error) {
	if cat == nil {
		if len(cats) > 0 {
			return nil, nil, fmt.Errorf("flows: Model.Context: levels for a model without categorical columns")
		}
		return c, nil, nil
	}
	onehot, logp, err := cat.Encode(cats)
	if err != nil {
		return nil, nil, err
	}
	return joinContext(c, onehot), logp, nil
}

// LogPDFMixed returns the log density of each row of a mixed table under
// the model: log p(k) + log p(x | k, c), for the numbers x (n×Dim), the
// levels cats (row-major) and the contexts c (nil for none). It returns
// Context's error for a level not seen in training.
func (m *Model) LogPDFMixed(x *mat.Dense, cats []string, c *mat.Dense) ([]float64, error) {
	full, logp, err := m.Context(cats, c)
	if err != nil {
		return nil, err
	}
	lp := m.LogPDF(x, full)
	for i := range logp {
		lp[i] += logp[i]
	}
	return lp, nil
}

// SampleMixed draws n rows of a mixed table: their levels (row-major, as
// Categories.Sample draws them) and their numbers given the levels (and
// the contexts c, nil for none). The same key gives the same rows.
func (m *Model) SampleMixed(key flows.Key, n int, c *mat.Dense) (*mat.Dense, []string) {
	if m.Categories == nil {
		return m.Sample(key, n, c), nil
	}
	kc, kx := key.Split2()
	cats := m.Categories.Sample(kc, n)
	full, _, err := m.Context(cats, c)
	if err != nil {
		panic(fmt.Sprintf("flows: SampleMixed: %v", err)) // the table's own levels
	}
	return m.Sample(kx, n, full), cats
}

// FitMixed fits the flow of a mixed table's model to the rows (numbers x,
// levels cats, contexts c) as Fit does; the categories' table is fixed by
// NewMixed. The training summary's NLLs are the flow's, of the numbers
// given the categories; CategoriesNLL gives the categories' part.
func (m *Model) FitMixed(x *mat.Dense, cats []string, c *mat.Dense, cfg optim.FitConfig) (optim.FitResult, error) {
	full, _, err := m.Context(cats, c)
	if err != nil {
		return optim.FitResult{}, err
	}
	return m.Fit(x, full, cfg)
}

// CategoriesNLL returns the mean negative log probability, in nats per
// row, of the levels cats (row-major) under the model's categories' table.
func (m *Model) CategoriesNLL(cats []string) (float64, error) {
	if m.Categories == nil {
		return 0, nil
	}
	_, logp, err := m.Categories.Encode(cats)
	if err != nil {
		return 0, err
	}
	s := 0.0
	for _, v := range logp {
		s -= v
	}
	return s / float64(len(logp)), nil
}
