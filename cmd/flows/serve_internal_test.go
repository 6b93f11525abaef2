package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/table"
)

// newTestServer returns a server of the model file at path with the flags'
// defaults, changed by set, without a listener.
func newTestServer(t testing.TB, path string, set func(f *serveFlags)) *server {
	t.Helper()
	f := &serveFlags{maxBody: 8 << 20, budget: 256 << 20, maxRows: 100, maxSample: 100, workers: 1, queue: 4,
		queueWait: time.Second, readTimeout: time.Second, writeTimeout: time.Second, idleTimeout: time.Second, shutdownTimeout: time.Second}
	if set != nil {
		set(f)
	}
	s := &server{path: path, f: f, log: slog.New(slog.NewTextHandler(io.Discard, nil)), metrics: newMetrics(), slots: make(chan struct{}, f.workers)}
	s.budget.most = int64(f.budget)
	st, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	s.state.Store(st)
	return s
}

// TestQueueWait: a request that waits longer than --queue-wait for a worker
// gets 503 with Retry-After, one whose client leaves while it waits is
// dropped, and neither stays counted as queued.
func TestQueueWait(t *testing.T) {
	dir := t.TempDir()
	s := newTestServer(t, fitTiny(t, dir), func(f *serveFlags) { f.queueWait = 50 * time.Millisecond })
	s.slots <- struct{}{} // the only worker is busy
	body := `{"rows":[[1,2]]}`
	req := httptest.NewRequest("POST", "/v1/score", strings.NewReader(body))
	w := httptest.NewRecorder()
	start := time.Now()
	s.ServeHTTP(w, req)
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || !strings.Contains(w.Body.String(), "no worker was free within --queue-wait 50ms") {
		t.Errorf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered after %v, before --queue-wait", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req = httptest.NewRequest("POST", "/v1/score", strings.NewReader(body)).WithContext(ctx)
	w = httptest.NewRecorder()
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	s.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), errClientGone) {
		t.Errorf("client gone: %d %s", w.Code, w.Body)
	}
	if s.metrics.queued.Load() != 0 || s.metrics.inflight.Load() != 0 {
		t.Errorf("queued %d, in flight %d after the answers", s.metrics.queued.Load(), s.metrics.inflight.Load())
	}
	<-s.slots
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("POST", "/v1/score", strings.NewReader(body)))
	if w.Code != 200 {
		t.Errorf("with the worker free: %d %s", w.Code, w.Body)
	}
}

// TestDraining: once shutting down, /readyz and new work get 503, and
// /healthz 200.
func TestDraining(t *testing.T) {
	s := newTestServer(t, fitTiny(t, t.TempDir()), nil)
	for path, want := range map[string]int{"/readyz": 200, "/healthz": 200} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want {
			t.Errorf("%s: %d", path, w.Code)
		}
	}
	s.drain.Store(true)
	for _, tc := range []struct {
		method, path string
		code         int
	}{{"GET", "/readyz", 503}, {"GET", "/healthz", 200}, {"POST", "/v1/score", 503}, {"POST", "/v1/sample", 503}} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(`{}`)))
		if w.Code != tc.code || (tc.code == 503 && !strings.Contains(w.Body.String(), errShuttingDown)) {
			t.Errorf("%s %s while draining: %d %s", tc.method, tc.path, w.Code, w.Body)
		}
	}
}

// TestPanicIsAnswered: a panic in a handler (a bug) is a 500 with a JSON
// error, logged, and the server goes on.
func TestPanicIsAnswered(t *testing.T) {
	s := newTestServer(t, fitTiny(t, t.TempDir()), nil)
	var logs strings.Builder
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	st := s.state.Load()
	st.corner = func() ([]byte, error) { panic("boom") }
	w := httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/corner.png", nil))
	if w.Code != 500 || !strings.Contains(w.Body.String(), `"kind":"internal"`) || !strings.Contains(logs.String(), "boom") {
		t.Errorf("%d %s\n%s", w.Code, w.Body, logs.String())
	}
	w = httptest.NewRecorder()
	s.ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	if w.Code != http.StatusOK {
		t.Errorf("after the panic: %d", w.Code)
	}
}

func TestByteSize(t *testing.T) {
	for s, want := range map[string]int64{"1024": 1024, "4KiB": 4096, "8MiB": 8 << 20, "2GiB": 2 << 30, "10B": 10} {
		var b byteSize
		if err := b.Set(s); err != nil || int64(b) != want {
			t.Errorf("%q: %d, %v", s, b, err)
		}
	}
	for _, s := range []string{"", "0", "-1", "1.5MiB", "8MB", "lots", "9999999999GiB"} {
		var b byteSize
		if err := b.Set(s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
	if b := byteSize(8 << 20); b.String() != "8MiB" {
		t.Errorf("%s", b.String())
	}
}

func TestLatentQuery(t *testing.T) {
	for q, want := range map[string]bool{"": false, "latent=true": true, "latent=1": true, "latent=false": false} {
		if got, err := latentQuery(q); err != nil || got != want {
			t.Errorf("%q: %v %v", q, got, err)
		}
	}
	for _, q := range []string{"latent=yes", "x=1", "latent=%zz"} {
		if _, err := latentQuery(q); err == nil {
			t.Errorf("%q: no error", q)
		}
	}
}

// BenchmarkServeScore runs score requests through the handler, without
// the network: decoding, scoring and encoding, beside the library's own
// LogPDF of the same rows.
func BenchmarkServeScore(b *testing.B) {
	dir := b.TempDir()
	writeLoadData(&testing.T{}, filepath.Join(dir, "d8.csv"), 2000)
	if out, err := exec.Command(flowsBin, "fit", filepath.Join(dir, "d8.csv"), "-o", filepath.Join(dir, "m8.flow"), "--epochs", "1", "--quiet").CombinedOutput(); err != nil {
		b.Fatalf("%v: %s", err, out)
	}
	s := newTestServer(&testing.T{}, filepath.Join(dir, "m8.flow"), func(f *serveFlags) { f.maxRows = 1000 })
	st := s.state.Load()
	tab, err := table.ReadFile(filepath.Join(dir, "d8.csv"), table.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int{1, 1000} {
		body := loadBody(tab.X, rows)
		x := tab.X.Slice(0, rows, 0, 8).(*mat.Dense)
		b.Run(fmt.Sprintf("rows=%d/handler", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, httptest.NewRequest("POST", "/v1/score", bytes.NewReader(body)))
				if w.Code != 200 {
					b.Fatal(w.Body)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
		b.Run(fmt.Sprintf("rows=%d/decode", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeScoreJSON(body, &st.schema); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("rows=%d/library", rows), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				st.m.LogPDF(x, nil)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestBatching: score requests that wait for a worker are scored in one
// call by the first to get one, and each gets the answer it gets alone,
// bit for bit; latent requests and others are batched apart.
func TestBatching(t *testing.T) {
	s := newTestServer(t, fitTiny(t, t.TempDir()), func(f *serveFlags) { f.queue = 64 })
	body := func(i int) string { return fmt.Sprintf(`{"rows":[[%d.25,%d],[-1,%d.5]]}`, i%7-3, i%5-2, i%3) }
	post := func(b string, latent bool) string {
		url := "/v1/score"
		if latent {
			url += "?latent=true"
		}
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest("POST", url, strings.NewReader(b)))
		if w.Code != 200 {
			t.Errorf("%s: %d %s", b, w.Code, w.Body)
		}
		return w.Body.String()
	}
	const k = 12
	alone := make([]string, k)
	for i := range k {
		alone[i] = post(body(i), i%4 == 0)
	}
	before := s.metrics.batches.Load()

	s.slots <- struct{}{} // the only worker is busy: the requests wait
	got := make([]string, k)
	done := make(chan int)
	for i := range k {
		go func() { got[i] = post(body(i), i%4 == 0); done <- i }()
	}
	for deadline := time.Now().Add(30 * time.Second); s.metrics.queued.Load() != k; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", s.metrics.queued.Load(), k)
		}
	}
	<-s.slots
	for range k {
		<-done
	}
	for i := range k {
		if got[i] != alone[i] && exactBits { // (OpenBLAS: the batch's size changes the last bits)
			t.Errorf("request %d batched: %s\nalone: %s", i, got[i], alone[i])
		}
	}
	// Two batches: the latent requests and the others.
	if n := s.metrics.batches.Load() - before; n != 2 {
		t.Errorf("%d calls for %d waiting requests of two kinds, want 2", n, k)
	}
	if s.metrics.queued.Load() != 0 || len(s.batch.waiting) != 0 {
		t.Errorf("queued %d, waiting %d after the answers", s.metrics.queued.Load(), len(s.batch.waiting))
	}
}
