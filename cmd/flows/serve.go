package main

import (
	"flag"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// serveFlags are the flags of flows serve.
type serveFlags struct {
	addr            string
	data            string
	maxBody         byteSize
	budget          byteSize
	maxRows         int
	maxSample       int
	workers         int
	queue           int
	queueWait       time.Duration
	readTimeout     time.Duration
	writeTimeout    time.Duration
	idleTimeout     time.Duration
	shutdownTimeout time.Duration
	minBodyRate     byteSize
	bodyGrace       time.Duration
	logFormat       string
	logLevel        string
	accessLog       bool
	reloadSchema    bool
	gcMinHeap       heapSize
}

var serveCommand = &command{
	name:  "serve",
	args:  "model.flow",
	short: "serve a model over HTTP: log densities, samples, a model card, metrics",
	long: `Serve loads a model file and answers HTTP requests on --addr (loopback by
default) until SIGTERM or SIGINT:

  POST /v1/score   the log density of each row, in nats, in the data's units:
                   {"log_density": [...]}, with "latent": [[...], ...] (the
                   rows mapped to the latent space, where the prior is the
                   standard normal) when asked. The rows come as JSON
                   (Content-Type: application/json, or none),
                     {"rows": [[1.5, 2], [3, 4]], "latent": true}
                     {"rows": [{"x": 1.5, "y": 2}, {"x": 3, "y": 4}]}
                   arrays in the model's column order or objects keyed by
                   its column names (x0, x1, ... and c0, c1, ... for a model
                   without names); a conditional model takes "context":
                   [[...], ...], one row per row, or its context columns by
                   name in object rows. Or as CSV with a header
                   (Content-Type: text/csv), whose columns are found by
                   name as flows score finds them, others ignored.
                   ?latent=true asks for the latent coordinates too. The log
                   densities equal flows score's, bit for bit; a value JSON
                   cannot hold is written as the string "NaN", "+Inf" or
                   "-Inf".
                   A model of a mixed table (fitted with categorical
                   columns) takes each row's levels as JSON strings: after
                   the numbers in an array row, in the order GET /v1/model
                   lists its "categories" (with their levels), or by name in
                   an object row,
                     {"rows": [[5.1, 3.5, 1.4, 0.2, "setosa"]]}
                   or as text in CSV; its log densities are in nats of the
                   numbers' units plus the categories' log probability. A
                   level the training rows did not have is an error
                   (unknown_level) naming the row, the column and the level.
  POST /v1/sample  {"n": 100, "seed": 7} draws n rows (at most --max-sample):
                   {"columns": [...], "rows": [[...], ...]}, the rows of
                   flows sample -n 100 --seed 7, bit for bit (a mixed
                   table's levels as strings, after the numbers, as
                   "columns" names them). A conditional
                   model takes "context": [...] (one for every row) or
                   "contexts": [[...], ...] (one row drawn per context row).
  GET /v1/model    the model: kind, columns, categorical columns and their
                   levels, configuration, standardisation, parameters, file
                   and SHA-256, as JSON.
  GET /            the model card: columns, configuration and the corner plot
                   that flows plot draws (/corner.png), as HTML.
  GET /healthz     200 while the process runs.
  GET /readyz      200 while it takes requests; 503 once it is shutting down.
  GET /metrics     Prometheus text format: requests by endpoint and status,
                   rows, a latency histogram per endpoint, errors by kind,
                   queue, reloads, memory.

Bad input is answered with a 4xx status and a JSON error that says what is
wrong and where: {"error": {"status": 400, "kind": "not_finite", "message":
"...", "row": 3, "column": "y", "index": 1}} (index: the value's place in
the row as sent; line: the CSV line; offset: the JSON byte offset). The
kinds: bad_json, bad_csv, bad_request, not_a_number, not_finite,
wrong_width, unknown_column, missing_column, no_rows, no_context,
not_a_level, unknown_level, 413
too_many_rows and body_too_large, 415 unsupported_media_type, 405
method_not_allowed, 404 not_found, 408 too_slow, 503 overloaded (with Retry-After) and
shutting_down.

At most --workers score and sample requests compute at once; up to
--queue more wait, each at most --queue-wait, and beyond that a request gets
503 with Retry-After: 1. The score requests waiting when a worker frees are
scored together, up to 4096 rows in one call to the model, whose cost per
call is then paid once: each answer is the same as alone, bit for bit.
Request bodies held at once are bounded by --body-budget, so memory stays
bounded under any load; a body is charged as it arrives (64 KiB, or its
Content-Length when smaller, at first; doubled each time it fills its
charge). Requests are read, written and kept idle within the timeouts.

The garbage collector does not run until the heap reaches --gc-min-heap
(64 MiB by default; GOGC's pacing above it, and GOMEMLIMIT, when set,
still caps it): each collection delays the requests in flight, and a
server of small requests, whose live heap is a few MB, would otherwise
collect every thousand requests or so.

Slow clients cannot lock others out: after --body-grace from its headers a
body must keep up --min-body-rate bytes a second on average, or it is cut
with 408 too_slow; and while more than half of the places (--workers plus
--queue) are held by requests whose bodies are still arriving, a request
that finds no place takes the place of the one furthest behind
--min-body-rate, which is cut with 408 too_slow. Requests computing or
waiting for a worker, and bodies that keep the rate, are never cut.

SIGHUP reloads the model file: the new model is loaded, prepared for
scoring (what depends on its parameters alone is computed once, at load),
checked (its checksum, and finite log densities of samples drawn from it)
and only then swapped in, atomically; requests in flight finish on the old one. A file
that fails leaves the old model serving, and the error is logged. A model
of another kind, or with other columns, context columns (by count or
name) or categorical columns (by name or levels), is refused the same way, logged at level warn and counted as
flows_model_reloads_total{result="refused"}, unless
--reload-allow-schema-change (then it is swapped in, logged at level warn
and counted in flows_model_schema_changes_total). SIGTERM
and SIGINT stop taking connections and wait up to --shutdown-timeout for the
requests in flight. Logs are structured (log/slog), as JSON, or as text on
a terminal.

--data draws the data file's rows into the card's corner plot, as flows plot
model.flow data.csv would; a reload reads it again.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &serveFlags{maxBody: 8 << 20, budget: 256 << 20, minBodyRate: 8 << 10, gcMinHeap: heapSize{64 << 20}}
		fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "the `host:port` to listen on (port 0: any free port, logged)")
		fs.StringVar(&f.data, "data", "", "a CSV `file` whose rows the model card's corner plot shows")
		fs.Var(&f.maxBody, "max-body", "the largest request body, in `bytes` (or with KiB, MiB, GiB)")
		fs.Var(&f.budget, "body-budget", "the most `bytes` of request bodies held at once")
		fs.IntVar(&f.maxRows, "max-rows", 100000, "the most rows one score request may hold")
		fs.IntVar(&f.maxSample, "max-sample", 10000, "the most rows one sample request may draw")
		fs.IntVar(&f.workers, "workers", 0, "score and sample requests computed at once (default GOMAXPROCS, the CPUs\nGo uses)")
		fs.IntVar(&f.queue, "queue", 256, "score and sample requests that may wait for a worker")
		fs.DurationVar(&f.queueWait, "queue-wait", 10*time.Second, "the longest a request waits for a worker before a 503")
		fs.DurationVar(&f.readTimeout, "read-timeout", 30*time.Second, "the longest a request (headers and body) may take to arrive")
		fs.DurationVar(&f.writeTimeout, "write-timeout", 60*time.Second, "the longest from a request's headers to the end of its answer")
		fs.Var(&f.minBodyRate, "min-body-rate", "the least `bytes` a second a request body must arrive at, after --body-grace")
		fs.DurationVar(&f.bodyGrace, "body-grace", 5*time.Second, "the time after a request's headers before --min-body-rate applies")
		fs.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "the longest a kept-alive connection waits for its next request")
		fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "the longest SIGTERM waits for requests in flight")
		fs.StringVar(&f.logFormat, "log-format", "", "the logs' `format`: json or text (default text on a terminal, else json)")
		fs.StringVar(&f.logLevel, "log-level", "info", "the least `level` logged: debug (every bad request too), info, warn, error")
		fs.BoolVar(&f.accessLog, "access-log", false, "log every request at level info")
		fs.BoolVar(&f.reloadSchema, "reload-allow-schema-change", false, "let SIGHUP swap in a model of another kind or other columns")
		fs.Var(&f.gcMinHeap, "gc-min-heap", "the heap, in `bytes`, below which the garbage collector does not run (0: as GOGC\nalone decides); above it, GOGC's pacing")
		return func(e *env, args []string) error { return f.run(e, args[0]) }
	},
}

// byteSize is a flag of a number of bytes, with an optional unit: 1048576,
// 1MiB, 512KiB, 1GiB.
type byteSize int64

func (b *byteSize) String() string {
	if b == nil {
		return ""
	}
	v := int64(*b)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.size && v%u.size == 0 {
			return strconv.FormatInt(v/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	num, mult := s, int64(1)
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if n, ok := strings.CutSuffix(s, u.name); ok {
			num, mult = n, u.size
			break
		}
	}
	v, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || v < 1 || v > math.MaxInt64/mult {
		return fmt.Errorf("%q is not a positive size in bytes (such as 1048576, 512KiB or 8MiB)", s)
	}
	*b = byteSize(v * mult)
	return nil
}

// heapSize is a byteSize flag that may also be 0.
type heapSize struct{ byteSize }

func (h *heapSize) Set(s string) error {
	if strings.TrimSpace(s) == "0" {
		h.byteSize = 0
		return nil
	}
	return h.byteSize.Set(s)
}

// check returns a usage error for flags that cannot work.
func (f *serveFlags) check() error {
	if f.workers == 0 {
		f.workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case f.maxRows < 1:
		return usagef("serve", "--max-rows %d: want at least 1", f.maxRows)
	case f.maxSample < 1:
		return usagef("serve", "--max-sample %d: want at least 1", f.maxSample)
	case f.workers < 0:
		return usagef("serve", "--workers %d: want at least 1 (or 0 for GOMAXPROCS)", f.workers)
	case f.queue < 0:
		return usagef("serve", "--queue %d: want 0 or more", f.queue)
	case f.budget < f.maxBody:
		return usagef("serve", "--body-budget %v is less than --max-body %v: a largest body would never fit", &f.budget, &f.maxBody)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"queue-wait", f.queueWait}, {"read-timeout", f.readTimeout}, {"write-timeout", f.writeTimeout}, {"idle-timeout", f.idleTimeout}, {"shutdown-timeout", f.shutdownTimeout}, {"body-grace", f.bodyGrace}} {
		if d.v <= 0 {
			return usagef("serve", "--%s %v: want a positive duration, such as 10s", d.name, d.v)
		}
	}
	return nil
}

// logger returns the structured logger the flags ask for, on w.
func (f *serveFlags) logger(e *env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usagef("serve", "--log-level %q: want debug, info, warn or error", f.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch f.logFormat {
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "":
		if e.stderrTTY {
			return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, usagef("serve", "--log-format %q: want json or text", f.logFormat)
}
