package main

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestTakePlace: with the places full, a newcomer takes the place of the
// reader furthest behind the rate while readers hold more than half of
// them, never that of a reader keeping the rate or of a request past its
// body; an evicted reader's release frees nothing.
func TestTakePlace(t *testing.T) {
	s := newTestServer(t, fitTiny(t, t.TempDir()), func(f *serveFlags) {
		f.workers, f.queue, f.minBodyRate, f.bodyGrace = 2, 4, 1<<10, time.Second
	}) // 6 places, 3 protected
	reader := func(age time.Duration, received int64) *bodyReader {
		rd := &bodyReader{start: time.Now().Add(-age), rc: *http.NewResponseController(httptest.NewRecorder())}
		rd.received.Store(received)
		return rd
	}
	var held []*bodyReader
	for i, r := range []*bodyReader{
		reader(10*time.Second, 0),     // 10 KiB behind
		reader(20*time.Second, 1<<20), // ahead of the rate
		reader(30*time.Second, 0),     // 30 KiB behind: the worst
		reader(5*time.Second, 0),
		reader(time.Second, 0),
		reader(time.Second, 0),
	} {
		if !s.takePlace(r) {
			t.Fatalf("reader %d found no free place", i)
		}
		held = append(held, r)
	}
	a := reader(0, 0)
	if s.takePlace(a) != true || !held[2].evicted.Load() || s.metrics.inflight.Load() != 6 {
		t.Fatalf("the worst reader is not evicted: %v, in flight %d", held[2].evicted.Load(), s.metrics.inflight.Load())
	}
	if s.takePlace(reader(0, 0)) != true || !held[0].evicted.Load() {
		t.Fatal("the next worst reader is not evicted")
	}
	if s.doneReading(held[2]) || !s.doneReading(held[3]) || !s.doneReading(held[4]) {
		t.Error("doneReading does not report the evicted readers")
	}
	// Readers now: held[1], held[5] and the two newcomers: 4 > 3.
	if !s.takePlace(reader(0, 0)) || !held[5].evicted.Load() || held[1].evicted.Load() {
		t.Errorf("evicted: the reader keeping the rate %v, the one behind %v", held[1].evicted.Load(), held[5].evicted.Load())
	}
	// Readers: held[1], a and two newcomers; a's body is read: 3 readers
	// left, not more than half: no place.
	s.doneReading(a)
	if s.takePlace(reader(time.Hour, 0)) {
		t.Error("a newcomer took a place while readers held only half of them")
	}
	s.releasePlace(held[2])
	if s.metrics.inflight.Load() != 6 {
		t.Errorf("an evicted reader's release freed a place: %d", s.metrics.inflight.Load())
	}
	s.releasePlace(held[3])
	if s.metrics.inflight.Load() != 5 {
		t.Errorf("in flight %d after a release, want 5", s.metrics.inflight.Load())
	}
}

// TestTakePlaceConcurrent takes, reads and releases places from many
// goroutines (for the race detector): every place comes back.
func TestTakePlaceConcurrent(t *testing.T) {
	s := newTestServer(t, fitTiny(t, t.TempDir()), func(f *serveFlags) {
		f.workers, f.queue, f.minBodyRate, f.bodyGrace = 2, 6, 1<<10, time.Second
	})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				rd := &bodyReader{start: time.Now().Add(-time.Duration(g+i%7) * time.Second), rc: *http.NewResponseController(httptest.NewRecorder())}
				if s.takePlace(rd) {
					rd.received.Add(int64(i))
					s.doneReading(rd)
					s.releasePlace(rd)
				}
			}
		}()
	}
	wg.Wait()
	if n := s.metrics.inflight.Load(); n != 0 || len(s.places.readers) != 0 {
		t.Errorf("in flight %d, readers %d after every release", n, len(s.places.readers))
	}
}
