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
	return beam.ParDo(s, &scoreFn{scorer: newScorer(cfg)}, rows, beam.SideInput{Input: model})
}

// ScoreInline is Score with the model inside the pipeline: mf (from
// LoadModelFile) travels with the DoFn, as part of the pipeline's
// definition, instead of as a side input, and the scores are the same. It
// suits model files of a few MiB at most (InlineModelMax), since every
// runner receives the pipeline in one message. On Prism (Beam v2.77) it is
// also faster: while a bundle of a stage that reads a side input runs,
// Prism's watermark loop polls without waiting, taking a core's time
// (BENCHMARKS.md, "flows-beam on Prism against flows score").
func ScoreInline(s beam.Scope, mf ModelFile, rows beam.PCollection, cfg ScoreConfig) beam.PCollection {
	s = s.Scope("flowsbeam.Score")
	return beam.ParDo(s, &scoreInlineFn{scorer: newScorer(cfg), Model: mf}, rows)
}

// InlineModelMax is the size of the largest model file to give
// ScoreInline: pipelines travel as one message, gRPC's default limit is 4
// MiB, and the bytes grow by a third in the pipeline's JSON. (flows-beam
// itself still passes the model as a side input: with the model inline,
// one of 16 runs of its TestMixed on Prism lost the output of the
// CountRows stage, which reads side inputs; BENCHMARKS.md.)
const InlineModelMax = 2 << 20

func init() {
	register.DoFn4x1[context.Context, Rows, ModelFile, func(Scored), error](&scoreFn{})
	register.DoFn3x1[context.Context, Rows, func(Scored), error](&scoreInlineFn{})
	register.Emitter1[Scored]()
}

// scoreFn scores chunks of rows in batches, with the model a side input.
type scoreFn struct {
	scorer
}

// StartBundle parses the model, or finds it parsed. (Beam requires the
// side input here too, and the register package the emitter.)
func (f *scoreFn) StartBundle(_ context.Context, mf ModelFile, _ func(Scored)) error {
	return f.start(mf)
}

func (f *scoreFn) ProcessElement(_ context.Context, r Rows, mf ModelFile, emit func(Scored)) error {
	return f.process(r, mf.Path, emit)
}

func (f *scoreFn) FinishBundle(_ context.Context, _ ModelFile, emit func(Scored)) error {
	return f.flush(emit)
}

// scoreInlineFn scores chunks of rows in batches, with the model its field.
type scoreInlineFn struct {
	scorer
	Model ModelFile
}

// StartBundle parses the model, or finds it parsed. (The register package
// requires the emitter.)
func (f *scoreInlineFn) StartBundle(_ context.Context, _ func(Scored)) error {
	return f.start(f.Model)
}

func (f *scoreInlineFn) ProcessElement(_ context.Context, r Rows, emit func(Scored)) error {
	return f.process(r, f.Model.Path, emit)
}

func (f *scoreInlineFn) FinishBundle(_ context.Context, emit func(Scored)) error {
	return f.flush(emit)
}

// scorer is what the two scoring DoFns share: the batch size, the model
// and the chunks waiting for a batch.
type scorer struct {
	BatchRows int

	cache   modelCache
	pending []Rows // small chunks waiting for a batch
	rows    int    // the rows in pending
}

// newScorer returns the scorer of cfg.
func newScorer(cfg ScoreConfig) scorer {
	batch := cfg.BatchRows
	if batch <= 0 {
		batch = DefaultBatchRows
	}
	return scorer{BatchRows: batch}
}

// start begins a bundle with the model of mf.
func (f *scorer) start(mf ModelFile) error {
	f.pending, f.rows = nil, 0
	_, err := f.cache.get(mf)
	return err
}

// process scores the chunk r now when it is at least half a batch, and
// otherwise keeps it for the batch being gathered; path names the model
// file in errors.
func (f *scorer) process(r Rows, path string, emit func(Scored)) error {
	m := f.cache.model
	if err := checkWidths(r, m, path); err != nil {
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

// logPDF returns the log densities of the rows x (with the levels cats, row-major, for a
// model of a mixed table, and the contexts c) of the chunks, or the error
// of the first unknown level, naming its chunk's file and line.
func (f *scorer) logPDF(x *mat.Dense, cats []string, c *mat.Dense, chunks []Rows) ([]float64, error) {
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
func (f *scorer) flush(emit func(Scored)) error {
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
