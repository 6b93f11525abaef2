package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/table"
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
	logFormat       string
	logLevel        string
	accessLog       bool
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
  POST /v1/sample  {"n": 100, "seed": 7} draws n rows (at most --max-sample):
                   {"columns": [...], "rows": [[...], ...]}, the rows of
                   flows sample -n 100 --seed 7, bit for bit. A conditional
                   model takes "context": [...] (one for every row) or
                   "contexts": [[...], ...] (one row drawn per context row).
  GET /v1/model    the model: kind, columns, configuration, standardisation,
                   parameters, file and SHA-256, as JSON.
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
wrong_width, unknown_column, missing_column, no_rows, no_context, 413
too_many_rows and body_too_large, 415 unsupported_media_type, 405
method_not_allowed, 404 not_found, 503 overloaded (with Retry-After) and
shutting_down.

At most --workers score and sample requests compute at once; up to
--queue more wait, each at most --queue-wait, and beyond that a request gets
503 with Retry-After: 1. The score requests waiting when a worker frees are
scored together, up to 4096 rows in one call to the model, whose cost per
call is then paid once: each answer is the same as alone, bit for bit. Request bodies held at once are bounded by
--body-budget (a body counts its Content-Length, or --max-body when it has
none), so memory stays bounded under any load. Requests are read, written
and kept idle within the timeouts.

SIGHUP reloads the model file: the new model is loaded, checked (its
checksum, and finite log densities of samples drawn from it) and only then
swapped in, atomically; requests in flight finish on the old one. A file
that fails leaves the old model serving, and the error is logged. SIGTERM
and SIGINT stop taking connections and wait up to --shutdown-timeout for the
requests in flight. Logs are structured (log/slog), as JSON, or as text on
a terminal.

--data draws the data file's rows into the card's corner plot, as flows plot
model.flow data.csv would; a reload reads it again.`,
	nArgs: [2]int{1, 1},
	flags: func(fs *flag.FlagSet) func(*env, []string) error {
		f := &serveFlags{maxBody: 8 << 20, budget: 256 << 20}
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
		fs.DurationVar(&f.idleTimeout, "idle-timeout", 120*time.Second, "the longest a kept-alive connection waits for its next request")
		fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "the longest SIGTERM waits for requests in flight")
		fs.StringVar(&f.logFormat, "log-format", "", "the logs' `format`: json or text (default text on a terminal, else json)")
		fs.StringVar(&f.logLevel, "log-level", "info", "the least `level` logged: debug (every bad request too), info, warn, error")
		fs.BoolVar(&f.accessLog, "access-log", false, "log every request at level info")
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
	}{{"queue-wait", f.queueWait}, {"read-timeout", f.readTimeout}, {"write-timeout", f.writeTimeout}, {"idle-timeout", f.idleTimeout}, {"shutdown-timeout", f.shutdownTimeout}} {
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

// server is the state of flows serve.
type server struct {
	path    string // the model file
	f       *serveFlags
	log     *slog.Logger
	metrics *metricsSet
	state   atomic.Pointer[modelState]
	slots   chan struct{} // a token per computing request
	budget  budget
	batch   batcher     // score requests waiting for a worker
	drain   atomic.Bool // shutting down
	bufs    sync.Pool   // *[]byte for bodies and answers up to poolMax
}

// poolMax is the largest buffer kept for reuse.
const poolMax = 1 << 20

// modelState is a loaded model with what the server says about it. It is
// replaced whole on reload, never changed.
type modelState struct {
	m        *model.Model
	schema   schema
	named    bool // the file records column names
	sha      string
	size     int64
	modTime  time.Time
	loaded   time.Time
	doc      []byte // the body of GET /v1/model
	data     *mat.Dense
	dataPath string
	corner   func() ([]byte, error) // the card's corner plot, drawn once, on first use
}

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

// run serves the model at path until a signal stops it.
func (f *serveFlags) run(e *env, path string) error {
	if err := f.check(); err != nil {
		return err
	}
	log, err := f.logger(e)
	if err != nil {
		return err
	}
	s := &server{path: path, f: f, log: log, metrics: newMetrics(), slots: make(chan struct{}, f.workers)}
	s.budget.most = int64(f.budget)
	st, err := s.load()
	if err != nil {
		return err
	}
	s.state.Store(st)

	// The command's signal handler exits at once, removing temporary
	// files; a server has none, and drains instead.
	signal.Reset(os.Interrupt, syscall.SIGTERM)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(stop)
	defer signal.Stop(hup)

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(f.readTimeout, 10*time.Second),
		ReadTimeout:       f.readTimeout,
		WriteTimeout:      f.writeTimeout,
		IdleTimeout:       f.idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	log.Info("listening", "addr", ln.Addr().String(), "model", path, "kind", string(st.m.Config.Kind),
		"columns", st.schema.dim, "context_columns", st.schema.cdim, "sha256", st.sha,
		"workers", f.workers, "queue", f.queue, "max_body", int64(f.maxBody), "max_rows", f.maxRows, "pid", os.Getpid())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	for {
		select {
		case err := <-served:
			return err // a listener error; ErrServerClosed only after Shutdown
		case <-hup:
			s.reload()
		case sig := <-stop:
			s.drain.Store(true)
			log.Info("shutting down: waiting for the requests in flight", "signal", sig.String(), "timeout", f.shutdownTimeout.String())
			ctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimeout)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				srv.Close()
				log.Error("requests still in flight at the shutdown timeout were cut off", "err", err)
				return fmt.Errorf("stopped on %v, cutting off requests still in flight after --shutdown-timeout %v", sig, f.shutdownTimeout)
			}
			log.Info("stopped", "signal", sig.String())
			return nil
		}
	}
}

// reload loads the model file again and, when it is good, serves it.
func (s *server) reload() {
	old := s.state.Load()
	st, err := s.load()
	if err != nil {
		s.metrics.reloads["error"].Add(1)
		s.log.Error("reload failed; still serving the old model", "model", s.path, "err", err, "sha256", old.sha)
		return
	}
	s.state.Store(st)
	s.metrics.reloads["ok"].Add(1)
	s.log.Info("reloaded", "model", s.path, "sha256", st.sha, "previous_sha256", old.sha, "kind", string(st.m.Config.Kind))
	if !slices.Equal(st.schema.names, old.schema.names) || !slices.Equal(st.schema.ctxNames, old.schema.ctxNames) {
		s.log.Warn("the reloaded model's columns differ from the old one's", "columns", st.schema.names,
			"previous_columns", old.schema.names, "context", st.schema.ctxNames, "previous_context", old.schema.ctxNames)
	}
}

// load reads, checks and describes the model file (and the --data file).
func (s *server) load() (*modelState, error) {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return nil, err
	}
	m, err := model.Read(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.path, strings.TrimPrefix(trimFlows(err).Error(), "model file: "))
	}
	if err := verify(m); err != nil {
		return nil, fmt.Errorf("%s: %v", s.path, err)
	}
	sum := sha256.Sum256(b)
	st := &modelState{m: m, sha: hex.EncodeToString(sum[:]), size: int64(len(b)), modTime: fi.ModTime(), loaded: time.Now(),
		named: len(m.Config.Columns) == m.Dim}
	st.schema = schema{names: modelNames(m), dim: m.Dim, cdim: m.ContextDim, maxRows: s.f.maxRows, path: filepath.Base(s.path)}
	st.schema.ctxNames = m.Config.Context
	if len(st.schema.ctxNames) != m.ContextDim {
		st.schema.ctxNames = make([]string, m.ContextDim)
		for j := range st.schema.ctxNames {
			st.schema.ctxNames[j] = "c" + strconv.Itoa(j)
		}
	}
	names := st.schema.names
	if s.f.data != "" && m.ContextDim == 0 {
		t, err := table.ReadFile(s.f.data, cliflags.ForModel(table.Options{}, m, s.path))
		if err != nil {
			return nil, fmt.Errorf("--data: %v", err)
		}
		st.data, st.dataPath, names = t.X, s.f.data, t.Names
	}
	if st.doc, err = s.describe(st); err != nil {
		return nil, err
	}
	st.corner = sync.OnceValues(func() ([]byte, error) {
		title := plotTitle(s.path)
		if st.dataPath != "" {
			title = plotTitle(s.path, st.dataPath)
		}
		cf, err := newCorner(m, cornerOptions{Title: title, Names: names, Data: st.data, N: -1})
		if err != nil {
			return nil, err
		}
		return cf.encode("png")
	})
	return st, nil
}

// verify checks that a model gives finite log densities at samples drawn
// from it (given its mean context, for a conditional model) and at the
// mean of its training data: a file can be intact and still hold a model
// that cannot serve.
func verify(m *model.Model) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the model fails its check: %v", r)
		}
	}()
	const n = 64
	var c *mat.Dense
	if m.ContextDim > 0 {
		c = mat.NewDense(n, m.ContextDim, nil)
		for i := range n {
			c.SetRow(i, m.ContextMean)
		}
	}
	x := m.Sample(flows.NewKey(0), n, c)
	x.SetRow(0, m.Mean)
	for i, v := range m.LogPDF(x, c) {
		if isInfOrNaN(v) {
			return fmt.Errorf("the model fails its check: the log density of its sample %d is %v", i, v)
		}
	}
	return nil
}

// modelDoc is the body of GET /v1/model.
type modelDoc struct {
	File            string       `json:"file"`
	Size            int64        `json:"size"`
	SHA256          string       `json:"sha256"`
	Modified        time.Time    `json:"modified"`
	Loaded          time.Time    `json:"loaded"`
	Kind            model.Kind   `json:"kind"`
	Summary         string       `json:"summary"`
	Columns         []string     `json:"columns"`
	Context         []string     `json:"context"`
	Named           bool         `json:"named"`
	Parameters      int          `json:"parameters"`
	Config          model.Config `json:"config"`
	Standardization struct {
		Mean         []float64 `json:"mean"`
		Scale        []float64 `json:"scale"`
		ContextMean  []float64 `json:"context_mean,omitempty"`
		ContextScale []float64 `json:"context_scale,omitempty"`
	} `json:"standardization"`
	Training     *model.Training `json:"training"`
	TrainingNote string          `json:"training_note,omitempty"`
	Limits       struct {
		MaxBody   int64 `json:"max_body"`
		MaxRows   int   `json:"max_rows"`
		MaxSample int   `json:"max_sample"`
	} `json:"limits"`
}

// trainingNote says why a model has no training summary.
const trainingNote = "the model file records no training summary: the model was not fitted by flows fit " +
	"(Model.Fit), or was written before model files kept one"

// describe returns the body of GET /v1/model.
func (s *server) describe(st *modelState) ([]byte, error) {
	m := st.m
	d := modelDoc{File: s.path, Size: st.size, SHA256: st.sha, Modified: st.modTime.UTC(), Loaded: st.loaded.UTC(),
		Kind: m.Config.Kind, Columns: st.schema.names, Context: st.schema.ctxNames, Named: st.named,
		Parameters: len(m.Params), Config: m.Config, Training: m.Training}
	if m.Training == nil {
		d.TrainingNote = trainingNote
	}
	if d.Context == nil {
		d.Context = []string{}
	}
	if info, ok := m.Config.Kind.Info(); ok {
		d.Summary = info.Summary
	}
	d.Standardization.Mean, d.Standardization.Scale = m.Mean, m.Scale
	d.Standardization.ContextMean, d.Standardization.ContextScale = m.ContextMean, m.ContextScale
	d.Limits.MaxBody, d.Limits.MaxRows, d.Limits.MaxSample = int64(s.f.maxBody), s.f.maxRows, s.f.maxSample
	b, err := json.MarshalIndent(d, "", "  ")
	return append(b, '\n'), err
}

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
	if n := s.metrics.inflight.Add(1); n > int64(s.f.workers+s.f.queue) {
		s.metrics.inflight.Add(-1)
		return overloaded(fmt.Sprintf("%d requests are computing or waiting, the most --workers and --queue allow", s.f.workers+s.f.queue))
	}
	defer s.metrics.inflight.Add(-1)

	maxBody := int64(s.f.maxBody)
	if r.ContentLength > maxBody {
		return s.fail(w, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooLarge, row: -1, index: -1, offset: -1,
			msg: fmt.Sprintf("the body is %d bytes, more than --max-body %v", r.ContentLength, &s.f.maxBody)})
	}
	reserve := maxBody
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	if !s.budget.take(reserve) {
		return overloaded(fmt.Sprintf("the bodies of the requests in flight fill --body-budget %v", &s.f.budget))
	}
	defer s.budget.give(reserve)

	bp := s.buffer(int(reserve))
	defer s.release(bp)
	body, err := readBody(http.MaxBytesReader(w, r.Body, maxBody), *bp, r.ContentLength)
	*bp = body[:0]
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return s.fail(w, &requestError{status: http.StatusRequestEntityTooLarge, kind: errTooLarge, row: -1, index: -1, offset: -1,
				msg: fmt.Sprintf("the body is more than --max-body %v", &s.f.maxBody)})
		}
		return s.fail(w, &requestError{status: http.StatusBadRequest, kind: errClientGone, row: -1, index: -1, offset: -1,
			msg: "reading the body: " + err.Error()})
	}

	op := s.buffer(64 + 24*len(body)/8)
	defer s.release(op)
	answer, rows, rerr := do(r, st, body, (*op)[:0])
	if rerr != nil {
		return s.fail(w, rerr)
	}
	*op = answer[:0]
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(answer)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(answer)
	s.metrics.rows[strings.TrimPrefix(r.URL.Path, "/v1/")].Add(uint64(rows))
	return outcome{code: http.StatusOK, rows: rows}
}

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

// readBody reads the body into buf (grown as needed): exactly length bytes
// when length ≥ 0, else to the end.
func readBody(r io.Reader, buf []byte, length int64) ([]byte, error) {
	if length >= 0 {
		buf = slices.Grow(buf[:0], int(length))[:length]
		if _, err := io.ReadFull(r, buf); err != nil {
			return buf[:0], err
		}
		return buf, nil
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, max(512, len(buf)))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf[:0], err
		}
	}
}

// score answers POST /v1/score.
func (s *server) score(r *http.Request, st *modelState, body, out []byte) ([]byte, int, *requestError) {
	ct := r.Header.Get("Content-Type")
	csv := false
	if ct != "" {
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
	j := &scoreJob{st: st, x: req.x, c: req.c, latent: latent || req.latent}
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
	n, _ := x.Dims()
	b = append(b, '[')
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
		b = append(b, ']')
	}
	return append(b, ']')
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
	names, _ := json.Marshal(st.schema.names)
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
		x := st.m.Sample(key.Fold(uint64(lo/sampleBlock)), hi-lo, c)
		if lo > 0 {
			out = append(out, ',')
		}
		rows := appendRows(nil, x)
		out = append(out, rows[1:len(rows)-1]...)
	}
	return append(out, "]}\n"...), req.n, nil
}
