package main

// The model a server holds: loading and checking a model file, and what
// GET /v1/model says about it.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// modelState is a loaded model with what the server says about it. It is
// replaced whole on reload, never changed.
type modelState struct {
	m          *model.Model
	ev         *model.Prepared // m prepared at load: every request scores and samples through it
	schema     schema
	named      bool // the file records column names
	sha        string
	size       int64
	modTime    time.Time
	loaded     time.Time
	doc        []byte // the body of GET /v1/model
	data       *mat.Dense
	dataLevels []string // the data rows' levels, for a model of a mixed table
	dataPath   string
	corner     func() ([]byte, error) // the card's corner plot, drawn once, on first use
}

// load reads, checks and describes the model file (and the --data file).
func (s *server) load() (*modelState, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	m, err := model.Read(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.path, strings.TrimPrefix(trimFlows(err).Error(), "model file: "))
	}
	ev, err := verify(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.path, err)
	}
	sum := sha256.Sum256(b)
	st := &modelState{m: m, ev: ev, sha: hex.EncodeToString(sum[:]), size: int64(len(b)), modTime: fi.ModTime(), loaded: time.Now(),
		named: len(m.Config.Columns) == m.Dim}
	st.schema = schema{names: modelNames(m), dim: m.Dim, cdim: m.ContextDim, cat: m.Categories, maxRows: s.f.maxRows, path: filepath.Base(s.path)}
	st.schema.rowNames = append(slices.Clone(st.schema.names), m.Categories.ColumnNames()...)
	st.schema.ctxNames = m.Config.Context
	if len(st.schema.ctxNames) != m.ContextDim {
		st.schema.ctxNames = make([]string, m.ContextDim)
		for j := range st.schema.ctxNames {
			st.schema.ctxNames[j] = "c" + strconv.Itoa(j)
		}
	}
	names := st.schema.names
	if s.f.data != "" && m.ContextDim == 0 {
		t, err := table.ReadFile(s.f.data, cliflags.ForModel(table.Options{}, m, s.path))
		if err != nil {
			return nil, fmt.Errorf("--data: %v", err)
		}
		st.data, st.dataLevels, st.dataPath, names = t.X, t.Cats, s.f.data, t.Names
	}
	if st.doc, err = s.describe(st); err != nil {
		return nil, err
	}
	st.corner = sync.OnceValues(func() ([]byte, error) {
		title := plotTitle(s.path)
		if st.dataPath != "" {
			title = plotTitle(s.path, st.dataPath)
		}
		cf, err := newCorner(m, cornerOptions{Title: title, Names: names, Data: st.data, DataLevels: st.dataLevels, N: -1})
		if err != nil {
			return nil, err
		}
		return cf.encode("png")
	})
	return st, nil
}

// verify prepares the model (the evaluator that serves its requests) and
// checks that it gives finite log densities at samples drawn
// from it (given its mean context, for a conditional model) and at the
// mean of its training data: a file can be intact and still hold a model
// that cannot serve.
func verify(m *model.Model) (ev *model.Prepared, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("the model fails its check: %v", r)
		}
	}()
	ev = m.Prepare()
	const n = 64
	var c *mat.Dense
	if m.ContextDim > 0 {
		c = mat.NewDense(n, m.ContextDim, nil)
		for i := range n {
			c.SetRow(i, m.ContextMean)
		}
	}
	x, cats := ev.SampleMixed(flows.NewKey(0), n, c)
	x.SetRow(0, m.Mean)
	lp, err := ev.LogPDFMixed(x, cats, c)
	if err != nil {
		return nil, fmt.Errorf("the model fails its check: %v", err) // its own levels
	}
	for i, v := range lp {
		if isInfOrNaN(v) {
			return nil, fmt.Errorf("the model fails its check: the log density of its sample %d is %v", i, v)
		}
	}
	return ev, nil
}

// modelDoc is the body of GET /v1/model.
type modelDoc struct {
	File            string       `json:"file"`
	Size            int64        `json:"size"`
	SHA256          string       `json:"sha256"`
	Modified        time.Time    `json:"modified"`
	Loaded          time.Time    `json:"loaded"`
	Kind            model.Kind   `json:"kind"`
	Summary         string       `json:"summary"`
	Columns         []string     `json:"columns"`
	Context         []string     `json:"context"`
	Named           bool         `json:"named"`
	Parameters      int          `json:"parameters"`
	Config          model.Config `json:"config"`
	Standardization struct {
		Mean         []float64 `json:"mean"`
		Scale        []float64 `json:"scale"`
		ContextMean  []float64 `json:"context_mean,omitempty"`
		ContextScale []float64 `json:"context_scale,omitempty"`
	} `json:"standardization"`
	// Categories are the categorical columns of a mixed table's model,
	// with their levels, in the order an array row holds them (after
	// the columns); absent for a model of numbers only.
	Categories   []categoryDoc   `json:"categories,omitempty"`
	Training     *model.Training `json:"training"`
	TrainingNote string          `json:"training_note,omitempty"`
	Limits       struct {
		MaxBody   int64 `json:"max_body"`
		MaxRows   int   `json:"max_rows"`
		MaxSample int   `json:"max_sample"`
	} `json:"limits"`
}

// categoryDoc is a categorical column in GET /v1/model: its name, its
// place in an array row, and its levels, the strings a request may give.
type categoryDoc struct {
	Name   string   `json:"name"`
	Index  int      `json:"index"`
	Levels []string `json:"levels"`
}

// categoryDocs describes the categorical columns of m (nil for none).
func categoryDocs(m *model.Model) []categoryDoc {
	var out []categoryDoc
	for k, name := range m.Categories.ColumnNames() {
		out = append(out, categoryDoc{Name: name, Index: m.Dim + k, Levels: m.Categories.Levels[k]})
	}
	return out
}

// trainingNote says why a model has no training summary.
const trainingNote = "the model file records no training summary: the model was not fitted by flows fit " +
	"(Model.Fit), or was written before model files kept one"

// describe returns the body of GET /v1/model.
func (s *server) describe(st *modelState) ([]byte, error) {
	m := st.m
	d := modelDoc{File: s.path, Size: st.size, SHA256: st.sha, Modified: st.modTime.UTC(), Loaded: st.loaded.UTC(),
		Kind: m.Config.Kind, Columns: st.schema.names, Context: st.schema.ctxNames, Named: st.named,
		Parameters: len(m.Params), Config: m.Config, Training: m.Training, Categories: categoryDocs(m)}
	if m.Training == nil {
		d.TrainingNote = trainingNote
	}
	if d.Context == nil {
		d.Context = []string{}
	}
	if info, ok := m.Config.Kind.Info(); ok {
		d.Summary = info.Summary
	}
	d.Standardization.Mean, d.Standardization.Scale = m.Mean, m.Scale
	d.Standardization.ContextMean, d.Standardization.ContextScale = m.ContextMean, m.ContextScale
	d.Limits.MaxBody, d.Limits.MaxRows, d.Limits.MaxSample = int64(s.f.maxBody), s.f.maxRows, s.f.maxSample
	b, err := json.MarshalIndent(d, "", "  ")
	return append(b, '\n'), err
}
