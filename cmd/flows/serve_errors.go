package main

// The errors of requests: their kinds, and their JSON form, which names
// the row, column, line or byte offset at fault.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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
	errTooSlow        = "too_slow"      // a body that fell behind --min-body-rate: 408
	errNotALevel      = "not_a_level"   // a value of a categorical column that is not a string
	errUnknownLevel   = "unknown_level" // a level the model's training rows did not have
)

// errorKinds lists every kind, for the metrics.
var errorKinds = []string{errBadJSON, errBadCSV, errBadRequest, errNotANumber, errNotFinite, errBadWidth,
	errUnknownColumn, errMissingColumn, errNoRows, errTooManyRows, errTooLarge, errMediaType, errMethod,
	errNotFound, errOverloaded, errShuttingDown, errInternal, errClientGone, errNotConditional, errTooSlow,
	errNotALevel, errUnknownLevel}

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
