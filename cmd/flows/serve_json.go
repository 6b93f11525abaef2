package main

// The JSON decoder of score requests: the structure of the request (its
// fields, rows and contexts), one pass over the bytes with the values going
// straight into the rows' matrices.
//
// Design notes: why a hand-written tokenizer (issue 20 asked whether a
// well-kept library does the job; measured December 2026, Go 1.26.8).
//
//   - encoding/json/v2 and encoding/json/jsontext ship with Go 1.26.8 only
//     behind GOEXPERIMENT=jsonv2 (go doc encoding/json/v2 fails without it);
//     they become stable in Go 1.27.
//   - github.com/go-json-experiment/json (v1.27.2, jsontext included) is now
//     a mirror of those packages; its go.mod says "This package will
//     regularly experience breaking changes" and requires go 1.26, so
//     adopting it would raise this module's go line from 1.24 and add a
//     dependency without a stable API.
//   - It would do the job: a prototype of the rows part of this decoder on
//     jsontext (Decoder.ReadToken/ReadValue/PeekKind, InputOffset for the
//     byte offsets, Token.Float for the numbers; decoders pooled and Reset)
//     allocated, on BenchmarkDecodeScoreJSON's bodies (8 columns): 1 row as
//     arrays 3 allocs/160 B (13/696 B unpooled), as objects 3/160 B;
//     1,000 rows as arrays 17/259 KB, as objects 17/259 KB. This decoder:
//     7/216 B, 4/156 B, 21/259 KB, 18/259 KB (8/240 B, 13/372 B, 22/259 KB
//     and 8,019/451 KB before members and str stopped allocating per key).
//     Both are within 2× of each other; times were within noise on the
//     shared machine (medians of 6 interleaved runs at -cpu 1: this decoder
//     3.2 µs, 4.5 µs, 2.3 ms, 4.0 ms; the pooled prototype 4.1 µs, 7.4 µs,
//     2.8 ms, 5.5 ms; spreads of ±50-130%).
//   - What jsontext would replace is the tokenizer proper (str, hex4,
//     scanNumber, skipValue, ws: about 200 lines); the request's shape, the
//     error kinds (not_a_number for a string or array where a number
//     belongs, not_finite for "NaN" or 1e400, wrong_width at the value's
//     offset, row and column names) and the fuzz target's comparison with
//     encoding/json stay ours either way.
//
// So: ours stays until the module's go line reaches 1.27; then jsontext
// from the standard library (no dependency) is worth a port, with the
// same tests (TestDecodeErrors pins the messages and offsets) and
// FuzzDecodeRequest.

import (
	"fmt"
	"net/http"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// decodeScoreJSON decodes a JSON body of POST /v1/score:
//
//	{"rows": [[1.5, 2], [3, 4]], "context": [[0], [1]], "latent": true}
//	{"rows": [{"x": 1.5, "y": 2, "c": 0}, {"x": 3, "y": 4, "c": 1}]}
//	{"rows": [[1.5, 2, "red"], [3, 4, "blue"]]}                  (a mixed table's model)
//	{"rows": [{"x": 1.5, "y": 2, "colour": "red"}]}
//
// rows is required; an array row holds the model's columns in order, then
// its categorical columns' levels (a model of a mixed table), and context
// (for a conditional model only) one array of the context columns per row;
// an object row holds every column, context column and categorical column
// by name, once each, in any order. latent is optional. Every value of a
// column or context column must be a JSON number that is a finite
// float64; every level a JSON string, one of the column's levels.
func decodeScoreJSON(body []byte, s *schema) (*scoreRequest, error) {
	d := &jsonDec{b: body, s: s}
	req, err := d.request()
	if err != nil {
		return nil, err // not a nil *requestError in an error
	}
	return req, nil
}

// jsonDec is the hand-written JSON decoder of score requests: one pass
// over the bytes, values straight into the rows' matrices.
type jsonDec struct {
	b    []byte
	i    int
	s    *schema
	row  int       // the row being read, for errors; −1 outside rows
	x    []float64 // the rows' values, row by row
	cats []string  // the rows' levels, row by row: the model's own strings
	c    []float64 // the object rows' context values
	cArr []float64 // the "context" array's values
}

// maxDepth bounds the nesting of a value that is skipped (a value where a
// number belongs, read to name its type): deeper is an error, not a deep
// recursion.
const maxDepth = 64

// syntax returns a bad_json error at the current offset: the body is not
// JSON.
func (d *jsonDec) syntax(format string, args ...any) *requestError {
	e := badRequest(errBadJSON, "invalid JSON at byte %d: %s", d.i, fmt.Sprintf(format, args...))
	e.offset, e.row = d.i, d.row
	return e
}

// what describes the byte at the current offset, for messages.
func (d *jsonDec) what() string {
	if d.i >= len(d.b) {
		return "the end of the body"
	}
	return fmt.Sprintf("%q", d.b[d.i])
}

// ws skips white space.
func (d *jsonDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the byte after white space, or 0 at the end.
func (d *jsonDec) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// expect consumes c after white space, or returns a syntax error: for
// the punctuation that JSON's grammar requires.
func (d *jsonDec) expect(c byte, where string) *requestError {
	if d.peek() == c {
		d.i++
		return nil
	}
	return d.syntax("want %q %s, found %s", c, where, d.what())
}

// open consumes the '[' or '{' that starts a value the request's shape
// requires: what, or, with row ≥ 0, what and the row (formatted only for
// an error). When another JSON value is there, the error is a bad_request
// naming what it found; when no JSON value is, the syntax error.
func (d *jsonDec) open(c byte, what string, row int) *requestError {
	if d.peek() == c {
		d.i++
		return nil
	}
	at := d.i
	if err := d.skipValue(0); err != nil {
		return err
	}
	if row >= 0 {
		what = fmt.Sprintf("%s %d", what, row)
	}
	e := badRequest(errBadRequest, "%s: want %s, found %s", what, kindOf(c), describe(d.b[at:d.i]))
	e.offset, e.row = at, d.row
	return e
}

// kindOf names the JSON type that starts with c.
func kindOf(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '{':
		return "an object"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// describe describes a JSON value for a message: its type and, when short,
// its text.
func describe(v []byte) string {
	k := kindOf(v[0])
	if len(v) > 24 {
		return k
	}
	return fmt.Sprintf("%s (%s)", k, v)
}

// more reads what follows an element of an array or object: true after a
// comma (another element follows), false after the closing byte.
func (d *jsonDec) more(closing byte, where string) (bool, *requestError) {
	switch d.peek() {
	case ',':
		d.i++
		return true, nil
	case closing:
		d.i++
		return false, nil
	}
	return false, d.syntax("want ',' or %q %s, found %s", closing, where, d.what())
}

// scoreFields are the fields of a score request.
var scoreFields = []string{"rows", "context", "latent"}

// request reads the top-level object.
func (d *jsonDec) request() (*scoreRequest, *requestError) {
	d.row = -1
	if err := d.open('{', "the body", -1); err != nil {
		return nil, err
	}
	req := &scoreRequest{}
	var nRows, nCtx int
	var objectRows bool
	var seen [3]bool // rows, context, latent
	err := d.members("a field name", "after a field", func(key string, at int) *requestError {
		f := slices.Index(scoreFields, key)
		if f < 0 {
			e := badRequest(errBadRequest, `unknown field %q: a score request has "rows", and may have "context" and "latent"`, key)
			e.offset = at
			return e
		}
		if seen[f] {
			e := badRequest(errBadRequest, "the field %q is given twice", key)
			e.offset = at
			return e
		}
		seen[f] = true
		var err *requestError
		switch f {
		case 0:
			nRows, objectRows, err = d.rows()
		case 1:
			nCtx, err = d.contexts()
		case 2:
			req.latent, err = d.boolean("latent")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if d.ws(); d.i != len(d.b) {
		return nil, d.syntax("want the end of the body after the request object, found %s", d.what())
	}
	hasCtx := seen[1]
	switch {
	case !seen[0]:
		return nil, badRequest(errNoRows, `no "rows": a score request is {"rows": [[...], ...]}`)
	case nRows == 0:
		return nil, badRequest(errNoRows, `"rows" is empty: give at least one row`)
	case hasCtx && objectRows:
		return nil, badRequest(errBadRequest, `rows given as objects hold their context columns by name; give no "context" beside them`)
	case d.s.cdim > 0 && !objectRows && !hasCtx:
		return nil, badRequest(errNotConditional, `%s is a conditional model of %d context %s (%s): give "context", one row per row, or rows as objects`,
			d.s.path, d.s.cdim, plural(d.s.cdim, "column"), joinNames(d.s.ctxNames))
	case hasCtx && nCtx != nRows:
		return nil, badRequest(errBadWidth, "%d context %s for %d %s: give one per row", nCtx, plural(nCtx, "row"), nRows, plural(nRows, "row"))
	}
	req.x = mat.NewDense(nRows, d.s.dim, d.x)
	req.cats = d.cats
	switch {
	case d.s.cdim > 0 && objectRows:
		req.c = mat.NewDense(nRows, d.s.cdim, d.c)
	case d.s.cdim > 0:
		req.c = mat.NewDense(nRows, d.s.cdim, d.cArr)
	}
	return req, nil
}

// members reads the members of an object whose '{' has been read, up to its
// '}': each is called with a member's key and its offset, once the ':' after
// the key is read, and reads the value.
func (d *jsonDec) members(keyWhat, afterWhat string, each func(key string, at int) *requestError) *requestError {
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		d.ws()
		at := d.i
		key, err := d.str(keyWhat)
		if err != nil {
			return err
		}
		if d.peek() != ':' { // the message only for an error: a member is read per column per row
			return d.expect(':', "after "+keyWhat)
		}
		d.i++
		if err := each(key, at); err != nil {
			return err
		}
		more, err := d.more('}', afterWhat)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// tooMany returns the error of a request of more than s.maxRows rows.
func (d *jsonDec) tooMany(what string) *requestError {
	return &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooManyRows,
		msg: fmt.Sprintf("more than %d %s in one request (--max-rows); split the request", d.s.maxRows, what),
		row: d.s.maxRows, index: -1, offset: d.i}
}

// rows reads the array of rows, arrays of numbers or objects, into d.x
// (and the object rows' contexts into d.c).
func (d *jsonDec) rows() (n int, objects bool, err *requestError) {
	if err := d.open('[', `"rows"`, -1); err != nil {
		return 0, false, err
	}
	if d.peek() == ']' {
		d.i++
		return 0, false, nil
	}
	if d.x == nil { // a row's room: a 1-row request's only allocation here
		d.x = make([]float64, 0, d.s.dim)
	}
	for {
		if n >= d.s.maxRows {
			return 0, false, d.tooMany("rows")
		}
		d.row = n
		if n == 0 {
			objects = d.peek() == '{'
		}
		var e *requestError
		if objects {
			e = d.objectRow()
		} else {
			d.x, e = d.arrayRow(d.x, d.s.dim, d.s.ncat(), d.s.arrayNames(), "row")
		}
		if e != nil {
			return 0, false, e
		}
		n++
		more, e := d.more(']', `after a row of "rows"`)
		if e != nil {
			return 0, false, e
		}
		if !more {
			d.row = -1
			return n, objects, nil
		}
	}
}

// contexts reads the "context" array, one array of the context columns per
// row, into d.cArr.
func (d *jsonDec) contexts() (n int, err *requestError) {
	if d.s.cdim == 0 {
		return 0, badRequest(errNotConditional, `%s is not a conditional model: a request to it has no "context"`, d.s.path)
	}
	if err := d.open('[', `"context"`, -1); err != nil {
		return 0, err
	}
	if d.peek() == ']' {
		d.i++
		return 0, nil
	}
	if d.cArr == nil {
		d.cArr = make([]float64, 0, d.s.cdim)
	}
	for {
		if n >= d.s.maxRows {
			return 0, d.tooMany("context rows")
		}
		d.row = n
		var e *requestError
		if d.cArr, e = d.arrayRow(d.cArr, d.s.cdim, 0, d.s.ctxNames, "context row"); e != nil {
			return 0, e
		}
		n++
		more, e := d.more(']', `after a row of "context"`)
		if e != nil {
			return 0, e
		}
		if !more {
			d.row = -1
			return n, nil
		}
	}
}
