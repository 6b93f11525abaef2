package main

// The request decoder of flows serve: the rows of a POST /v1/score, as JSON
// (rows as arrays, or as objects keyed by column name) or as CSV with a
// header, and the body of a POST /v1/sample. Every error is a requestError
// that names the row and column at fault.
//
// The JSON tokenizer of score requests is in serve_json.go (structure) and
// serve_json_values.go (numbers, strings, skipped values); see the design
// notes there.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// schema is what a request's rows must fit: the model's columns, context
// columns and categorical columns, and the most rows a request may hold.
type schema struct {
	names, ctxNames []string // one per column: the model's names, or x0, x1, … (c0, c1, … for contexts)
	dim, cdim       int
	cat             *model.Categories // the categorical columns and their levels; nil for a model of numbers only
	rowNames        []string          // the values of an array row: names, then the categorical columns
	maxRows         int
	path            string // the model file, in messages
}

// arrayNames returns the names of an array row's values: rowNames, or
// names for a schema made without them (a model of numbers only).
func (s *schema) arrayNames() []string {
	if s.rowNames == nil {
		return s.names
	}
	return s.rowNames
}

// ncat returns the number of categorical columns.
func (s *schema) ncat() int { return len(s.cat.ColumnNames()) }

// scoreRequest is a decoded POST /v1/score.
type scoreRequest struct {
	x, c   *mat.Dense // c is nil for an unconditional model
	cats   []string   // the levels, row-major, each the model's own string; nil without categorical columns
	latent bool       // the latent coordinates are wanted too
}

// findLevel returns the index of level among the sorted levels (as
// Categories.Encode finds it), and whether it is there. It compares
// without converting level to a string, so that a lookup allocates
// nothing.
func findLevel[T ~string | ~[]byte](levels []string, level T) (int, bool) {
	lo, hi := 0, len(levels)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if levels[m] < string(level) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(levels) && levels[lo] == string(level)
}

// unknownLevel returns the unknown_level error of row's level in the
// categorical column k, its message after where (the row, or the line).
func (s *schema) unknownLevel(where string, row, k int, level string) *requestError {
	name := s.cat.Names[k]
	e := badRequest(errUnknownLevel, "%s: column %q: level %q was not in the model's training rows (its levels: %s)",
		where, name, level, joinNames(s.cat.Levels[k]))
	e.row, e.column = row, name
	return e
}

// decodeScoreCSV decodes a CSV body with a header row: the model's
// columns (and context columns) are found by name, other columns are
// ignored, as flows score reads a file. Errors name the line, the row
// (from 0, the header not counted) and the column.
func decodeScoreCSV(body []byte, s *schema, named bool) (*scoreRequest, error) {
	opt := table.Options{Header: table.HeaderYes, Want: s.dim, WantContext: s.cdim, Model: s.path,
		ColumnsName: s.path + "'s columns", ContextName: s.path + "'s context columns", HeaderName: "a header row"}
	if named {
		opt.Columns = s.names
	}
	if s.cdim > 0 {
		opt.Context = s.ctxNames
	}
	if s.cat != nil {
		opt.Categorical = s.cat.Names
	}
	rd, err := table.NewReader(bytes.NewReader(body), "body", opt)
	if err != nil {
		return nil, csvError(err)
	}
	t, err := rd.Read(s.maxRows)
	if err == io.EOF {
		return nil, badRequest(errNoRows, "the CSV body has a header row but no data rows")
	}
	if err != nil {
		return nil, csvError(err)
	}
	if _, err := rd.Read(1); err != io.EOF {
		if err != nil {
			return nil, csvError(err)
		}
		return nil, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooManyRows,
			msg: fmt.Sprintf("more than %d rows in one request (--max-rows); split the request", s.maxRows), row: s.maxRows, index: -1, offset: -1}
	}
	req := &scoreRequest{x: t.X, c: t.C}
	if s.cat != nil {
		// Each level as the model's own string, or the row's error now
		// (the model would stop at the first unknown level of a batch).
		k := s.ncat()
		req.cats = t.Cats
		for i, level := range t.Cats {
			at, ok := findLevel(s.cat.Levels[i%k], level)
			if !ok {
				e := s.unknownLevel(fmt.Sprintf("body:%d", t.Lines[i/k]), i/k, i%k, level)
				e.line = t.Lines[i/k]
				return nil, e
			}
			req.cats[i] = s.cat.Levels[i%k][at]
		}
	}
	return req, nil
}

// csvError turns an error of package table into a requestError that names
// the row and column.
func csvError(err error) *requestError {
	msg := err.Error()
	e := badRequest(errBadCSV, "%s", msg)
	var re *table.RowError
	switch {
	case errors.As(err, &re):
		e.line, e.row, e.index, e.column = re.Line, re.Row, re.Column, re.Header
		switch re.Issue {
		case table.EmptyCell, table.NotANumber:
			e.kind = errNotANumber
		case table.NotFinite:
			e.kind = errNotFinite
		case table.Width:
			e.kind, e.index = errBadWidth, -1
		}
	case strings.Contains(msg, "no column is named") || strings.Contains(msg, "the file has no header row"):
		e.kind = errMissingColumn
	case strings.Contains(msg, "is a model of"):
		e.kind = errBadWidth
	case strings.Contains(msg, "the file is empty"):
		e.kind, e.msg = errNoRows, "the CSV body is empty: want a header row and rows of numbers"
	}
	return e
}

// sampleRequest is a decoded POST /v1/sample.
type sampleRequest struct {
	n    int
	seed uint64
	ctx  *mat.Dense // one context row per sample, or nil
}

// decodeSample decodes the JSON body of POST /v1/sample:
//
//	{"n": 100, "seed": 7}
//	{"n": 100, "seed": 7, "context": [1.5]}             (every row given one context)
//	{"seed": 7, "contexts": [[0], [1], [1]]}           (one row per context row)
//
// n defaults to 1 (and is the count of "contexts" when given), seed to 0;
// at most most rows. The rows are those of flows sample --seed with the
// same n and contexts, bit for bit.
func decodeSample(body []byte, s *schema, most int) (*sampleRequest, error) {
	var raw struct {
		N        *int64      `json:"n"`
		Seed     *uint64     `json:"seed"`
		Context  []float64   `json:"context"`
		Contexts [][]float64 `json:"contexts"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			e := badRequest(errBadJSON, "invalid JSON at byte %d: %v", se.Offset, se)
			e.offset = int(se.Offset)
			return nil, e
		case errors.As(err, &te):
			return nil, badRequest(errBadRequest, "%q: want %s, found a JSON %s", te.Field, te.Type, te.Value)
		case err == io.EOF:
			return nil, badRequest(errBadJSON, "an empty body: want {\"n\": …, \"seed\": …}")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, badRequest(errBadJSON, "the body ends inside the JSON")
		}
		return nil, badRequest(errBadRequest, "%v", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return nil, badRequest(errBadJSON, "more JSON after the request object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest(errBadJSON, "more JSON after the request object")
	}
	req := &sampleRequest{n: 1}
	if raw.Seed != nil {
		req.seed = *raw.Seed
	}
	switch {
	case s.cdim == 0 && (raw.Context != nil || raw.Contexts != nil):
		return nil, badRequest(errNotConditional, "%s is not a conditional model: a sample request to it has no context", s.path)
	case s.cdim > 0 && raw.Context == nil && raw.Contexts == nil:
		return nil, badRequest(errNotConditional, "%s is a conditional model of %d context %s (%s): give \"context\" (one for every row) or \"contexts\" (one per row)",
			s.path, s.cdim, plural(s.cdim, "column"), joinNames(s.ctxNames))
	case raw.Context != nil && raw.Contexts != nil:
		return nil, badRequest(errBadRequest, `"context" and "contexts" both give contexts; choose one`)
	case raw.Contexts != nil && raw.N != nil && *raw.N != int64(len(raw.Contexts)):
		return nil, badRequest(errBadRequest, `"n" is %d but "contexts" has %d rows: one row is drawn per context row`, *raw.N, len(raw.Contexts))
	}
	if raw.N != nil {
		if *raw.N < 1 {
			return nil, badRequest(errBadRequest, `"n" is %d: want at least 1`, *raw.N)
		}
		if *raw.N > int64(most) {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooManyRows, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf(`"n" is %d: at most %d rows a request (--max-sample)`, *raw.N, most)}
		}
		req.n = int(*raw.N)
	}
	check := func(row int, vals []float64) error {
		if len(vals) != s.cdim {
			e := badRequest(errBadWidth, "context row %d has %d %s; want %d (%s)", row, len(vals), plural(len(vals), "value"), s.cdim, joinNames(s.ctxNames))
			e.row = row
			return e
		}
		for j, v := range vals {
			if isInfOrNaN(v) {
				e := badRequest(errNotFinite, "context row %d, column %d (%q): %v is not finite", row, j, s.ctxNames[j], v)
				e.row, e.column, e.index = row, s.ctxNames[j], j
				return e
			}
		}
		return nil
	}
	switch {
	case raw.Context != nil:
		if err := check(0, raw.Context); err != nil {
			return nil, err
		}
		req.ctx = mat.NewDense(min(req.n, sampleBlock), s.cdim, nil)
		for i := range min(req.n, sampleBlock) {
			req.ctx.SetRow(i, raw.Context)
		}
	case raw.Contexts != nil:
		if len(raw.Contexts) == 0 {
			return nil, badRequest(errNoRows, `"contexts" is empty`)
		}
		if len(raw.Contexts) > most {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooManyRows, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf(`"contexts" has %d rows: at most %d a request (--max-sample)`, len(raw.Contexts), most)}
		}
		req.n = len(raw.Contexts)
		req.ctx = mat.NewDense(req.n, s.cdim, nil)
		for i, row := range raw.Contexts {
			if err := check(i, row); err != nil {
				return nil, err
			}
			req.ctx.SetRow(i, row)
		}
	}
	return req, nil
}
