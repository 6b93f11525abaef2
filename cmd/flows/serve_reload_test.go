package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitLogCount waits until the server's log holds n records with the
// message msg, and returns the last.
func waitLogCount(t *testing.T, p *serverProc, msg string, n int) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		var recs []map[string]any
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				recs = append(recs, rec)
			}
		}
		if len(recs) >= n {
			return recs[n-1]
		}
	}
	t.Fatalf("fewer than %d log records %q:\n%s", n, msg, p.logs.String())
	return nil
}

// TestServeReloadSchema: SIGHUP refuses a model of another width or kind,
// logs it at level warn and counts it, and keeps serving the old model;
// with --reload-allow-schema-change it swaps it in, at level warn too.
func TestServeReloadSchema(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	var b strings.Builder
	b.WriteString("x,y,z\n")
	for i := range 300 {
		fmt.Fprintf(&b, "%g,%g,%g\n", float64(i%17)/5, float64(i%7)-3, float64(i%11)/3)
	}
	writeFile(t, filepath.Join(dir, "wide.csv"), b.String())
	mustRun(t, dir, append([]string{"fit", "wide.csv", "-o", "wide.flow"}, tinyFit...)...)
	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "maf.flow", "--kind", "maf"}, tinyFit...)...)
	model := filepath.Join(dir, "model.flow")
	original := readText(t, model)

	p := startServer(t, dir, "model.flow")
	body := `{"rows":[[0.5,1],[2,-1]]}`
	want := logDensities(t, postJSON(t, p.url+"/v1/score", body))
	for i, tc := range []struct{ file, change string }{
		{"wide.flow", `2 columns ["x" "y"] → 3 columns ["x" "y" "z"]`},
		{"maf.flow", "kind nsf-coupling → maf"},
	} {
		writeFile(t, model, readText(t, filepath.Join(dir, tc.file)))
		p.cmd.Process.Signal(syscall.SIGHUP)
		rec := waitLogCount(t, p, "reload refused: the new model's schema differs; still serving the old model (--reload-allow-schema-change swaps it in)", i+1)
		if rec["level"] != "WARN" || rec["change"] != tc.change {
			t.Errorf("%s: logged %v", tc.file, rec)
		}
		if got := logDensities(t, postJSON(t, p.url+"/v1/score", body)); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: after the refused reload: %v, want the old model's %v", tc.file, got, want)
		}
	}
	fams := checkPrometheus(t, string(do(t, "GET", p.url+"/metrics", "", nil).body))
	if fams.value(`flows_model_reloads_total{result="refused"}`) != 2 || fams.value(`flows_model_reloads_total{result="ok"}`) != 0 {
		t.Errorf("reloads: refused %v, ok %v", fams.value(`flows_model_reloads_total{result="refused"}`), fams.value(`flows_model_reloads_total{result="ok"}`))
	}
	// The same schema still reloads.
	writeFile(t, model, original)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded")

	q := startServer(t, dir, "model.flow", "--reload-allow-schema-change")
	writeFile(t, model, readText(t, filepath.Join(dir, "wide.flow")))
	q.cmd.Process.Signal(syscall.SIGHUP)
	rec := q.waitLog(t, "reloaded a model of another schema (--reload-allow-schema-change): requests shaped for the old one now fail")
	if rec["level"] != "WARN" {
		t.Errorf("logged %v", rec)
	}
	if a := postJSON(t, q.url+"/v1/score", `{"rows":[[0.5,1,0.2]]}`); a.code != 200 {
		t.Errorf("a 3-column row after the allowed reload: %d %s", a.code, a.body)
	}
	fams = checkPrometheus(t, string(do(t, "GET", q.url+"/metrics", "", nil).body))
	if fams.value("flows_model_schema_changes_total") != 1 || fams.value(`flows_model_reloads_total{result="ok"}`) != 1 {
		t.Errorf("schema changes %v, reloads ok %v", fams.value("flows_model_schema_changes_total"), fams.value(`flows_model_reloads_total{result="ok"}`))
	}
}
