package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
)

// BenchmarkServeHTTP measures score requests through the whole server:
// net/http on loopback, admission, the body, decoding, batching, scoring
// and the answer, with --gc-min-heap's default and 0, for the model of TestServeLoad (a 5-layer MAF, hidden
// 64, 64, on 8 columns; its initial parameters, which cost what trained
// ones do). Its clients are raw TCP connections that write a fixed request
// (the headers Go's client sends) and read the answer into a kept buffer,
// so allocs/op and B/op are the server's own; cpu-ns/op is the process's
// CPU time per request (server and clients, all threads: on a shared
// machine it counts the work, not the waiting), and gc/1k-req the
// collections per thousand requests.
//
//	go test ./cmd/flows -run XXX -bench ServeHTTP -benchtime 20000x
func BenchmarkServeHTTP(b *testing.B) {
	path, x := benchModel(b, b.TempDir())
	for _, bc := range []struct {
		rows, clients int
		floor         int64
	}{{1, 1, 64 << 20}, {1, 16, 64 << 20}, {16, 1, 64 << 20}, {1, 1, 0}, {1, 16, 0}} {
		b.Run(fmt.Sprintf("rows=%d/clients=%d/gc-min-heap=%v", bc.rows, bc.clients, &heapSize{byteSize(bc.floor)}), func(b *testing.B) {
			benchServe(b, path, loadBody(x, bc.rows), bc.clients, bc.floor)
		})
	}
}

// benchServe serves the model at path on loopback, with flows serve's
// default flags but --gc-min-heap floor, and sends body b.N times from
// clients connections.
func benchServe(b *testing.B, path string, body []byte, clients int, floor int64) {
	conns := serveRaw(b, path, body, clients)
	defer startGCFloor(floor)()
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuSeconds(os.Getpid())
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i, c := range conns {
		n := b.N / clients
		if i < b.N%clients {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if err := c.do(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuSeconds(os.Getpid()) - cpu0
	runtime.ReadMemStats(&ms1)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(ms1.NumGC-ms0.NumGC)*1000/float64(b.N), "gc/1k-req")
}

// rawClient is a kept-alive connection that sends one fixed request and
// reads its answer, allocating nothing per request.
type rawClient struct {
	c    net.Conn
	r    *bufio.Reader
	req  []byte
	body []byte
}

func dialRaw(addr string, req []byte) (*rawClient, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &rawClient{c: c, r: bufio.NewReaderSize(c, 64<<10), req: req, body: make([]byte, 0, 64<<10)}, nil
}

// do sends the request and reads the answer, which must be a 200 with a
// Content-Length.
func (rc *rawClient) do() error {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	status, length := 0, -1
	for first := true; ; first = false {
		line, err := rc.r.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if first {
			if len(line) < 12 {
				return fmt.Errorf("status line %q", line)
			}
			status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
		} else if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length = 0
			for _, d := range v {
				length = 10*length + int(d-'0')
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("no Content-Length in the answer")
	}
	if cap(rc.body) < length {
		rc.body = make([]byte, length)
	}
	if _, err := io.ReadFull(rc.r, rc.body[:length]); err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("status %d: %s", status, rc.body[:length])
	}
	return nil
}

// benchModel writes the model of TestServeLoad (initial parameters) to a
// file in dir and returns its path and 1,000 rows of its data.
func benchModel(tb testing.TB, dir string) (string, *mat.Dense) {
	path := filepath.Join(dir, "m8.flow")
	x := loadData(1000)
	m, err := model.New(model.Config{Kind: model.KindMAF, Layers: 5, Hidden: []int{64, 64}, Columns: []string{"a", "b", "c", "d", "e", "f", "g", "h"}}, x, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := m.Save(path); err != nil {
		tb.Fatal(err)
	}
	return path, x
}

// serveRaw serves the model at path on loopback with flows serve's
// default flags (without --gc-min-heap: the caller sets the collector),
// until the test ends, and returns clients connections to it that send
// body to /v1/score, each used once.
func serveRaw(tb testing.TB, path string, body []byte, clients int) []*rawClient {
	s := newTestServer(tb, path, func(f *serveFlags) {
		// flows serve's defaults (see serveCommand).
		*f = serveFlags{maxBody: 8 << 20, budget: 256 << 20, minBodyRate: 8 << 10, maxRows: 100000, maxSample: 10000, queue: 256,
			queueWait: 10 * time.Second, readTimeout: 30 * time.Second, writeTimeout: 60 * time.Second, idleTimeout: 120 * time.Second,
			shutdownTimeout: 30 * time.Second, bodyGrace: 5 * time.Second}
		if err := f.check(); err != nil {
			tb.Fatal(err)
		}
	})
	f := s.f
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: f.readTimeout,
		WriteTimeout: f.writeTimeout, IdleTimeout: f.idleTimeout, MaxHeaderBytes: 64 << 10}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })

	req := fmt.Appendf(nil, "POST /v1/score HTTP/1.1\r\nHost: %s\r\nUser-Agent: Go-http-client/1.1\r\nContent-Length: %d\r\nContent-Type: application/json\r\n\r\n%s",
		ln.Addr(), len(body), body)
	conns := make([]*rawClient, clients)
	for i := range conns {
		if conns[i], err = dialRaw(ln.Addr().String(), req); err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { conns[i].c.Close() })
		if err := conns[i].do(); err != nil { // warm: the connection's buffers
			tb.Fatal(err)
		}
	}
	return conns
}
