package main

// The request decoder of flows serve: the rows of a POST /v1/score, as JSON
// (rows as arrays, or as objects keyed by column name) or as CSV with a
// header, and the body of a POST /v1/sample. Every error is a requestError
// that names the row and column at fault.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/table"
)

// The kinds of request error, as the JSON errors and the metrics name them.
const (
	errBadJSON        = "bad_json"               // not JSON, or JSON of the wrong shape
	errBadCSV         = "bad_csv"                // CSV that does not parse
	errBadRequest     = "bad_request"            // a bad field, query or setting
	errNotANumber     = "not_a_number"           // a cell or value that is not a number
	errNotFinite      = "not_finite"             // NaN, ±Inf, or out of float64's range
	errBadWidth       = "wrong_width"            // a row of the wrong number of values
	errUnknownColumn  = "unknown_column"         // a key that names no column of the model
	errMissingColumn  = "missing_column"         // a column of the model that a row lacks
	errNoRows         = "no_rows"                // a request without rows
	errTooManyRows    = "too_many_rows"          // more rows than --max-rows or --max-sample
	errTooLarge       = "body_too_large"         // a body over --max-body
	errMediaType      = "unsupported_media_type" // a Content-Type other than JSON or CSV
	errMethod         = "method_not_allowed"
	errNotFound       = "not_found"
	errOverloaded     = "overloaded"    // the queue is full: 503 with Retry-After
	errShuttingDown   = "shutting_down" // the server is draining
	errInternal       = "internal"      // a bug: 500, logged
	errClientGone     = "client_gone"   // the client left before its answer
	errNotConditional = "no_context"    // a context for a model without one, or none for one with
)

// errorKinds lists every kind, for the metrics.
var errorKinds = []string{errBadJSON, errBadCSV, errBadRequest, errNotANumber, errNotFinite, errBadWidth,
	errUnknownColumn, errMissingColumn, errNoRows, errTooManyRows, errTooLarge, errMediaType, errMethod,
	errNotFound, errOverloaded, errShuttingDown, errInternal, errClientGone, errNotConditional}

// requestError is an error the client caused, or an answer other than
// success: its status, kind and message, and where it is, when it is in
// a row.
type requestError struct {
	status int
	kind   string
	msg    string
	row    int    // the row (from 0), or −1
	column string // the column's name, or ""
	index  int    // the value's place in the row as sent (from 0), or −1
	line   int    // the CSV line (from 1), or 0
	offset int    // the JSON byte offset (from 0), or −1
}

func (e *requestError) Error() string { return e.msg }

// badRequest returns a 400 error of the kind, not in a row.
func badRequest(kind, format string, args ...any) *requestError {
	return &requestError{status: http.StatusBadRequest, kind: kind, msg: fmt.Sprintf(format, args...), row: -1, index: -1, offset: -1}
}

// appendJSON appends the error as the JSON object the server answers with:
//
//	{"error":{"kind":"not_finite","message":"…","row":3,"column":"y","index":1}}
func (e *requestError) appendJSON(b []byte) []byte {
	b = append(b, `{"error":{"status":`...)
	b = strconv.AppendInt(b, int64(e.status), 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.kind)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.msg)
	if e.row >= 0 {
		b = append(b, `,"row":`...)
		b = strconv.AppendInt(b, int64(e.row), 10)
	}
	if e.column != "" {
		b = append(b, `,"column":`...)
		b = appendJSONString(b, e.column)
	}
	if e.index >= 0 {
		b = append(b, `,"index":`...)
		b = strconv.AppendInt(b, int64(e.index), 10)
	}
	if e.line > 0 {
		b = append(b, `,"line":`...)
		b = strconv.AppendInt(b, int64(e.line), 10)
	}
	if e.offset >= 0 {
		b = append(b, `,"offset":`...)
		b = strconv.AppendInt(b, int64(e.offset), 10)
	}
	return append(b, "}}\n"...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// schema is what a request's rows must fit: the model's columns and
// context columns, and the most rows a request may hold.
type schema struct {
	names, ctxNames []string // one per column: the model's names, or x0, x1, … (c0, c1, … for contexts)
	dim, cdim       int
	maxRows         int
	path            string // the model file, in messages
}

// scoreRequest is a decoded POST /v1/score.
type scoreRequest struct {
	x, c   *mat.Dense // c is nil for an unconditional model
	latent bool       // the latent coordinates are wanted too
}

// decodeScoreJSON decodes a JSON body of POST /v1/score:
//
//	{"rows": [[1.5, 2], [3, 4]], "context": [[0], [1]], "latent": true}
//	{"rows": [{"x": 1.5, "y": 2, "c": 0}, {"x": 3, "y": 4, "c": 1}]}
//
// rows is required; an array row holds the model's columns in order, and
// context (for a conditional model only) one array of the context columns
// per row; an object row holds every column and context column by name,
// once each, in any order. latent is optional. Every value must be a JSON
// number that is a finite float64.
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
		if err := d.expect(':', "after "+keyWhat); err != nil {
			return err
		}
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
			d.x, e = d.arrayRow(d.x, d.s.dim, d.s.names, "row")
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
	for {
		if n >= d.s.maxRows {
			return 0, d.tooMany("context rows")
		}
		d.row = n
		var e *requestError
		if d.cArr, e = d.arrayRow(d.cArr, d.s.cdim, d.s.ctxNames, "context row"); e != nil {
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

// cellError returns an error of the kind at the value of the current row
// in column j (named names[j]); index is its place in the row as sent, or
// −1 (in an object row).
func (d *jsonDec) cellError(kind string, names []string, j, index, at int, what, format string, args ...any) *requestError {
	e := badRequest(kind, "%s %d, column %q: %s", what, d.row, names[j], fmt.Sprintf(format, args...))
	e.row, e.column, e.index, e.offset = d.row, names[j], index, at
	return e
}

// arrayRow appends the width numbers of an array row to vals.
func (d *jsonDec) arrayRow(vals []float64, width int, names []string, what string) ([]float64, *requestError) {
	if d.peek() == '{' && what == "row" {
		e := badRequest(errBadRequest, "row %d is an object, but row 0 is an array: give every row the same way", d.row)
		e.row, e.offset = d.row, d.i
		return nil, e
	}
	if err := d.open('[', what, d.row); err != nil {
		return nil, err
	}
	if d.peek() == ']' {
		d.i++
		e := badRequest(errBadWidth, "%s %d is empty; want %d %s (%s)", what, d.row, width, plural(width, "value"), joinNames(names))
		e.row = d.row
		return nil, e
	}
	for j := 0; ; j++ {
		d.ws()
		at := d.i
		if j >= width {
			e := badRequest(errBadWidth, "%s %d has more than %d %s; want %d (%s)", what, d.row, width, plural(width, "value"), width, joinNames(names))
			e.row, e.index, e.offset = d.row, j, at
			return nil, e
		}
		v, err := d.number(names, j, j, what)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
		switch d.peek() {
		case ']':
			d.i++
			if j+1 != width {
				e := badRequest(errBadWidth, "%s %d has %d %s; want %d (%s)", what, d.row, j+1, plural(j+1, "value"), width, joinNames(names))
				e.row, e.offset = d.row, d.i-1
				return nil, e
			}
			return vals, nil
		case ',':
			d.i++
		default:
			return nil, d.syntax("want ',' or ']' after value %d of %s %d, found %s", j, what, d.row, d.what())
		}
	}
}

// objectRow reads an object row, every column and context column of the
// model by name, once each, into d.x and d.c.
func (d *jsonDec) objectRow() *requestError {
	if d.peek() == '[' {
		e := badRequest(errBadRequest, "row %d is an array, but row 0 is an object: give every row the same way", d.row)
		e.row, e.offset = d.row, d.i
		return e
	}
	if err := d.open('{', "row", d.row); err != nil {
		return err
	}
	dim, cdim := d.s.dim, d.s.cdim
	x0, c0 := len(d.x), len(d.c)
	d.x = append(d.x, make([]float64, dim)...)
	d.c = append(d.c, make([]float64, cdim)...)
	var buf [64]bool
	var got []bool
	if dim+cdim > len(buf) {
		got = make([]bool, dim+cdim)
	} else {
		got = buf[:dim+cdim]
	}
	count := 0
	err := d.members("a column name", "after a value in a row", func(key string, at int) *requestError {
		j := d.column(key)
		if j < 0 {
			e := badRequest(errUnknownColumn, "row %d: %q is not a column of %s; its columns are %s", d.row, key, d.s.path, joinNames(d.all()))
			e.row, e.column, e.offset = d.row, key, at
			return e
		}
		if got[j] {
			e := badRequest(errBadRequest, "row %d gives the column %q twice", d.row, key)
			e.row, e.column, e.offset = d.row, key, at
			return e
		}
		if j < dim {
			v, err := d.number(d.s.names, j, -1, "row")
			if err != nil {
				return err
			}
			d.x[x0+j] = v
		} else {
			v, err := d.number(d.s.ctxNames, j-dim, -1, "row")
			if err != nil {
				return err
			}
			d.c[c0+j-dim] = v
		}
		got[j] = true
		count++
		return nil
	})
	if err != nil {
		return err
	}
	if count != dim+cdim {
		all := d.all()
		var missing []string
		for j, g := range got {
			if !g {
				missing = append(missing, all[j])
			}
		}
		e := badRequest(errMissingColumn, "row %d has no %s %s", d.row, plural(len(missing), "column"), joinNames(quoteAll(missing)))
		e.row, e.column = d.row, missing[0]
		return e
	}
	return nil
}

// all returns the column and context names, in order.
func (d *jsonDec) all() []string {
	return append(slices.Clone(d.s.names), d.s.ctxNames...)
}

// column returns the index of the column key names among the columns and
// then the context columns, or −1.
func (d *jsonDec) column(key string) int {
	if j := slices.Index(d.s.names, key); j >= 0 {
		return j
	}
	if j := slices.Index(d.s.ctxNames, key); j >= 0 {
		return d.s.dim + j
	}
	return -1
}

// boolean reads true or false.
func (d *jsonDec) boolean(field string) (bool, *requestError) {
	d.ws()
	switch {
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
		return true, nil
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
		return false, nil
	}
	at := d.i
	if err := d.skipValue(0); err != nil {
		return false, err
	}
	e := badRequest(errBadRequest, "%q is %s: want true or false", field, describe(d.b[at:d.i]))
	e.offset = at
	return false, e
}

// nonFinite lists what JSON writers write for numbers JSON does not have.
var nonFinite = []string{"NaN", "Infinity", "-Infinity", "+Infinity", "-Inf", "+Inf", "Inf"}

// number reads a JSON number: the value of the current row in column j
// (named names[j]), at index in the row as sent (−1 in an object row). A
// string, null, boolean, array or object there is not_a_number; a number
// out of float64's range, or NaN or Infinity (which JSON does not have),
// not_finite.
func (d *jsonDec) number(names []string, j, index int, what string) (float64, *requestError) {
	d.ws()
	at := d.i
	end := scanNumber(d.b, d.i)
	if end < 0 {
		for _, lit := range nonFinite {
			if bytes.HasPrefix(d.b[at:], []byte(lit)) {
				return 0, d.cellError(errNotFinite, names, j, index, at, what, "%s is not a finite number (nor JSON)", lit)
			}
		}
		if c := d.peek(); c != ',' && c != ']' && c != '}' && c != 0 {
			err := d.skipValue(0)
			if err == nil {
				return 0, d.cellError(errNotANumber, names, j, index, at, what, "%s is not a number", describe(d.b[at:d.i]))
			}
			if err.kind != errBadJSON {
				return 0, err
			}
		}
		d.i = at
		e := d.syntax("want a number for %s %d, column %q, found %s", what, d.row, names[j], d.what())
		e.column, e.index = names[j], index
		return 0, e
	}
	d.i = end
	v, err := strconv.ParseFloat(string(d.b[at:end]), 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, d.cellError(errNotFinite, names, j, index, at, what, "%s is out of the range of float64", d.b[at:end])
	}
	return v, nil
}

// scanNumber returns the end of the JSON number at b[i:], or −1 when
// there is none: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(b []byte, i int) int {
	digits := func() bool {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			return -1
		}
	}
	return i
}

// str reads a JSON string. Invalid UTF-8 and lone surrogates become
// U+FFFD, as encoding/json has them.
func (d *jsonDec) str(what string) (string, *requestError) {
	if d.peek() != '"' {
		return "", d.syntax("want %s (a string), found %s", what, d.what())
	}
	d.i++
	start := d.i
	// The common case: ASCII without escapes.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := string(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		d.i++
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return string(out), nil
		case c < 0x20:
			return "", d.syntax("a control character in a string")
		case c == '\\':
			if d.i+1 >= len(d.b) {
				d.i++
				return "", d.syntax("an unfinished escape in a string")
			}
			e := d.b[d.i+1]
			d.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := d.hex4()
				if !ok {
					return "", d.syntax(`a \u escape without 4 hex digits`)
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if save := d.i; d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						d.i += 2
						var ok bool
						if r2, ok = d.hex4(); !ok {
							return "", d.syntax(`a \u escape without 4 hex digits`)
						}
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							out = utf8.AppendRune(out, dec)
							continue
						}
						d.i = save
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i -= 2
				return "", d.syntax("an invalid escape \\%c in a string", e)
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			d.i++
		default:
			r, size := utf8.DecodeRune(d.b[d.i:])
			out = utf8.AppendRune(out, r)
			d.i += size
		}
	}
	return "", d.syntax("an unterminated string")
}

// hex4 reads 4 hex digits.
func (d *jsonDec) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	d.i += 4
	return r, true
}

// skipValue skips one JSON value of any type. It returns the syntax error
// of one that is not JSON, or a bad_request error for one nested more than
// maxDepth deep.
func (d *jsonDec) skipValue(depth int) *requestError {
	switch c := d.peek(); {
	case d.i >= len(d.b):
		return d.syntax("want a value, found the end of the body")
	case c == '"':
		_, err := d.str("a string")
		return err
	case c == '{' || c == '[':
		if depth >= maxDepth {
			e := badRequest(errBadRequest, "a value nested more than %d deep", maxDepth)
			e.offset, e.row = d.i, d.row
			return e
		}
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		d.i++
		if d.peek() == closing {
			d.i++
			return nil
		}
		for {
			if c == '{' {
				if _, err := d.str("a field name"); err != nil {
					return err
				}
				if err := d.expect(':', "after a field name"); err != nil {
					return err
				}
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			more, err := d.more(closing, "in a value")
			if err != nil {
				return err
			}
			if !more {
				return nil
			}
		}
	case bytes.HasPrefix(d.b[d.i:], []byte("true")):
		d.i += 4
	case bytes.HasPrefix(d.b[d.i:], []byte("false")):
		d.i += 5
	case bytes.HasPrefix(d.b[d.i:], []byte("null")):
		d.i += 4
	default:
		end := scanNumber(d.b, d.i)
		if end < 0 {
			return d.syntax("want a value, found %s", d.what())
		}
		d.i = end
	}
	return nil
}

// quoteAll returns the strings quoted.
func quoteAll(s []string) []string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return q
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
	return &scoreRequest{x: t.X, c: t.C}, nil
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
