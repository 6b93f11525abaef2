package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/gonormflows/flows/internal/linalg"
	"gonum.org/v1/gonum/mat"
)

// Schemas of the decoder tests: a model of columns x, y, and one of y
// given a context column c.
var (
	plainSchema = schema{names: []string{"x", "y"}, dim: 2, maxRows: 5, path: "m.flow"}
	condSchema  = schema{names: []string{"y"}, ctxNames: []string{"c"}, dim: 1, cdim: 1, maxRows: 5, path: "c.flow"}
)

func TestDecodeScoreJSON(t *testing.T) {
	tests := []struct {
		s      *schema
		body   string
		x, c   []float64
		latent bool
	}{
		{&plainSchema, `{"rows": [[1.5, 2], [3, -4e-3]]}`, []float64{1.5, 2, 3, -4e-3}, nil, false},
		{&plainSchema, ` { "latent" : true , "rows":[ {"y":2,"x":1.5} ] } `, []float64{1.5, 2}, nil, true},
		{&plainSchema, `{"rows":[[0,-0]],"latent":false}`, []float64{0, math.Copysign(0, -1)}, nil, false},
		{&plainSchema, `{"rows":[[1E2,2e+0]]}`, []float64{100, 2}, nil, false},
		{&plainSchema, `{"rows":[{"\u0078":1,"y":2}]}`, []float64{1, 2}, nil, false},
		{&condSchema, `{"rows":[[1],[2]],"context":[[0],[1]]}`, []float64{1, 2}, []float64{0, 1}, false},
		{&condSchema, `{"context":[[0]],"rows":[[1]]}`, []float64{1}, []float64{0}, false},
		{&condSchema, `{"rows":[{"c":5,"y":1},{"y":2,"c":6}]}`, []float64{1, 2}, []float64{5, 6}, false},
	}
	for _, tc := range tests {
		req, err := decodeScoreJSON([]byte(tc.body), tc.s)
		if err != nil {
			t.Errorf("%s: %v", tc.body, err)
			continue
		}
		if !sameBits(req.x.RawMatrix().Data, tc.x) || req.latent != tc.latent {
			t.Errorf("%s: x %v latent %v", tc.body, req.x.RawMatrix().Data, req.latent)
		}
		if (req.c == nil) != (tc.c == nil) || (req.c != nil && !sameBits(req.c.RawMatrix().Data, tc.c)) {
			t.Errorf("%s: c %v, want %v", tc.body, req.c, tc.c)
		}
	}
}

// sameBits reports whether a and b hold the same float64s, bit for bit.
// exactBits reports whether a test may demand that rows give the same bits
// whatever batch they are computed in: our kernels promise it; OpenBLAS,
// whose order of summation depends on the batch's size, does not.
var exactBits = linalg.Backend() != "openblas"

// sameRows is sameBits where exactBits holds, and agreement to 1e-12
// relative to the values' size in the openblas build.
func sameRows(a, b []float64) bool {
	if exactBits {
		return sameBits(a, b)
	}
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12*(1+math.Abs(b[i])) {
			return false
		}
	}
	return true
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// TestDecodeErrors: every class of bad input is a 4xx error of its kind
// that names the row and column where there are some.
func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		s      *schema
		csv    bool
		body   string
		status int
		kind   string
		row    int
		column string
		index  int
		msg    string
	}{
		{&plainSchema, false, ``, 400, errBadJSON, -1, "", -1, "the end of the body"},
		{&plainSchema, false, `{"rows": [[1, 2], [3, 4]`, 400, errBadJSON, 1, "", -1, "invalid JSON at byte 24"},
		{&plainSchema, false, `{"rows": [[1, 2], [3 4]]}`, 400, errBadJSON, 1, "", -1, "after value 0 of row 1"},
		{&plainSchema, false, `{"rows": [[1, 2]]} x`, 400, errBadJSON, -1, "", -1, "want the end of the body"},
		{&plainSchema, false, `{"rows": [[1, 2], [3, .5]]}`, 400, errBadJSON, 1, "y", 1, "want a number"},
		{&plainSchema, false, `{"rows": [[1, 2], [3, "4"]]}`, 400, errNotANumber, 1, "y", 1, `row 1, column "y": a string ("4") is not a number`},
		{&plainSchema, false, `{"rows": [[null, 2]]}`, 400, errNotANumber, 0, "x", 0, "null (null) is not a number"},
		{&plainSchema, false, `{"rows": [[1, true]]}`, 400, errNotANumber, 0, "y", 1, "a boolean (true) is not a number"},
		{&plainSchema, false, `{"rows": [[1, 2], [1e400, 2]]}`, 400, errNotFinite, 1, "x", 0, "1e400 is out of the range of float64"},
		{&plainSchema, false, `{"rows": [[1, NaN]]}`, 400, errNotFinite, 0, "y", 1, "NaN is not a finite number"},
		{&plainSchema, false, `{"rows": [[1, -Infinity]]}`, 400, errNotFinite, 0, "y", 1, "-Infinity is not a finite number"},
		{&plainSchema, false, `{"rows": [[1, 2, 3]]}`, 400, errBadWidth, 0, "", 2, "row 0 has more than 2 values; want 2 (x, y)"},
		{&plainSchema, false, `{"rows": [[1, 2], [3]]}`, 400, errBadWidth, 1, "", -1, "row 1 has 1 value; want 2"},
		{&plainSchema, false, `{"rows": [[1, 2], []]}`, 400, errBadWidth, 1, "", -1, "row 1 is empty"},
		{&plainSchema, false, `{"rows": [{"x": 1, "y": 2, "z": 3}]}`, 400, errUnknownColumn, 0, "z", -1, `"z" is not a column of m.flow; its columns are x, y`},
		{&plainSchema, false, `{"rows": [{"x": 1, "y": 2}, {"x": 1}]}`, 400, errMissingColumn, 1, "y", -1, `row 1 has no column "y"`},
		{&plainSchema, false, `{"rows": [{"x": 1, "x": 2}]}`, 400, errBadRequest, 0, "x", -1, `gives the column "x" twice`},
		{&plainSchema, false, `{"rows": [{"x": 1, "y": "a"}]}`, 400, errNotANumber, 0, "y", -1, `row 0, column "y"`},
		{&plainSchema, false, `{"rows": [[1, 2], {"x": 1, "y": 2}]}`, 400, errBadRequest, 1, "", -1, "row 1 is an object, but row 0 is an array"},
		{&plainSchema, false, `{"rows": [{"x": 1, "y": 2}, [1, 2]]}`, 400, errBadRequest, 1, "", -1, "row 1 is an array, but row 0 is an object"},
		{&plainSchema, false, `{"rows": [1, 2]}`, 400, errBadRequest, 0, "", -1, "row 0: want an array, found a number (1)"},
		{&plainSchema, false, `{"rows": {"x": 1}}`, 400, errBadRequest, -1, "", -1, `"rows": want an array, found an object`},
		{&plainSchema, false, `[[1, 2]]`, 400, errBadRequest, -1, "", -1, "the body: want an object"},
		{&plainSchema, false, `{"rows": []}`, 400, errNoRows, -1, "", -1, `"rows" is empty`},
		{&plainSchema, false, `{}`, 400, errNoRows, -1, "", -1, `no "rows"`},
		{&plainSchema, false, `{"rows": [[1, 2]], "Rows": 1}`, 400, errBadRequest, -1, "", -1, `unknown field "Rows"`},
		{&plainSchema, false, `{"rows": [[1, 2]], "rows": [[1, 2]]}`, 400, errBadRequest, -1, "", -1, `the field "rows" is given twice`},
		{&plainSchema, false, `{"rows": [[1, 2]], "latent": "yes"}`, 400, errBadRequest, -1, "", -1, `"latent" is a string ("yes"): want true or false`},
		{&plainSchema, false, `{"rows": [[1, 2]], "context": [[1]]}`, 400, errNotConditional, -1, "", -1, "m.flow is not a conditional model"},
		{&plainSchema, false, `{"rows": [[1,2],[1,2],[1,2],[1,2],[1,2],[1,2]]}`, 413, errTooManyRows, 5, "", -1, "more than 5 rows"},
		{&plainSchema, false, `{"rows": [[` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]]}`, 400, errBadRequest, 0, "", -1, "nested more than 64 deep"},
		{&condSchema, false, `{"rows": [[1]]}`, 400, errNotConditional, -1, "", -1, "c.flow is a conditional model of 1 context column (c)"},
		{&condSchema, false, `{"rows": [[1], [2]], "context": [[1]]}`, 400, errBadWidth, -1, "", -1, "1 context row for 2 rows"},
		{&condSchema, false, `{"rows": [[1]], "context": [[1, 2]]}`, 400, errBadWidth, 0, "", 1, "context row 0 has more than 1 value"},
		{&condSchema, false, `{"rows": [[1]], "context": [["a"]]}`, 400, errNotANumber, 0, "c", 0, `context row 0, column "c"`},
		{&condSchema, false, `{"rows": [{"y": 1}]}`, 400, errMissingColumn, 0, "c", -1, `row 0 has no column "c"`},
		{&condSchema, false, `{"rows": [{"y": 1, "c": 2}], "context": [[1]]}`, 400, errBadRequest, -1, "", -1, "give no \"context\" beside them"},

		{&plainSchema, true, "x,y\n1,2\n3,abc\n", 400, errNotANumber, 1, "y", 1, `body:3: column 1 ("y"): "abc" is not a number`},
		{&plainSchema, true, "y,x,note\n1,2,a\n\"3\",,b\n", 400, errNotANumber, 1, "x", 1, "empty cell"},
		{&plainSchema, true, "x,y\n1,NaN\n", 400, errNotFinite, 0, "y", 1, "is not a finite number"},
		{&plainSchema, true, "x,y\n1,1e999\n", 400, errNotFinite, 0, "y", 1, "out of the range"},
		{&plainSchema, true, "x,y\n1,2\n1,2,3\n", 400, errBadWidth, 1, "", -1, "a row of 3 columns"},
		{&plainSchema, true, "x,z\n1,2\n", 400, errMissingColumn, -1, "", -1, `no column is named "y"`},
		{&plainSchema, true, "x,y\n", 400, errNoRows, -1, "", -1, "no data rows"},
		{&plainSchema, true, "", 400, errNoRows, -1, "", -1, "the CSV body is empty"},
		{&plainSchema, true, "x,y\n1,\"2\n", 400, errBadCSV, -1, "", -1, "body:2:"},
		{&plainSchema, true, "x,y\n1,2\n1,2\n1,2\n1,2\n1,2\n1,2\n", 413, errTooManyRows, 5, "", -1, "more than 5 rows"},
		{&condSchema, true, "y\n1\n", 400, errMissingColumn, -1, "", -1, `no column is named "c"`},
	}
	for _, tc := range tests {
		var err error
		if tc.csv {
			_, err = decodeScoreCSV([]byte(tc.body), tc.s, true)
		} else {
			_, err = decodeScoreJSON([]byte(tc.body), tc.s)
		}
		var e *requestError
		if !errors.As(err, &e) {
			t.Errorf("%q: %v, want a requestError", tc.body, err)
			continue
		}
		if e.status != tc.status || e.kind != tc.kind || e.row != tc.row || e.column != tc.column || e.index != tc.index || !strings.Contains(e.msg, tc.msg) {
			t.Errorf("%q:\n got %d %s row %d column %q index %d: %s\nwant %d %s row %d column %q index %d: ...%s...",
				tc.body, e.status, e.kind, e.row, e.column, e.index, e.msg, tc.status, tc.kind, tc.row, tc.column, tc.index, tc.msg)
		}
		// The JSON of the error is JSON, and says the same.
		var got struct {
			Error struct {
				Status  int    `json:"status"`
				Kind    string `json:"kind"`
				Message string `json:"message"`
				Row     *int   `json:"row"`
			} `json:"error"`
		}
		if err := json.Unmarshal(e.appendJSON(nil), &got); err != nil || got.Error.Kind != e.kind || got.Error.Message != e.msg ||
			got.Error.Status != e.status || (got.Error.Row == nil) != (e.row < 0) {
			t.Errorf("%q: the error's JSON %s: %v", tc.body, e.appendJSON(nil), err)
		}
	}
}

func TestDecodeSample(t *testing.T) {
	r, err := decodeSample([]byte(`{"n": 3, "seed": 18446744073709551615}`), &plainSchema, 10)
	if err != nil || r.n != 3 || r.seed != math.MaxUint64 || r.ctx != nil {
		t.Errorf("%+v, %v", r, err)
	}
	r, err = decodeSample([]byte(`{"seed": 2, "contexts": [[1], [2]]}`), &condSchema, 10)
	if err != nil || r.n != 2 || !mat.Equal(r.ctx, mat.NewDense(2, 1, []float64{1, 2})) {
		t.Errorf("%+v, %v", r, err)
	}
	r, err = decodeSample([]byte(`{"n": 4, "context": [7]}`), &condSchema, 10)
	if err != nil || r.n != 4 || r.ctx.At(3, 0) != 7 {
		t.Errorf("%+v, %v", r, err)
	}
	for _, tc := range []struct {
		s    *schema
		body string
		kind string
	}{
		{&plainSchema, `{"n": 0}`, errBadRequest},
		{&plainSchema, `{"n": 11}`, errTooManyRows},
		{&plainSchema, `{"n": 2.5}`, errBadRequest},
		{&plainSchema, `{"n": -1}`, errBadRequest},
		{&plainSchema, `{"seed": -1}`, errBadRequest},
		{&plainSchema, `{"n": 1, "x": 1}`, errBadRequest},
		{&plainSchema, `{"n": 1`, errBadJSON},
		{&plainSchema, `{"n": 1} {}`, errBadJSON},
		{&plainSchema, ``, errBadJSON},
		{&plainSchema, `{"context": [1]}`, errNotConditional},
		{&condSchema, `{"n": 2}`, errNotConditional},
		{&condSchema, `{"context": [1, 2]}`, errBadWidth},
		{&condSchema, `{"contexts": [[1], []]}`, errBadWidth},
		{&condSchema, `{"contexts": []}`, errNoRows},
		{&condSchema, `{"n": 3, "contexts": [[1]]}`, errBadRequest},
		{&condSchema, `{"context": [1], "contexts": [[1]]}`, errBadRequest},
	} {
		_, err := decodeSample([]byte(tc.body), tc.s, 10)
		var e *requestError
		if !errors.As(err, &e) || e.kind != tc.kind || e.status/100 != 4 {
			t.Errorf("%s: %v (%+v), want kind %s", tc.body, err, e, tc.kind)
		}
	}
}

// FuzzDecodeRequest feeds any bytes to the request decoders (mode 0: a JSON
// score request, 1: a CSV one, 2: a sample request) of a model with or
// without a context. Every answer is either a request of the schema's
// shape holding finite numbers, or a 4xx requestError. A JSON score request
// is also checked against encoding/json: one that the decoder takes is
// valid JSON and holds the same numbers, bit for bit, as encoding/json
// reads there; one it calls malformed (bad_json) is not valid JSON; and
// invalid JSON is never taken.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		`{"rows": [[1.5, 2], [3, -4e-3]]}`, `{"rows":[{"x":1,"y":2}],"latent":true}`, `{"rows":[[1],[2]],"context":[[0],[1]]}`,
		`{"rows":[{"y":1,"c":2}]}`, `{"rows": [[1, "a"]]}`, `{"rows": [[NaN, 1]]}`, `{"rows": [[1e400, 1]]}`, `{"rows": [[1, 2, 3]]}`,
		`{"rows": [{"z": 1}]}`, `{"rows": [[1, 2], [3`, `{"rows":[{"\u0078":1,"y":2}]}`, `{"n": 3, "seed": 4}`, `{"contexts": [[1], [2]]}`,
		"x,y\n1,2\n3,4\n", "y,c\n1,2\n", "x,y\n1,abc\n", "\ufeffx,y\n1,2\n", `[[[[[]]]]]`, `{"rows":[[-0,0E0]]}`,
	} {
		for mode := range uint8(3) {
			f.Add([]byte(s), mode, false)
			f.Add([]byte(s), mode, true)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8, cond bool) {
		s := plainSchema
		if cond {
			s = condSchema
		}
		s.maxRows = 64
		var err error
		var req *scoreRequest
		switch mode % 3 {
		case 0:
			req, err = decodeScoreJSON(body, &s)
			checkAgainstEncodingJSON(t, body, &s, req, err)
		case 1:
			req, err = decodeScoreCSV(body, &s, true)
		case 2:
			var sr *sampleRequest
			if sr, err = decodeSample(body, &s, 64); err == nil {
				if sr.n < 1 || sr.n > 64 || (cond != (sr.ctx != nil)) {
					t.Fatalf("sample request %+v", sr)
				}
			}
		}
		if err != nil {
			var e *requestError
			if !errors.As(err, &e) || e.status < 400 || e.status > 499 || e.msg == "" || !slicesContains(errorKinds, e.kind) {
				t.Fatalf("error %T %v", err, err)
			}
			if !json.Valid(e.appendJSON(nil)) {
				t.Fatalf("the error's JSON is not JSON: %s", e.appendJSON(nil))
			}
			return
		}
		if req == nil {
			return
		}
		n, d := req.x.Dims()
		if n < 1 || n > s.maxRows || d != s.dim || (s.cdim > 0) != (req.c != nil) {
			t.Fatalf("request of %d×%d, context %v", n, d, req.c)
		}
		for _, m := range []*mat.Dense{req.x, req.c} {
			if m == nil {
				continue
			}
			for _, v := range m.RawMatrix().Data {
				if isInfOrNaN(v) {
					t.Fatalf("a value %v in a request taken", v)
				}
			}
		}
	})
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// checkAgainstEncodingJSON checks the decoder's answer to a JSON body
// against encoding/json (see FuzzDecodeRequest).
func checkAgainstEncodingJSON(t *testing.T, body []byte, s *schema, req *scoreRequest, err error) {
	t.Helper()
	valid := json.Valid(body)
	if err != nil {
		var e *requestError
		if errors.As(err, &e) && e.kind == errBadJSON && valid {
			t.Fatalf("valid JSON called malformed: %v", err)
		}
		return
	}
	if !valid {
		t.Fatalf("invalid JSON taken: %q", body)
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(top["rows"], &rows); err != nil {
		t.Fatalf("rows: %v", err)
	}
	number := func(raw json.RawMessage) float64 {
		var num json.Number
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&num); err != nil {
			t.Fatalf("encoding/json reads %s as no number: %v", raw, err)
		}
		v, err := strconv.ParseFloat(string(num), 64)
		if err != nil {
			t.Fatalf("%s: %v", num, err)
		}
		return v
	}
	var x, c []float64
	for _, r := range rows {
		if bytes.HasPrefix(bytes.TrimLeft(r, " \t\r\n"), []byte("{")) {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(r, &obj); err != nil {
				t.Fatal(err)
			}
			for _, n := range s.names {
				x = append(x, number(obj[n]))
			}
			for _, n := range s.ctxNames {
				c = append(c, number(obj[n]))
			}
			continue
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(r, &arr); err != nil {
			t.Fatal(err)
		}
		for _, v := range arr {
			x = append(x, number(v))
		}
	}
	if raw, ok := top["context"]; ok {
		var ctx [][]json.RawMessage
		if err := json.Unmarshal(raw, &ctx); err != nil {
			t.Fatal(err)
		}
		for _, r := range ctx {
			for _, v := range r {
				c = append(c, number(v))
			}
		}
	}
	if !sameBits(req.x.RawMatrix().Data, x) {
		t.Fatalf("rows %v; encoding/json reads %v", req.x.RawMatrix().Data, x)
	}
	if req.c != nil && !sameBits(req.c.RawMatrix().Data, c) {
		t.Fatalf("contexts %v; encoding/json reads %v", req.c.RawMatrix().Data, c)
	}
	var latent bool
	if raw, ok := top["latent"]; ok {
		json.Unmarshal(raw, &latent)
	}
	if latent != req.latent {
		t.Fatalf("latent %v; encoding/json reads %v", req.latent, latent)
	}
}
