package main

// The server's life: its state, listening, SIGHUP reloads and the drain
// on SIGTERM or SIGINT.

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gonormflows/flows/model"
)

// server is the state of flows serve.
type server struct {
	path    string // the model file
	f       *serveFlags
	log     *slog.Logger
	metrics *metricsSet
	state   atomic.Pointer[modelState]
	slots   chan struct{} // a token per computing request
	budget  budget
	places  places      // the readers among the requests holding a place
	batch   batcher     // score requests waiting for a worker
	drain   atomic.Bool // shutting down
	bufs    sync.Pool   // *[]byte for bodies and answers up to poolMax
	jobs    sync.Pool   // *scoreJob, with their channel and timer
}

// poolMax is the largest buffer kept for reuse.
const poolMax = 1 << 20

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
	defer startGCFloor(int64(f.gcMinHeap.byteSize))()

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
		"workers", f.workers, "queue", f.queue, "max_body", int64(f.maxBody), "max_rows", f.maxRows, "gc_min_heap", int64(f.gcMinHeap.byteSize), "pid", os.Getpid())
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

// reload loads the model file again and, when it is good, serves it. A
// model of another schema (kind, columns or context columns) would fail
// every client's requests: it is refused, at warning level, unless
// --reload-allow-schema-change.
func (s *server) reload() {
	old := s.state.Load()
	st, err := s.load()
	if err != nil {
		s.metrics.reloads["error"].Add(1)
		s.log.Error("reload failed; still serving the old model", "model", s.path, "err", err, "sha256", old.sha)
		return
	}
	change := schemaChange(old, st)
	if change != "" && !s.f.reloadSchema {
		s.metrics.reloads["refused"].Add(1)
		s.log.Warn("reload refused: the new model's schema differs; still serving the old model (--reload-allow-schema-change swaps it in)",
			"model", s.path, "change", change, "sha256", st.sha, "serving_sha256", old.sha)
		return
	}
	s.state.Store(st)
	s.metrics.reloads["ok"].Add(1)
	s.log.Info("reloaded", "model", s.path, "sha256", st.sha, "previous_sha256", old.sha, "kind", string(st.m.Config.Kind))
	if change != "" {
		s.metrics.schemaChanges.Add(1)
		s.log.Warn("reloaded a model of another schema (--reload-allow-schema-change): requests shaped for the old one now fail",
			"model", s.path, "change", change, "sha256", st.sha, "previous_sha256", old.sha)
	}
}

// schemaChange says how the new model's schema differs from the old one's
// (its kind, columns and context columns, by count and name), or "" when
// it does not.
func schemaChange(old, st *modelState) string {
	var d []string
	if ok, nk := old.m.Config.Kind, st.m.Config.Kind; ok != nk {
		d = append(d, fmt.Sprintf("kind %s → %s", ok, nk))
	}
	if !slices.Equal(old.schema.names, st.schema.names) {
		d = append(d, fmt.Sprintf("%d columns %q → %d columns %q", old.schema.dim, old.schema.names, st.schema.dim, st.schema.names))
	}
	if !slices.Equal(old.schema.ctxNames, st.schema.ctxNames) {
		d = append(d, fmt.Sprintf("%d context columns %q → %d context columns %q", old.schema.cdim, old.schema.ctxNames, st.schema.cdim, st.schema.ctxNames))
	}
	oc, nc := old.schema.cat, st.schema.cat
	if !slices.Equal(oc.ColumnNames(), nc.ColumnNames()) || oc != nil && !slices.EqualFunc(oc.Levels, nc.Levels, slices.Equal) {
		d = append(d, fmt.Sprintf("categorical columns %s → %s", describeLevels(oc), describeLevels(nc)))
	}
	return strings.Join(d, "; ")
}

// describeLevels describes categorical columns and their levels for a log:
// species [setosa versicolor virginica], or "none".
func describeLevels(c *model.Categories) string {
	if c == nil {
		return "none"
	}
	parts := make([]string, len(c.Names))
	for k, name := range c.Names {
		parts[k] = fmt.Sprintf("%s %q", name, c.Levels[k])
	}
	return strings.Join(parts, ", ")
}
