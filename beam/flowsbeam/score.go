package flowsbeam

// Scoring.
//
// A row's log density under a model does not depend on the other rows of
// its batch (package flows guarantees it, bit for bit), so scoring may batch
// rows however the runner bundles them: chunks of at least half a batch are
// scored as they are, smaller ones are gathered within a bundle until a
// batch is full (or the bundle ends), so that the matrix kernel always sees
// thousands of rows, and the bits are those of scoring each row alone.

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
)

// DefaultBatchRows is the number of rows Score scores at a time when
// ScoreConfig.BatchRows is zero.
const DefaultBatchRows = 4096

// ScoreConfig configures Score.
type ScoreConfig struct {
	// BatchRows is the number of rows scored at a time (default
	// DefaultBatchRows); it changes the speed, not the scores.
	BatchRows int
}

// Score returns the log density of every row of rows (a PCollection of
// Rows) under the model of the side input model (a one-element
// PCollection of ModelFile, from ReadModelFile), as a PCollection of Scored,
// one per chunk of rows. The model is parsed once per worker process. A
// chunk whose columns do not match the model's widths, or a model file that
// does not parse, fails the pipeline with an error naming the file. The
// model is prepared once per worker process (Model.Prepare), and every
// batch is scored by the prepared evaluator, with the bits of
// Model.LogPDF.
func Score(s beam.Scope, model, rows beam.PCollection, cfg ScoreConfig) beam.PCollection {
	s = s.Scope("flowsbeam.Score")
	batch := cfg.BatchRows
	if batch <= 0 {
		batch = DefaultBatchRows
	}
	return beam.ParDo(s, &scoreFn{BatchRows: batch}, rows, beam.SideInput{Input: model})
}

func init() {
	register.DoFn4x1[context.Context, Rows, ModelFile, func(Scored), error](&scoreFn{})
	register.Emitter1[Scored]()
}

// scoreFn scores chunks of rows in batches.
type scoreFn struct {
	BatchRows int

	cache   modelCache
	pending []Rows // small chunks waiting for a batch
	rows    int    // the rows in pending
}

// StartBundle parses the model, or finds it parsed. (Beam requires the
// side input here too, and the register package the emitter.)
func (f *scoreFn) StartBundle(_ context.Context, mf ModelFile, _ func(Scored)) error {
	f.pending, f.rows = nil, 0
	_, err := f.cache.get(mf)
	return err
}

func (f *scoreFn) ProcessElement(ctx context.Context, r Rows, mf ModelFile, emit func(Scored)) error {
	m := f.cache.model
	if err := checkWidths(r, m, mf.Path); err != nil {
		return err
	}
	if r.Len() == 0 {
		return nil
	}
	if 2*r.Len() >= f.BatchRows {
		lp, err := f.logPDF(r.Data(), r.Cats, r.Context(), []Rows{r})
		if err != nil {
			return err
		}
		emit(Scored{Rows: r, LogDensity: lp})
		return nil
	}
	f.pending = append(f.pending, r)
	f.rows += r.Len()
	if f.rows >= f.BatchRows {
		return f.flush(emit)
	}
	return nil
}

func (f *scoreFn) FinishBundle(_ context.Context, _ ModelFile, emit func(Scored)) error {
	return f.flush(emit)
}

// logPDF returns the log densities of the rows x (with the levels cats, row-major, for a
// model of a mixed table, and the contexts c) of the chunks, or the error
// of the first unknown level, naming its chunk's file and line.
func (f *scoreFn) logPDF(x *mat.Dense, cats []string, c *mat.Dense, chunks []Rows) ([]float64, error) {
	if f.cache.model.Categories == nil {
		return f.cache.ev.LogPDF(x, c), nil
	}
	lp, err := f.cache.ev.LogPDFMixed(x, cats, c)
	var ue *model.UnknownLevelError
	if errors.As(err, &ue) {
		// ReadCSV with the model's Categories sends such rows to the
		// dead letters; rows from elsewhere fail here.
		row := ue.Row
		for _, r := range chunks {
			if row < r.Len() {
				return nil, levelError(r.File, r.Lines[row], ue.Column, ue.Level, ue.Levels)
			}
			row -= r.Len()
		}
	}
	return lp, err
}

// flush scores the pending chunks as one batch.
func (f *scoreFn) flush(emit func(Scored)) error {
	if f.rows == 0 {
		f.pending = nil
		return nil
	}
	m := f.cache.model
	dim, cdim := m.Dim, m.ContextDim
	x := mat.NewDense(f.rows, dim, nil)
	var c *mat.Dense
	if cdim > 0 {
		c = mat.NewDense(f.rows, cdim, nil)
	}
	var cats []string
	if m.Categories != nil {
		cats = make([]string, 0, f.rows*len(m.Categories.Names))
	}
	at := 0
	for _, r := range f.pending {
		copy(x.RawMatrix().Data[at*dim:], r.X)
		if c != nil {
			copy(c.RawMatrix().Data[at*cdim:], r.C)
		}
		cats = append(cats, r.Cats...)
		at += r.Len()
	}
	lp, err := f.logPDF(x, cats, c, f.pending)
	if err != nil {
		return err
	}
	at = 0
	for _, r := range f.pending {
		emit(Scored{Rows: r, LogDensity: lp[at : at+r.Len() : at+r.Len()]})
		at += r.Len()
	}
	f.pending, f.rows = nil, 0
	return nil
}

// checkWidths returns an error when the chunk r does not have the model's
// numbers of data and context columns.
func checkWidths(r Rows, m *model.Model, path string) error {
	if len(r.Names) != m.Dim || len(r.ContextNames) != m.ContextDim ||
		len(r.X) != r.Len()*m.Dim || len(r.C) != r.Len()*m.ContextDim {
		return fmt.Errorf("%s: rows of %d data and %d context columns (%d values for %d rows), but %s is a model of %d and %d",
			r.File, len(r.Names), len(r.ContextNames), len(r.X)+len(r.C), r.Len(), path, m.Dim, m.ContextDim)
	}
	if k := len(m.Categories.ColumnNames()); len(r.CatNames) != k || len(r.Cats) != r.Len()*k {
		return fmt.Errorf("%s: rows of %d categorical columns (%d levels for %d rows), but %s is a model of %d",
			r.File, len(r.CatNames), len(r.Cats), r.Len(), path, k)
	}
	return nil
}
