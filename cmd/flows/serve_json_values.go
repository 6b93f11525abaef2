package main

// The JSON decoder of score requests: the values of a row (numbers, keys
// and strings) and the values it skips.

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// cellError returns an error of the kind at the value of the current row
// in column j (named names[j]); index is its place in the row as sent, or
// −1 (in an object row).
func (d *jsonDec) cellError(kind string, names []string, j, index, at int, what, format string, args ...any) *requestError {
	e := badRequest(kind, "%s %d, column %q: %s", what, d.row, names[j], fmt.Sprintf(format, args...))
	e.row, e.column, e.index, e.offset = d.row, names[j], index, at
	return e
}

// arrayRow appends the width numbers of an array row to vals, and the
// levels of the levels categorical columns after them to d.cats; names
// name the row's values.
func (d *jsonDec) arrayRow(vals []float64, width, levels int, names []string, what string) ([]float64, *requestError) {
	if d.peek() == '{' && what == "row" {
		e := badRequest(errBadRequest, "row %d is an object, but row 0 is an array: give every row the same way", d.row)
		e.row, e.offset = d.row, d.i
		return nil, e
	}
	if err := d.open('[', what, d.row); err != nil {
		return nil, err
	}
	total := width + levels
	if d.peek() == ']' {
		d.i++
		e := badRequest(errBadWidth, "%s %d is empty; want %d %s (%s)", what, d.row, total, plural(total, "value"), joinNames(names))
		e.row = d.row
		return nil, e
	}
	for j := 0; ; j++ {
		d.ws()
		at := d.i
		if j >= total {
			e := badRequest(errBadWidth, "%s %d has more than %d %s; want %d (%s)", what, d.row, total, plural(total, "value"), total, joinNames(names))
			e.row, e.index, e.offset = d.row, j, at
			return nil, e
		}
		if j < width {
			v, err := d.number(names, j, j, what)
			if err != nil {
				return nil, err
			}
			vals = append(vals, v)
		} else {
			lv, err := d.level(j-width, names, j, j)
			if err != nil {
				return nil, err
			}
			d.cats = append(d.cats, lv)
		}
		switch d.peek() {
		case ']':
			d.i++
			if j+1 != total {
				e := badRequest(errBadWidth, "%s %d has %d %s; want %d (%s)", what, d.row, j+1, plural(j+1, "value"), total, joinNames(names))
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

// level reads the level of the current row in the categorical column k,
// value j of the row (named names[j]) at index in the row as sent (−1 in
// an object row): a JSON string that is one of the column's levels,
// returned as the model's own string (so that it costs no allocation). A
// number or other value there is not_a_level; a string the training rows
// did not have, unknown_level.
func (d *jsonDec) level(k int, names []string, j, index int) (string, *requestError) {
	levels := d.s.cat.Levels[k]
	d.ws()
	at := d.i
	if d.peek() != '"' {
		if err := d.skipValue(0); err != nil {
			return "", err
		}
		return "", d.cellError(errNotALevel, names, j, index, at, "row", "%s is not a level: want a string, one of %s",
			describe(d.b[at:d.i]), joinNames(quoteAll(levels)))
	}
	raw, _, err := d.strBytes("a level")
	if err != nil {
		return "", err
	}
	v, ok := findLevel(levels, raw)
	if !ok {
		e := d.s.unknownLevel(fmt.Sprintf("row %d", d.row), d.row, k, string(raw))
		e.index, e.offset = index, at
		return "", e
	}
	return levels[v], nil
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
	dim, cdim, ncat := d.s.dim, d.s.cdim, d.s.ncat()
	x0, c0, k0 := len(d.x), len(d.c), len(d.cats)
	d.x = append(d.x, make([]float64, dim)...)
	d.c = append(d.c, make([]float64, cdim)...)
	for range ncat {
		d.cats = append(d.cats, "")
	}
	var buf [64]bool
	var got []bool
	if all := dim + cdim + ncat; all > len(buf) {
		got = make([]bool, all)
	} else {
		got = buf[:all]
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
		switch {
		case j < dim:
			v, err := d.number(d.s.names, j, -1, "row")
			if err != nil {
				return err
			}
			d.x[x0+j] = v
		case j < dim+cdim:
			v, err := d.number(d.s.ctxNames, j-dim, -1, "row")
			if err != nil {
				return err
			}
			d.c[c0+j-dim] = v
		default:
			lv, err := d.level(j-dim-cdim, d.s.cat.Names, j-dim-cdim, -1)
			if err != nil {
				return err
			}
			d.cats[k0+j-dim-cdim] = lv
		}
		got[j] = true
		count++
		return nil
	})
	if err != nil {
		return err
	}
	if count != dim+cdim+ncat {
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

// all returns the column, context and categorical column names, in order.
func (d *jsonDec) all() []string {
	return append(append(slices.Clone(d.s.names), d.s.ctxNames...), d.s.cat.ColumnNames()...)
}

// column returns the index of the column key names among the columns, then
// the context columns, then the categorical columns, or −1.
func (d *jsonDec) column(key string) int {
	if j := slices.Index(d.s.names, key); j >= 0 {
		return j
	}
	if j := slices.Index(d.s.ctxNames, key); j >= 0 {
		return d.s.dim + j
	}
	if j := slices.Index(d.s.cat.ColumnNames(), key); j >= 0 {
		return d.s.dim + d.s.cdim + j
	}
	return -1
}

// intern returns raw as a string: the schema's own string when raw is one
// of its column names, which object rows repeat on every row (so a key
// costs no allocation), else a copy.
func (d *jsonDec) intern(raw []byte) string {
	for _, names := range [3][]string{d.s.names, d.s.ctxNames, d.s.cat.ColumnNames()} {
		for _, n := range names {
			if string(raw) == n {
				return n
			}
		}
	}
	return string(raw)
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
	raw, copied, err := d.strBytes(what)
	switch {
	case err != nil:
		return "", err
	case copied:
		return string(raw), nil
	}
	return d.intern(raw), nil
}

// strBytes reads a JSON string and returns its bytes: a slice of the body
// for the common case (ASCII without escapes), else a copy with the escapes
// decoded (copied is then true).
func (d *jsonDec) strBytes(what string) (raw []byte, copied bool, err *requestError) {
	if d.peek() != '"' {
		return nil, false, d.syntax("want %s (a string), found %s", what, d.what())
	}
	d.i++
	start := d.i
	// The common case: ASCII without escapes.
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			d.i++
			return d.b[start : d.i-1], false, nil
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
			return out, true, nil
		case c < 0x20:
			return nil, false, d.syntax("a control character in a string")
		case c == '\\':
			if d.i+1 >= len(d.b) {
				d.i++
				return nil, false, d.syntax("an unfinished escape in a string")
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
					return nil, false, d.syntax(`a \u escape without 4 hex digits`)
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if save := d.i; d.i+1 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
						d.i += 2
						var ok bool
						if r2, ok = d.hex4(); !ok {
							return nil, false, d.syntax(`a \u escape without 4 hex digits`)
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
				return nil, false, d.syntax("an invalid escape \\%c in a string", e)
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
	return nil, false, d.syntax("an unterminated string")
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
