package main

// The load generator of flows serve: a fixed number of clients, each with
// its own kept-alive connection, send one request after another for a
// while; latencies are kept (bounded) and their percentiles taken.
//
// TestServeLoad measures the table of BENCHMARKS.md when FLOWS_SERVE_LOAD
// is set (it takes about two minutes):
//
//	FLOWS_SERVE_LOAD=1 go test ./cmd/flows -run TestServeLoad -v -timeout 30m
//
// FLOWS_SERVE_LOAD_DURATION, _REPEATS, _CASES ("1x16,1000x256": rows x
// clients), _FLAGS (of flows serve), _OUT (a file for the table) and _BIN
// (a flows binary that fits and serves the model instead of the test's
// own build: scripts/serve-load.sh runs this generator against two
// revisions) change what it measures.
//
// TestLoadGenerator runs it briefly, to keep it working.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
)

// loadResult is what one load run measured.
type loadResult struct {
	clients, rows int
	requests      int // answered with 200 after the warm-up
	failures      int // answered otherwise, or not at all
	elapsed       time.Duration
	p50, p99, max time.Duration
}

// rowsPerSec is the rows scored per second.
func (r loadResult) rowsPerSec() float64 {
	return float64(r.requests*r.rows) / r.elapsed.Seconds()
}

// maxLatencies bounds the latencies one client keeps.
const maxLatencies = 1 << 20

// runLoad sends body to url from clients clients, one request after
// another each, for warm then dur, and measures the requests that end
// within dur after warm: so the rate is that of the steady state even when
// a request takes longer than the window, and requests still in flight at
// the end are cancelled, not waited for.
func runLoad(url string, body []byte, rows, clients int, warm, dur time.Duration) loadResult {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Minute}
	start := time.Now()
	from, until := start.Add(warm), start.Add(warm+dur)
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	lats := make([][]time.Duration, clients)
	fails := make([]int, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				ok := err == nil
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = err == nil && resp.StatusCode == 200
				}
				end := time.Now()
				if end.Before(from) || end.After(until) || ctx.Err() != nil {
					continue // in the warm-up, or cut off at the end
				}
				if !ok {
					fails[c]++
				} else if len(lats[c]) < maxLatencies {
					lats[c] = append(lats[c], end.Sub(t0))
				}
			}
		}()
	}
	wg.Wait()
	var all []time.Duration
	r := loadResult{clients: clients, rows: rows, elapsed: dur}
	for c := range clients {
		all = append(all, lats[c]...)
		r.failures += fails[c]
	}
	r.requests = len(all)
	if len(all) > 0 {
		slices.Sort(all)
		q := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
		r.p50, r.p99, r.max = q(0.5), q(0.99), all[len(all)-1]
	}
	return r
}

// loadBody is a JSON score request of n rows of the table x, cycling.
func loadBody(x *mat.Dense, n int) []byte {
	rows, _ := x.Dims()
	var b strings.Builder
	b.WriteString(`{"rows":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for j, v := range x.RawRowView(i % rows) {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		b.WriteByte(']')
	}
	b.WriteString("]}")
	return []byte(b.String())
}

// loadData returns n rows of 8 dependent columns, each value rounded to 5
// decimals (as writeLoadData writes them).
func loadData(n int) *mat.Dense {
	rng := rand.New(rand.NewPCG(11, 12))
	x := mat.NewDense(n, 8, nil)
	z := make([]float64, 8)
	for i := range n {
		for j := range z {
			z[j] = rng.NormFloat64()
		}
		row := []float64{z[0], 0.5*z[0]*z[0] + 0.3*z[1], z[2] + z[0], z[3] * (1 + 0.5*z[0]), z[4], 2*z[5] + 10, z[6] - z[1], z[7]}
		for j, v := range row {
			r, _ := strconv.ParseFloat(fmt.Sprintf("%.5f", v), 64)
			x.Set(i, j, r)
		}
	}
	return x
}

// writeLoadData writes n rows of 8 dependent columns (loadData's) with a
// header.
func writeLoadData(t *testing.T, path string, n int) {
	t.Helper()
	x := loadData(n)
	var b strings.Builder
	b.WriteString("a,b,c,d,e,f,g,h\n")
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if j > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%.5f", v)
		}
		b.WriteByte('\n')
	}
	writeFile(t, path, b.String())
}

// libraryRate measures the library's own scoring of the 1000-row batch x
// by g goroutines for dur: rows per second.
func libraryRate(m *model.Model, x *mat.Dense, g int, dur time.Duration) float64 {
	rows, _ := x.Dims()
	var mu sync.Mutex
	total := 0
	var wg sync.WaitGroup
	start := time.Now()
	for range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for time.Since(start) < dur {
				m.LogPDF(x, nil)
				n += rows
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return float64(total) / time.Since(start).Seconds()
}

// procStatus returns a field of /proc/pid/status in kB (VmRSS, VmHWM).
func procStatus(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return -1
}

// cpuSeconds returns the CPU time (user and system) a process has used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	// The fields after the command's name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return math.NaN()
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // clock ticks of 1/100 s (USER_HZ on Linux)
}

// loadAverage returns the first line of /proc/loadavg.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// TestLoadGenerator runs the load generator briefly against a server.
func TestLoadGenerator(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	p := startServer(t, dir, "model.flow")
	x := mat.NewDense(2, 2, []float64{0.5, 1, 2, -1})
	r := runLoad(p.url+"/v1/score", loadBody(x, 3), 3, 2, 50*time.Millisecond, 200*time.Millisecond)
	if r.requests == 0 || r.failures != 0 || !(r.p50 > 0 && r.p50 <= r.p99 && r.p99 <= r.max) || r.rowsPerSec() <= 0 {
		t.Errorf("%+v", r)
	}
	bad := runLoad(p.url+"/v1/nope", []byte(`{}`), 1, 1, 0, 50*time.Millisecond)
	if bad.requests != 0 || bad.failures == 0 {
		t.Errorf("failures are not counted: %+v", bad)
	}
}

// TestServeLoad measures the server under load on loopback (see the top of
// this file): rows/s and p50/p99 latency for 1-row and 1000-row requests
// at 1, 16 and 256 clients, each the median of repeats, beside the
// library's own scoring rate, and the server's memory.
func TestServeLoad(t *testing.T) {
	if os.Getenv("FLOWS_SERVE_LOAD") == "" {
		t.Skip("set FLOWS_SERVE_LOAD=1 to measure the server under load")
	}
	dur, repeats := 5*time.Second, 3
	if v, err := time.ParseDuration(os.Getenv("FLOWS_SERVE_LOAD_DURATION")); err == nil {
		dur = v
	}
	if v, err := strconv.Atoi(os.Getenv("FLOWS_SERVE_LOAD_REPEATS")); err == nil && v > 0 {
		repeats = v
	}
	if bin := os.Getenv("FLOWS_SERVE_LOAD_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer func(own string) { flowsBin = own }(flowsBin)
		flowsBin = abs // fits and serves the model below
	}
	dir := t.TempDir()
	writeLoadData(t, filepath.Join(dir, "d8.csv"), 4000)
	// A 5-layer MAF (hidden 64, 64) on 8 columns; two epochs suffice for
	// timing.
	mustRun(t, dir, "fit", "d8.csv", "-o", "m8.flow", "--kind", "maf", "--layers", "5", "--epochs", "2", "--quiet")
	m, err := model.Load(filepath.Join(dir, "m8.flow"))
	if err != nil {
		t.Fatal(err)
	}
	tab := readCSV(t, readText(t, filepath.Join(dir, "d8.csv")))
	x := mat.NewDense(1000, 8, nil)
	for i := range 1000 {
		for j := range 8 {
			v, _ := strconv.ParseFloat(tab[i+1][j], 64)
			x.Set(i, j, v)
		}
	}

	var out strings.Builder
	fmt.Fprintf(&out, "machine: %d CPUs (GOMAXPROCS %d), %s; load average before: %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), loadAverage())
	var lib1, lib2 []float64
	for range repeats {
		lib1 = append(lib1, libraryRate(m, x, 1, dur))
		lib2 = append(lib2, libraryRate(m, x, 2, dur))
	}
	lib := max(median(lib1), median(lib2))
	fmt.Fprintf(&out, "library: m.LogPDF of 1000 rows: %.0f rows/s on 1 goroutine, %.0f on 2 (medians of %d runs of %v)\n",
		median(lib1), median(lib2), repeats, dur)

	p := startServer(t, dir, append([]string{"m8.flow"}, strings.Fields(os.Getenv("FLOWS_SERVE_LOAD_FLAGS"))...)...)
	pid := p.cmd.Process.Pid
	fmt.Fprintf(&out, "server: flows serve m8.flow (--workers %d, --queue 256), RSS after start %d KiB\n", runtime.GOMAXPROCS(0), procStatus(pid, "VmRSS"))
	fmt.Fprintf(&out, "\n| rows/request | clients | requests/s | rows/s | p50 | p99 | max | failed | server CPU/request | server cores | server RSS after |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	only := os.Getenv("FLOWS_SERVE_LOAD_CASES") // e.g. "1x16,1000x256"; default all
	for _, rows := range []int{1, 1000} {
		body := loadBody(x, rows)
		for _, clients := range []int{1, 16, 256} {
			if only != "" && !slices.Contains(strings.Split(only, ","), fmt.Sprintf("%dx%d", rows, clients)) {
				continue
			}
			// A request waits for the rows of the others ahead of it: warm
			// up for about that long, and measure over at least twice it.
			backlog := time.Duration(float64(rows*clients) / 25000 * float64(time.Second))
			var rates, p50s, p99s, maxs, cpus, cores []float64
			failed := 0
			for range repeats {
				cpu0, t0 := cpuSeconds(pid), time.Now()
				r := runLoad(p.url+"/v1/score", body, rows, clients, time.Second+backlog, max(dur, 2*backlog))
				cpu := cpuSeconds(pid) - cpu0
				wall := time.Since(t0).Seconds()
				// CPU per request over the whole run, warm-up included:
				// the requests of the run, at the window's rate.
				cpus = append(cpus, cpu/(float64(r.requests)/r.elapsed.Seconds()*wall))
				cores = append(cores, cpu/wall)
				rates = append(rates, r.rowsPerSec())
				p50s = append(p50s, r.p50.Seconds())
				p99s = append(p99s, r.p99.Seconds())
				maxs = append(maxs, r.max.Seconds())
				failed += r.failures
			}
			rate := median(rates)
			fmt.Fprintf(&out, "| %d | %d | %.0f | %.0f | %s | %s | %s | %d | %s | %.2f | %d KiB |\n", rows, clients, rate/float64(rows), rate,
				secs(median(p50s)), secs(median(p99s)), secs(median(maxs)), failed, secs(median(cpus)), median(cores), procStatus(pid, "VmRSS"))
			if rows == 1000 && clients == 16 {
				fmt.Fprintf(&out, "\n(1000-row requests at 16 clients: %.0f%% of the library's %.0f rows/s)\n\n", 100*rate/lib, lib)
			}
		}
	}
	fams := checkPrometheus(t, string(do(t, "GET", p.url+"/metrics", "", nil).body))
	fmt.Fprintf(&out, "\nserver peak RSS (VmHWM) %d KiB; %v score calls for %v rows; load average after: %s\n", procStatus(pid, "VmHWM"),
		fams.value("flows_score_batches_total"), fams.value("flows_score_batch_rows_total"), loadAverage())
	t.Log("\n" + out.String())
	if path := os.Getenv("FLOWS_SERVE_LOAD_OUT"); path != "" {
		os.WriteFile(path, []byte(out.String()), 0o644)
	}
}

// secs formats seconds as µs or ms.
func secs(s float64) string {
	if s < 1e-3 {
		return fmt.Sprintf("%.0f µs", s*1e6)
	}
	return fmt.Sprintf("%.2f ms", s*1e3)
}
