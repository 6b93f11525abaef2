package main

// The metrics of flows serve, written by hand in the Prometheus text format
// (version 0.0.4): counters and gauges of atomics, and a latency histogram
// per endpoint with fixed buckets.

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The endpoints, as the metrics label them.
var endpoints = []string{"score", "sample", "model", "card", "corner", "healthz", "readyz", "metrics", "other"}

// latencyBuckets are the upper bounds of the latency histogram, in seconds.
var latencyBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// histogram is a latency histogram: a count per bucket (not cumulative;
// the last counts the rest) and the sum in nanoseconds. Its count is the
// buckets' total, so that a scrape during an observation still shows the
// +Inf bucket equal to the count, as the format requires.
type histogram struct {
	counts []atomic.Uint64
	sumNs  atomic.Uint64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]atomic.Uint64, len(latencyBuckets)+1)}
}

// observe adds one latency.
func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	b, _ := slices.BinarySearch(latencyBuckets, s) // the first bound ≥ s
	h.counts[b].Add(1)
	h.sumNs.Add(uint64(max(d, 0)))
}

// metricsSet holds the server's metrics.
type metricsSet struct {
	requests sync.Map // requestKey → *atomic.Uint64
	latency  map[string]*histogram
	rows     map[string]*atomic.Uint64 // rows scored, rows sampled
	errors   map[string]*atomic.Uint64 // by kind
	reloads  map[string]*atomic.Uint64 // "ok", "error", "refused"
	slow     map[string]*atomic.Uint64 // bodies cut: "cut" (behind the pace), "evicted" (place taken)

	batches     atomic.Uint64 // calls to the model for score requests
	batchedRows atomic.Uint64 // the rows of those calls

	schemaChanges atomic.Uint64 // reloads that swapped in another schema

	inflight atomic.Int64 // admitted requests: computing or waiting
	queued   atomic.Int64 // admitted requests waiting for a worker
	started  time.Time
}

// requestKey labels a request counter.
type requestKey struct {
	endpoint string
	code     int
}

func newMetrics() *metricsSet {
	m := &metricsSet{latency: map[string]*histogram{}, rows: map[string]*atomic.Uint64{},
		errors: map[string]*atomic.Uint64{}, reloads: map[string]*atomic.Uint64{},
		slow: map[string]*atomic.Uint64{"cut": new(atomic.Uint64), "evicted": new(atomic.Uint64)}, started: time.Now()}
	for _, e := range endpoints {
		m.latency[e] = newHistogram()
	}
	for _, e := range []string{"score", "sample"} {
		m.rows[e] = new(atomic.Uint64)
	}
	for _, k := range errorKinds {
		m.errors[k] = new(atomic.Uint64)
	}
	for _, r := range []string{"ok", "error", "refused"} {
		m.reloads[r] = new(atomic.Uint64)
	}
	return m
}

// request counts a finished request.
func (m *metricsSet) request(endpoint string, code int, d time.Duration) {
	k := requestKey{endpoint, code}
	c, ok := m.requests.Load(k)
	if !ok {
		c, _ = m.requests.LoadOrStore(k, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
	m.latency[endpoint].observe(d)
}

// model describes the model served, for the info metric.
type modelInfo struct {
	kind, file, sha256 string
	loaded             time.Time
	params             int
}

// write writes every metric in the Prometheus text format.
func (m *metricsSet) write(w io.Writer, info modelInfo, workers, queue int) error {
	p := &promText{}
	head, sample, label := p.head, p.sample, promLabels

	head("flows_http_requests_total", "counter", "HTTP requests answered, by endpoint and status code.")
	var keys []requestKey
	m.requests.Range(func(k, _ any) bool { keys = append(keys, k.(requestKey)); return true })
	slices.SortFunc(keys, func(a, b requestKey) int {
		if a.endpoint != b.endpoint {
			return slices.Index(endpoints, a.endpoint) - slices.Index(endpoints, b.endpoint)
		}
		return a.code - b.code
	})
	for _, k := range keys {
		c, _ := m.requests.Load(k)
		sample("flows_http_requests_total", label("endpoint", k.endpoint, "code", strconv.Itoa(k.code)), float64(c.(*atomic.Uint64).Load()))
	}

	head("flows_http_request_duration_seconds", "histogram", "Time from a request's arrival at its handler to the end of its answer, by endpoint.")
	for _, e := range endpoints {
		h := m.latency[e]
		cum := uint64(0)
		for i, bound := range latencyBuckets {
			cum += h.counts[i].Load()
			sample("flows_http_request_duration_seconds_bucket", label("endpoint", e, "le", strconv.FormatFloat(bound, 'g', -1, 64)), float64(cum))
		}
		cum += h.counts[len(latencyBuckets)].Load()
		sample("flows_http_request_duration_seconds_bucket", label("endpoint", e, "le", "+Inf"), float64(cum))
		sample("flows_http_request_duration_seconds_sum", label("endpoint", e), float64(h.sumNs.Load())/1e9)
		sample("flows_http_request_duration_seconds_count", label("endpoint", e), float64(cum))
	}

	head("flows_rows_total", "counter", "Rows scored (score) and drawn (sample) in successful requests.")
	for _, e := range []string{"score", "sample"} {
		sample("flows_rows_total", label("endpoint", e), float64(m.rows[e].Load()))
	}

	head("flows_score_batches_total", "counter", "Calls to the model that scored the rows of one or more waiting score requests.")
	sample("flows_score_batches_total", "", float64(m.batches.Load()))
	head("flows_score_batch_rows_total", "counter", "Rows scored in those calls: over flows_score_batches_total, the mean rows of a call.")
	sample("flows_score_batch_rows_total", "", float64(m.batchedRows.Load()))

	head("flows_request_errors_total", "counter", "Requests answered with an error, by kind (the kind field of the JSON error).")
	for _, k := range errorKinds {
		sample("flows_request_errors_total", label("kind", k), float64(m.errors[k].Load()))
	}

	m.writeState(p, info, workers, queue)
	_, err := w.Write(p.b)
	return err
}

// writeState writes the metrics of the admission, the model and the
// process.
func (m *metricsSet) writeState(p *promText, info modelInfo, workers, queue int) {
	head, sample, label := p.head, p.sample, promLabels
	head("flows_inflight_requests", "gauge", "Score and sample requests admitted: sending their bodies, computing or waiting for a worker.")
	sample("flows_inflight_requests", "", float64(m.inflight.Load()))
	head("flows_queued_requests", "gauge", "Score and sample requests waiting for a worker.")
	sample("flows_queued_requests", "", float64(m.queued.Load()))
	head("flows_workers", "gauge", "Score and sample requests computed at once (--workers).")
	sample("flows_workers", "", float64(workers))
	head("flows_queue_capacity", "gauge", "Requests that may wait for a worker before more get 503 (--queue).")
	sample("flows_queue_capacity", "", float64(queue))

	head("flows_slow_bodies_total", "counter", "Requests cut with 408 too_slow: cut (the body fell behind --min-body-rate) or evicted (its place given to a newcomer while slow bodies held more than half of the places).")
	for _, r := range []string{"cut", "evicted"} {
		sample("flows_slow_bodies_total", label("how", r), float64(m.slow[r].Load()))
	}
	head("flows_model_reloads_total", "counter", "Model reloads on SIGHUP, by result: ok (swapped in), error (the file failed; the old model kept) or refused (another schema; the old model kept).")
	for _, r := range []string{"ok", "error", "refused"} {
		sample("flows_model_reloads_total", label("result", r), float64(m.reloads[r].Load()))
	}
	head("flows_model_schema_changes_total", "counter", "Reloads that swapped in a model of another kind or other columns (--reload-allow-schema-change).")
	sample("flows_model_schema_changes_total", "", float64(m.schemaChanges.Load()))
	head("flows_model_info", "gauge", "The model served: its kind, file and SHA-256; the value is 1.")
	sample("flows_model_info", label("kind", info.kind, "file", info.file, "sha256", info.sha256), 1)
	head("flows_model_parameters", "gauge", "The number of parameters of the model served.")
	sample("flows_model_parameters", "", float64(info.params))
	head("flows_model_loaded_timestamp_seconds", "gauge", "When the model served was loaded, in seconds since the Unix epoch.")
	sample("flows_model_loaded_timestamp_seconds", "", float64(info.loaded.UnixNano())/1e9)

	head("process_start_time_seconds", "gauge", "When the process started, in seconds since the Unix epoch.")
	sample("process_start_time_seconds", "", float64(m.started.UnixNano())/1e9)
	if rss, ok := residentBytes(); ok {
		head("process_resident_memory_bytes", "gauge", "Resident memory of the process, in bytes.")
		sample("process_resident_memory_bytes", "", float64(rss))
	}
	rs := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	metrics.Read(rs)
	value := func(s metrics.Sample) float64 {
		if s.Value.Kind() == metrics.KindUint64 {
			return float64(s.Value.Uint64())
		}
		return 0
	}
	head("go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects.")
	sample("go_memstats_heap_alloc_bytes", "", value(rs[0]))
	head("go_memstats_sys_bytes", "gauge", "Bytes of memory obtained from the operating system by the Go runtime.")
	sample("go_memstats_sys_bytes", "", value(rs[1]))
	head("go_goroutines", "gauge", "Goroutines that exist.")
	sample("go_goroutines", "", value(rs[2]))
}

// promText is metrics in the Prometheus text format, being written.
type promText struct{ b []byte }

// head writes a family's HELP and TYPE lines.
func (p *promText) head(name, kind, help string) {
	p.b = append(p.b, "# HELP "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, help...)
	p.b = append(p.b, "\n# TYPE "...)
	p.b = append(p.b, name...)
	p.b = append(p.b, ' ')
	p.b = append(p.b, kind...)
	p.b = append(p.b, '\n')
}

// sample writes a sample with its labels (name="value" pairs, or "").
func (p *promText) sample(name, labels string, v float64) {
	p.b = append(p.b, name...)
	if labels != "" {
		p.b = append(p.b, '{')
		p.b = append(p.b, labels...)
		p.b = append(p.b, '}')
	}
	p.b = append(p.b, ' ')
	p.b = strconv.AppendFloat(p.b, v, 'g', -1, 64)
	p.b = append(p.b, '\n')
}

// promLabels returns the labels of name, value pairs, escaped.
func promLabels(pairs ...string) string {
	var l []byte
	for i := 0; i < len(pairs); i += 2 {
		if i > 0 {
			l = append(l, ',')
		}
		l = append(l, pairs[i]...)
		l = append(l, "=\""...)
		l = appendLabelValue(l, pairs[i+1])
		l = append(l, '"')
	}
	return string(l)
}

// appendLabelValue appends v escaped as a label value: backslash, double
// quote and line feed escaped.
func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			b = append(b, `\\`...)
		case '"':
			b = append(b, `\"`...)
		case '\n':
			b = append(b, `\n`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// residentBytes returns the process's resident memory (Linux only).
func residentBytes() (uint64, bool) {
	if runtime.GOOS != "linux" {
		return 0, false
	}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseUint(string(f[1]), 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * uint64(os.Getpagesize()), true
}
