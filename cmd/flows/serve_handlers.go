package main

// The HTTP handlers: routing, the GET endpoints, error answers, and the
// score and sample endpoints.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// outcome is what a handler did, for the metrics and the access log.
type outcome struct {
	code int
	rows int
	err  *requestError
}

// ServeHTTP routes a request, and counts and logs it.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	endpoint := "other"
	var out outcome
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("a handler panicked: this is a bug", "panic", fmt.Sprint(v), "path", r.URL.Path, "stack", string(debug.Stack()))
			out = s.fail(w, &requestError{status: http.StatusInternalServerError, kind: errInternal,
				msg: "an internal error; it is logged", row: -1, index: -1, offset: -1})
		}
		d := time.Since(start)
		s.metrics.request(endpoint, out.code, d)
		if out.err != nil {
			s.metrics.errors[out.err.kind].Add(1)
			if out.code >= 500 && out.err.kind != errOverloaded && out.err.kind != errShuttingDown {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", out.code, "kind", out.err.kind, "err", out.err.msg)
			} else {
				s.log.Debug("bad request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", out.code, "kind", out.err.kind, "err", out.err.msg)
			}
		}
		if s.f.accessLog {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", out.code,
				"rows", out.rows, "bytes_in", r.ContentLength, "seconds", d.Seconds())
		}
	}()
	st := s.state.Load()
	switch r.URL.Path {
	case "/v1/score":
		endpoint = "score"
		out = s.compute(w, r, st, s.score)
	case "/v1/sample":
		endpoint = "sample"
		out = s.compute(w, r, st, s.sample)
	case "/v1/model":
		endpoint = "model"
		out = s.get(w, r, "application/json", func() ([]byte, error) { return st.doc, nil })
	case "/healthz":
		endpoint = "healthz"
		out = s.get(w, r, "application/json", func() ([]byte, error) { return []byte(`{"status":"ok"}` + "\n"), nil })
	case "/readyz":
		endpoint = "readyz"
		if s.drain.Load() {
			out = s.fail(w, &requestError{status: http.StatusServiceUnavailable, kind: errShuttingDown, msg: "shutting down", row: -1, index: -1, offset: -1})
			break
		}
		out = s.get(w, r, "application/json", func() ([]byte, error) {
			return []byte(`{"status":"ready","sha256":"` + st.sha + `"}` + "\n"), nil
		})
	case "/metrics":
		endpoint = "metrics"
		out = s.get(w, r, "text/plain; version=0.0.4; charset=utf-8", func() ([]byte, error) {
			var b bytes.Buffer
			info := modelInfo{kind: string(st.m.Config.Kind), file: s.path, sha256: st.sha, loaded: st.loaded, params: len(st.m.Params)}
			err := s.metrics.write(&b, info, s.f.workers, s.f.queue)
			return b.Bytes(), err
		})
	case "/":
		endpoint = "card"
		out = s.get(w, r, "text/html; charset=utf-8", func() ([]byte, error) { return s.card(st, r.Host) })
	case "/corner.png":
		endpoint = "corner"
		if st.m.ContextDim > 0 {
			out = s.fail(w, &requestError{status: http.StatusNotFound, kind: errNotFound, row: -1, index: -1, offset: -1,
				msg: "a conditional model has no corner plot without a context"})
			break
		}
		out = s.get(w, r, "image/png", st.corner)
	default:
		out = s.fail(w, &requestError{status: http.StatusNotFound, kind: errNotFound, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("no endpoint %s: see GET / for the endpoints", r.URL.Path)})
	}
}

// get answers a GET or HEAD request with the body that body makes.
func (s *server) get(w http.ResponseWriter, r *http.Request, contentType string, body func() ([]byte, error)) outcome {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return s.fail(w, &requestError{status: http.StatusMethodNotAllowed, kind: errMethod, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("%s takes GET, not %s", r.URL.Path, r.Method)})
	}
	b, err := body()
	if err != nil {
		panic(fmt.Errorf("%s: %w", r.URL.Path, err)) // answered as an internal error, and logged
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
	return outcome{code: http.StatusOK}
}

// fail answers with the error e as JSON.
func (s *server) fail(w http.ResponseWriter, e *requestError) outcome {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if e.status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "1")
	}
	bp := s.buffer(256)
	b := e.appendJSON((*bp)[:0])
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(e.status)
	w.Write(b)
	*bp = b
	s.bufs.Put(bp)
	return outcome{code: e.status, err: e}
}

// buffer returns a buffer of capacity n or more from the pool.
func (s *server) buffer(n int) *[]byte {
	if v := s.bufs.Get(); v != nil {
		bp := v.(*[]byte)
		if cap(*bp) >= n {
			*bp = (*bp)[:0]
			return bp
		}
		s.bufs.Put(bp)
	}
	b := make([]byte, 0, max(n, 512))
	return &b
}

// release puts a buffer back in the pool, unless it is too large to keep.
func (s *server) release(bp *[]byte) {
	if cap(*bp) <= poolMax {
		s.bufs.Put(bp)
	}
}

// score answers POST /v1/score.
func (s *server) score(r *http.Request, st *modelState, body, out []byte) ([]byte, int, *requestError) {
	ct := r.Header.Get("Content-Type")
	csv := false
	// The common type as clients send it needs no parsing (ParseMediaType
	// allocates a map of parameters on every request).
	if ct != "" && ct != "application/json" {
		mt, params, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, 0, &requestError{status: http.StatusUnsupportedMediaType, kind: errMediaType, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf("Content-Type %q does not parse: %v", ct, err)}
		case mt == "text/csv":
			csv = true
		case mt != "application/json":
			return nil, 0, &requestError{status: http.StatusUnsupportedMediaType, kind: errMediaType, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf("Content-Type %q: send application/json or text/csv%s", mt, curlHint(mt))}
		}
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, 0, &requestError{status: http.StatusUnsupportedMediaType, kind: errMediaType, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf("charset %q: send UTF-8", cs)}
		}
	}
	latent, qerr := latentQuery(r.URL.RawQuery)
	if qerr != nil {
		return nil, 0, qerr
	}
	var req *scoreRequest
	var err error
	if csv {
		req, err = decodeScoreCSV(body, &st.schema, st.named)
	} else {
		req, err = decodeScoreJSON(body, &st.schema)
	}
	if err != nil {
		return nil, 0, err.(*requestError)
	}
	j := s.getJob(st, req, latent || req.latent)
	defer s.putJob(j)
	if e := s.schedule(r, j); e != nil {
		return nil, 0, e
	}
	out = append(out, `{"log_density":[`...)
	for i, v := range j.lp {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendNumber(out, v)
	}
	out = append(out, ']')
	if j.latent {
		out = append(out, `,"latent":`...)
		out = appendRows(out, j.z)
	}
	return append(out, "}\n"...), len(j.lp), nil
}

// curlHint is a hint for the form type that curl -d sends unless told.
func curlHint(mt string) string {
	if mt == "application/x-www-form-urlencoded" {
		return " (curl -d sends a form: add -H 'Content-Type: application/json', or use curl --json)"
	}
	return ""
}

// latentQuery reads the query of a score request: latent=true or false
// (1 or 0), nothing else.
func latentQuery(raw string) (bool, *requestError) {
	if raw == "" {
		return false, nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return false, badRequest(errBadRequest, "the query %q does not parse: %v", raw, err)
	}
	latent := false
	for k, vs := range q {
		if k != "latent" {
			return false, badRequest(errBadRequest, "unknown query parameter %q: the score endpoint takes latent=true", k)
		}
		for _, v := range vs {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, badRequest(errBadRequest, "latent=%q: want true or false", v)
			}
			latent = b
		}
	}
	return latent, nil
}

// appendNumber appends v as a JSON number in the shortest form that reads
// back exactly (as flows score writes it), or, when JSON has no such number,
// as the string "NaN", "+Inf" or "-Inf".
func appendNumber(b []byte, v float64) []byte {
	if isInfOrNaN(v) {
		b = append(b, '"')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		return append(b, '"')
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendRows appends the rows of x as a JSON array of arrays.
func appendRows(b []byte, x *mat.Dense) []byte {
	b = append(b, '[')
	b = appendMixedRows(b, x, nil, 0)
	return append(b, ']')
}

// appendMixedRows appends the rows of x, comma-separated, each a JSON
// array of its numbers followed by its k levels (row-major in levels) as
// strings.
func appendMixedRows(b []byte, x *mat.Dense, levels []string, k int) []byte {
	n, _ := x.Dims()
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '[')
		for j, v := range x.RawRowView(i) {
			if j > 0 {
				b = append(b, ',')
			}
			b = appendNumber(b, v)
		}
		for _, lv := range levels[i*k : (i+1)*k] {
			b = append(b, ',')
			b = appendJSONString(b, lv)
		}
		b = append(b, ']')
	}
	return b
}

// sample answers POST /v1/sample: the rows that flows sample draws for the
// same n, seed and contexts, in blocks of sampleBlock rows, block b drawn
// with the seed's key folded with b.
func (s *server) sample(r *http.Request, st *modelState, body, out []byte) ([]byte, int, *requestError) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, 0, &requestError{status: http.StatusUnsupportedMediaType, kind: errMediaType, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf("Content-Type %q: send application/json%s", ct, curlHint(ct))}
		}
	}
	req, err := decodeSample(body, &st.schema, s.f.maxSample)
	if err != nil {
		return nil, 0, err.(*requestError)
	}
	if e := s.acquire(r); e != nil {
		return nil, 0, e
	}
	defer func() { <-s.slots }()
	out = append(out, `{"columns":`...)
	names, _ := json.Marshal(st.schema.rowNames)
	out = append(out, names...)
	out = append(out, `,"rows":[`...)
	key := flows.NewKey(req.seed)
	for lo := 0; lo < req.n; lo += sampleBlock {
		hi := min(lo+sampleBlock, req.n)
		var c *mat.Dense
		if req.ctx != nil {
			if rows, _ := req.ctx.Dims(); rows == req.n {
				c = req.ctx.Slice(lo, hi, 0, st.schema.cdim).(*mat.Dense)
			} else { // one context for every row
				c = req.ctx.Slice(0, hi-lo, 0, st.schema.cdim).(*mat.Dense)
			}
		}
		// As flows sample draws a block: the levels, then the numbers.
		x, levels := st.ev.SampleMixed(key.Fold(uint64(lo/sampleBlock)), hi-lo, c)
		if lo > 0 {
			out = append(out, ',')
		}
		out = appendMixedRows(out, x, levels, st.schema.ncat())
	}
	return append(out, "]}\n"...), req.n, nil
}
