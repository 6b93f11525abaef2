package main

// Admission that slow clients cannot starve. A score or sample request
// holds one of the --workers + --queue places from its headers to its
// answer, and bytes of --body-budget for its body. A client that sends its
// body slowly, or not at all, would hold both for as long as --read-timeout
// allows, and reconnect: 40 connections declaring 8 MiB bodies fill 256 MiB
// of budget, a few hundred with small bodies fill every place. Three rules
// keep such clients from locking others out:
//
//   - The budget is charged as the body arrives, not as declared: at first
//     min(declared length, firstCharge), then doubled (up to the declared
//     length, or --max-body) each time the bytes received reach the charge.
//     A client that declares 8 MiB and sends nothing holds 64 KiB. The body's
//     buffer grows the same way, so memory follows the bytes received.
//   - A body must keep pace: once --body-grace has passed since its headers,
//     it must have sent --min-body-rate bytes a second on average, counted
//     from the end of the grace (byte k is due by grace + k / rate). The read
//     deadline is moved after every read; a body that falls behind is cut
//     with 408 too_slow and its connection closed. --read-timeout still
//     bounds the whole body.
//   - While more than half of the places are held by requests whose bodies
//     are still arriving, a request that finds no place takes the place of
//     the one furthest behind --min-body-rate counted from its headers (no
//     grace), which is cut with 408 too_slow. Requests that are computing or
//     waiting for a worker are never cut, and bodies that keep the rate are
//     never cut; so slow senders can hold at most half of the places against
//     newcomers, however often they reconnect.
//
// What remains: a client that sends fast and then stalls holds the bytes it
// sent, up to --read-timeout; that costs it the bandwidth of the bytes, as
// any large upload does.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// firstCharge is the most bytes of --body-budget a request is charged
// before any of its body arrives.
const firstCharge = 64 << 10

// bodyReader is a request that holds a place, while its body arrives.
type bodyReader struct {
	start    time.Time
	rc       http.ResponseController // held, not pointed to: one allocation fewer a request
	received atomic.Int64
	reading  bool // in places.readers (under places.mu)
	evicted  atomic.Bool
}

// places tracks the requests that hold a place and still read their bodies;
// the count of places held is the in-flight gauge, changed under mu.
type places struct {
	mu      sync.Mutex
	readers []*bodyReader // oldest first
}

// pace is the minimum body rate, in bytes a second (0: no pace), and the
// grace after the headers before it applies.
func (s *server) pace() (rate float64, grace time.Duration) {
	return float64(s.f.minBodyRate), s.f.bodyGrace
}

// take gives rd a place: a free one, or the place of the reader furthest
// behind the rate when more than half of the places are held by readers.
// It reports false when there is neither.
func (s *server) takePlace(rd *bodyReader) bool {
	p := &s.places
	most := s.f.workers + s.f.queue
	p.mu.Lock()
	defer p.mu.Unlock()
	if s.metrics.inflight.Load() < int64(most) {
		s.metrics.inflight.Add(1)
		p.readers = append(p.readers, rd)
		rd.reading = true
		return true
	}
	rate, _ := s.pace()
	if len(p.readers) <= most-most/2 || rate <= 0 {
		return false
	}
	now := time.Now()
	worst, deficit := -1, 0.0
	for i, r := range p.readers {
		if d := rate*now.Sub(r.start).Seconds() - float64(r.received.Load()); d > deficit {
			worst, deficit = i, d
		}
	}
	if worst < 0 {
		return false
	}
	victim := p.readers[worst]
	p.readers = slices.Delete(p.readers, worst, worst+1)
	victim.reading = false
	victim.evicted.Store(true) // before the deadline: see readBody
	victim.rc.SetReadDeadline(now)
	s.metrics.slow["evicted"].Add(1)
	p.readers = append(p.readers, rd) // the victim's place is rd's now
	rd.reading = true
	return true
}

// doneReading takes rd off the readers once its body is read; it reports
// false when rd lost its place to a newcomer meanwhile.
func (s *server) doneReading(rd *bodyReader) bool {
	p := &s.places
	p.mu.Lock()
	defer p.mu.Unlock()
	if rd.reading {
		p.readers = slices.Delete(p.readers, slices.Index(p.readers, rd), slices.Index(p.readers, rd)+1)
		rd.reading = false
	}
	return !rd.evicted.Load()
}

// releasePlace frees rd's place, unless it was given to a newcomer.
func (s *server) releasePlace(rd *bodyReader) {
	s.doneReading(rd)
	p := &s.places
	p.mu.Lock()
	if !rd.evicted.Load() {
		s.metrics.inflight.Add(-1)
	}
	p.mu.Unlock()
}

// errBudget is readBody's error when --body-budget cannot cover more of
// the body.
var errBudget = errors.New("the body budget is spent")

// readBody reads the body into buf (grown as needed): exactly limit bytes
// when known, else to the end. It charges the budget as the bytes arrive
// (*charge is what it holds) and keeps the body to the pace.
func (s *server) readBody(rd *bodyReader, r io.Reader, buf []byte, limit int64, known bool, charge *int64) ([]byte, error) {
	buf = buf[:0]
	rate, grace := s.pace()
	readEnd := rd.start.Add(s.f.readTimeout)
	for {
		if known && int64(len(buf)) == limit {
			break
		}
		if int64(len(buf)) == *charge {
			more := min(limit, 2**charge) - *charge
			if more <= 0 {
				more = 1 // an unknown length at --max-body: the next read finds out
			}
			if !s.budget.take(more) {
				return buf[:0], errBudget
			}
			*charge += more
		}
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(*charge-int64(len(buf)), max(512, int64(len(buf))))))
		}
		if rate > 0 {
			due := rd.start.Add(grace + time.Duration(float64(len(buf))/rate*float64(time.Second)))
			if due.After(readEnd) {
				due = readEnd
			}
			rd.rc.SetReadDeadline(due)
			if rd.evicted.Load() { // the evicting deadline may have been overwritten
				return buf[:0], os.ErrDeadlineExceeded
			}
		}
		n, err := r.Read(buf[len(buf):min(int64(cap(buf)), *charge)])
		buf = buf[:len(buf)+n]
		rd.received.Add(int64(n))
		if err == io.EOF {
			if known && int64(len(buf)) < limit {
				return buf[:0], io.ErrUnexpectedEOF
			}
			break
		}
		if err != nil {
			return buf[:0], err
		}
	}
	if rate > 0 {
		rd.rc.SetReadDeadline(readEnd) // as the server set it, for its background read
	}
	return buf, nil
}

// isMaxBytes reports whether err is http.MaxBytesReader's: a function of
// its own, so that the target of errors.As is allocated only for an error.
func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// bodyError returns the answer to a body that could not be read (err), or
// whose reader lost its place meanwhile; nil when the body is whole.
func (s *server) bodyError(rd *bodyReader, err error) *requestError {
	held := s.doneReading(rd)
	switch {
	case !held:
		return &requestError{status: http.StatusRequestTimeout, kind: errTooSlow, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the body arrived slower than --min-body-rate %v a second while the places were full, and its place went to another request", &s.f.minBodyRate)}
	case err == nil:
		return nil
	case isMaxBytes(err):
		return &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooLarge, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the body is more than --max-body %v", &s.f.maxBody)}
	case errors.Is(err, errBudget):
		return &requestError{status: http.StatusServiceUnavailable, kind: errOverloaded, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the bodies of the requests in flight fill --body-budget %v; retry after a second", &s.f.budget)}
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.metrics.slow["cut"].Add(1)
		return &requestError{status: http.StatusRequestTimeout, kind: errTooSlow, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the body arrived slower than --min-body-rate %v a second after --body-grace %v, or not within --read-timeout %v",
				&s.f.minBodyRate, s.f.bodyGrace, s.f.readTimeout)}
	}
	return &requestError{status: http.StatusBadRequest, kind: errClientGone, row: -1, index: -1, offset: -1,
		msg: "reading the body: " + err.Error()}
}
