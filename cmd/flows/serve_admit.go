package main

// Admission control: the places of --workers and --queue, the body budget,
// reading bodies, and waiting for a worker.

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// budget bounds the bytes of request bodies held at once.
type budget struct {
	mu         sync.Mutex
	used, most int64
}

// take reserves n bytes, or reports that they are not free.
func (b *budget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.most {
		return false
	}
	b.used += n
	return true
}

// give frees n bytes.
func (b *budget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// work is the computing part of a score or sample request: given the body,
// it appends the answer to out (an error leaves it as it was).
type work func(r *http.Request, st *modelState, body, out []byte) ([]byte, int, *requestError)

// compute runs a POST request through the admission, the body budget and
// a worker: it reads the body, waits for a worker, runs do, and writes the
// answer.
func (s *server) compute(w http.ResponseWriter, r *http.Request, st *modelState, do work) outcome {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return s.fail(w, &requestError{status: http.StatusMethodNotAllowed, kind: errMethod, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("%s takes POST, not %s", r.URL.Path, r.Method)})
	}
	overloaded := func(why string) outcome {
		return s.fail(w, &requestError{status: http.StatusServiceUnavailable, kind: errOverloaded, row: -1, index: -1, offset: -1,
			msg: why + "; retry after a second"})
	}
	if s.drain.Load() {
		return s.fail(w, &requestError{status: http.StatusServiceUnavailable, kind: errShuttingDown, msg: "shutting down", row: -1, index: -1, offset: -1})
	}
	rd := &bodyReader{start: time.Now(), rc: *http.NewResponseController(w)}
	if !s.takePlace(rd) {
		return overloaded(fmt.Sprintf("%d requests are computing, waiting or sending their bodies, the most --workers and --queue allow", s.f.workers+s.f.queue))
	}
	defer s.releasePlace(rd)

	maxBody := int64(s.f.maxBody)
	if r.ContentLength > maxBody {
		return s.fail(w, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooLarge, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the body is %d bytes, more than --max-body %v", r.ContentLength, &s.f.maxBody)})
	}
	limit := maxBody
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	charge := min(limit, firstCharge)
	if !s.budget.take(charge) {
		return overloaded(fmt.Sprintf("the bodies of the requests in flight fill --body-budget %v", &s.f.budget))
	}
	defer func() { s.budget.give(charge) }()

	bp := s.buffer(int(charge))
	defer s.release(bp)
	body, err := s.readBody(rd, http.MaxBytesReader(w, r.Body, maxBody), *bp, limit, r.ContentLength >= 0, &charge)
	*bp = body[:0]
	if rerr := s.bodyError(rd, err); rerr != nil {
		return s.fail(w, rerr)
	}

	op := s.buffer(64 + 24*len(body)/8)
	defer s.release(op)
	answer, rows, rerr := do(r, st, body, (*op)[:0])
	if rerr != nil {
		return s.fail(w, rerr)
	}
	*op = answer[:0]
	// As h.Set would set them (the keys are canonical), without a new
	// slice for each constant value.
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Content-Length"] = []string{strconv.Itoa(len(answer))}
	h["Cache-Control"] = headerNoStore
	w.WriteHeader(http.StatusOK)
	w.Write(answer)
	s.metrics.rows[strings.TrimPrefix(r.URL.Path, "/v1/")].Add(uint64(rows))
	return outcome{code: http.StatusOK, rows: rows}
}

// The values of constant headers of answers, shared: net/http copies a
// handler's headers before it writes them, and nothing changes them in
// place (Header.Set and Add replace or append).
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
)

// acquire waits for a worker, at most --queue-wait; the caller frees it
// with <-s.slots.
func (s *server) acquire(r *http.Request) *requestError {
	select {
	case s.slots <- struct{}{}:
		return nil
	default:
	}
	s.metrics.queued.Add(1)
	defer s.metrics.queued.Add(-1)
	t := time.NewTimer(s.f.queueWait)
	defer t.Stop()
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-t.C:
		return s.overloaded()
	case <-r.Context().Done():
		return clientGone()
	}
}

// overloaded is the error of a request that found no worker in time.
func (s *server) overloaded() *requestError {
	return &requestError{status: http.StatusServiceUnavailable, kind: errOverloaded, row: -1, index: -1, offset: -1,
		msg: fmt.Sprintf("no worker was free within --queue-wait %v; retry after a second", s.f.queueWait)}
}

// clientGone is the error of a request whose client left while it waited.
func clientGone() *requestError {
	return &requestError{status: http.StatusBadRequest, kind: errClientGone, row: -1, index: -1, offset: -1,
		msg: "the client left while the request waited for a worker"}
}
