package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gonormflows/flows/model"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/table"
)

// serverProc is a flows serve process started by a test.
type serverProc struct {
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port
	addr string
	logs *syncBuffer
	done chan error
}

// syncBuffer is a buffer that a process writes while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer starts flows serve in dir on a free loopback port, with JSON
// logs, and waits until it listens. The test's cleanup kills it if it still
// runs.
func startServer(t *testing.T, dir string, args ...string) *serverProc {
	t.Helper()
	all := append([]string{"serve"}, args...)
	all = append(all, "--addr", "127.0.0.1:0", "--log-format", "json")
	cmd := exec.Command(flowsBin, all...)
	cmd.Dir = dir
	p := &serverProc{cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				p.addr, p.url = rec.Addr, "http://"+rec.Addr
				return p
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("flows serve exited: %v\n%s", err, p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("flows serve did not start listening:\n%s", p.logs.String())
	return nil
}

// waitExit waits for the server to exit and returns its exit status.
func (p *serverProc) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(60 * time.Second):
		t.Fatalf("flows serve did not exit:\n%s", p.logs.String())
		return -1
	}
}

// waitLog waits until the server's log has a record with the message msg.
func (p *serverProc) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(p.logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
	}
	t.Fatalf("no log record %q:\n%s", msg, p.logs.String())
	return nil
}

// answer is an HTTP answer.
type answer struct {
	code   int
	header http.Header
	body   []byte
}

var testClient = &http.Client{Timeout: 60 * time.Second}

// do sends a request and reads the whole answer.
func do(t *testing.T, method, url, contentType string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

// postJSON posts a JSON body.
func postJSON(t *testing.T, url, body string) answer {
	t.Helper()
	return do(t, "POST", url, "application/json", []byte(body))
}

// errorOf decodes a JSON error answer.
type errorBody struct {
	Error struct {
		Status  int     `json:"status"`
		Kind    string  `json:"kind"`
		Message string  `json:"message"`
		Row     *int    `json:"row"`
		Column  *string `json:"column"`
		Index   *int    `json:"index"`
		Line    *int    `json:"line"`
	} `json:"error"`
}

func errorOf(t *testing.T, a answer) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(a.body, &e); err != nil || e.Error.Kind == "" {
		t.Fatalf("not a JSON error (%d): %s", a.code, a.body)
	}
	if a.header.Get("Content-Type") != "application/json" || e.Error.Status != a.code {
		t.Errorf("error answer %d with Content-Type %q: %s", a.code, a.header.Get("Content-Type"), a.body)
	}
	return e
}

// scoreCells returns the log densities that flows score writes for the
// data file, as text, in order.
func scoreCells(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	recs := readCSV(t, mustRun(t, dir, append([]string{"score"}, args...)...).stdout)
	var out []string
	for _, r := range recs[1:] {
		out = append(out, r[2])
	}
	return out
}

// logDensities decodes the log densities of a score answer, as the text of
// each number.
func logDensities(t *testing.T, a answer) []string {
	t.Helper()
	if a.code != 200 {
		t.Fatalf("score: %d %s", a.code, a.body)
	}
	var r struct {
		LogDensity []json.RawMessage `json:"log_density"`
	}
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatalf("score answer: %v: %s", err, a.body)
	}
	out := make([]string, len(r.LogDensity))
	for i, v := range r.LogDensity {
		out[i] = strings.Trim(string(v), `"`) // "-Inf" as flows score writes it
	}
	return out
}

// jsonRows writes the CSV records (a header and rows) as a JSON score
// request: arrays of the cells' text as numbers, or objects by name.
func jsonRows(recs [][]string, objects bool, extra string) string {
	var b strings.Builder
	b.WriteString(`{"rows":[`)
	for i, r := range recs[1:] {
		if i > 0 {
			b.WriteByte(',')
		}
		if objects {
			b.WriteByte('{')
			for j, c := range r {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%q:%s", recs[0][j], c)
			}
			b.WriteByte('}')
			continue
		}
		b.WriteString("[" + strings.Join(r, ",") + "]")
	}
	b.WriteString("]" + extra + "}")
	return b.String()
}

// TestServeEndpoints starts a server and exercises every endpoint: scores
// equal flows score's bit for bit, samples flows sample's, the card's
// picture flows plot's.
func TestServeEndpoints(t *testing.T) {
	dir := t.TempDir()
	modelPath := fitTiny(t, dir)
	p := startServer(t, dir, "model.flow", "--data", "data.csv")

	// Scores: JSON arrays, JSON objects and CSV, against flows score.
	want := scoreCells(t, dir, "model.flow", "data.csv")
	data := readText(t, filepath.Join(dir, "data.csv"))
	recs := readCSV(t, data)
	for name, a := range map[string]answer{
		"arrays":  postJSON(t, p.url+"/v1/score", jsonRows(recs, false, "")),
		"objects": postJSON(t, p.url+"/v1/score", jsonRows(recs, true, "")),
		"csv":     do(t, "POST", p.url+"/v1/score", "text/csv", []byte(data)),
	} {
		if got := logDensities(t, a); !slices.Equal(got, want) {
			t.Errorf("%s: served scores differ from flows score's:\n%v\n%v", name, got[:3], want[:3])
		}
	}
	// Each row alone gives the same bits as in a batch.
	for _, i := range []int{0, outlierRow, 399} {
		a := postJSON(t, p.url+"/v1/score", `{"rows":[[`+strings.Join(recs[i+1], ",")+`]]}`)
		if got := logDensities(t, a); len(got) != 1 || got[0] != want[i] {
			t.Errorf("row %d alone: %v, want %s", i, got, want[i])
		}
	}
	// Every row alone, from 16 clients at once (so that waiting requests
	// are scored together): the same bits again.
	var wg sync.WaitGroup
	var mismatch sync.Map
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < len(want); i += 16 {
				resp, err := testClient.Post(p.url+"/v1/score", "application/json", strings.NewReader(`{"rows":[[`+strings.Join(recs[i+1], ",")+`]]}`))
				if err != nil {
					mismatch.Store(i, err.Error())
					continue
				}
				var r struct {
					LogDensity []json.RawMessage `json:"log_density"`
				}
				err = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				if err != nil || len(r.LogDensity) != 1 || strings.Trim(string(r.LogDensity[0]), `"`) != want[i] {
					mismatch.Store(i, fmt.Sprint(r.LogDensity, err))
				}
			}
		}()
	}
	wg.Wait()
	mismatch.Range(func(k, v any) bool {
		t.Errorf("row %v from concurrent clients: %v, want %s", k, v, want[k.(int)])
		return true
	})

	// A row far out: flows score writes -Inf, the server the string "-Inf".
	writeFile(t, filepath.Join(dir, "far.csv"), "x,y\n1e300,0\n")
	if got := logDensities(t, postJSON(t, p.url+"/v1/score", `{"rows":[[1e300,0]]}`)); got[0] != scoreCells(t, dir, "model.flow", "far.csv")[0] {
		t.Errorf("far row: %v", got)
	}

	// Latent coordinates, against the library.
	m, err := model.Load(modelPath)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := table.ReadFile(filepath.Join(dir, "data.csv"), table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{p.url + "/v1/score?latent=true", p.url + "/v1/score"} {
		body := jsonRows(recs[:11], false, "")
		if !strings.Contains(url, "latent") {
			body = jsonRows(recs[:11], false, `,"latent":true`)
		}
		a := postJSON(t, url, body)
		var r struct {
			Latent [][]float64 `json:"latent"`
		}
		if err := json.Unmarshal(a.body, &r); err != nil || len(r.Latent) != 10 {
			t.Fatalf("latent: %v %s", err, a.body)
		}
		z := m.Latent(tab.X.Slice(0, 10, 0, 2).(*mat.Dense), nil)
		for i, row := range r.Latent {
			if !sameRows(row, z.RawRowView(i)) {
				t.Errorf("latent row %d: %v, want %v", i, row, z.RawRowView(i))
			}
		}
	}

	// Samples, against flows sample.
	a := postJSON(t, p.url+"/v1/sample", `{"n": 5, "seed": 3}`)
	var smp struct {
		Columns []string    `json:"columns"`
		Rows    [][]float64 `json:"rows"`
	}
	if err := json.Unmarshal(a.body, &smp); err != nil || a.code != 200 {
		t.Fatalf("sample: %d %s", a.code, a.body)
	}
	cli := readCSV(t, mustRun(t, dir, "sample", "model.flow", "-n", "5", "--seed", "3").stdout)
	if !slices.Equal(smp.Columns, cli[0]) || len(smp.Rows) != 5 {
		t.Errorf("sample: columns %v rows %d", smp.Columns, len(smp.Rows))
	}
	for i, row := range smp.Rows {
		for j, v := range row {
			if table.FormatFloat(v) != cli[i+1][j] {
				t.Errorf("sample row %d: %v, flows sample %v", i, row, cli[i+1])
			}
		}
	}

	// The model.
	a = do(t, "GET", p.url+"/v1/model", "", nil)
	var doc modelDoc
	if err := json.Unmarshal(a.body, &doc); err != nil || a.code != 200 {
		t.Fatalf("model: %d %s", a.code, a.body)
	}
	sum := sha256.Sum256([]byte(readText(t, modelPath)))
	if doc.SHA256 != hex.EncodeToString(sum[:]) || doc.Kind != model.KindNSFCoupling || !slices.Equal(doc.Columns, []string{"x", "y"}) ||
		doc.Parameters != len(m.Params) || doc.Config.Layers != 2 || !sameBits(doc.Standardization.Mean, m.Mean) ||
		doc.Training == nil || *doc.Training != *m.Training || doc.Training.Epochs != 8 || doc.TrainingNote != "" {
		t.Errorf("model: %s", a.body)
	}

	// Health, readiness, HEAD, 404, 405.
	for _, path := range []string{"/healthz", "/readyz"} {
		if a := do(t, "GET", p.url+path, "", nil); a.code != 200 || !json.Valid(a.body) {
			t.Errorf("%s: %d %s", path, a.code, a.body)
		}
		if a := do(t, "HEAD", p.url+path, "", nil); a.code != 200 || len(a.body) != 0 {
			t.Errorf("HEAD %s: %d %q", path, a.code, a.body)
		}
	}
	if a := do(t, "GET", p.url+"/v2/score", "", nil); a.code != 404 || errorOf(t, a).Error.Kind != errNotFound {
		t.Errorf("404: %d %s", a.code, a.body)
	}
	if a := do(t, "GET", p.url+"/v1/score", "", nil); a.code != 405 || a.header.Get("Allow") != "POST" || errorOf(t, a).Error.Kind != errMethod {
		t.Errorf("GET /v1/score: %d %v %s", a.code, a.header, a.body)
	}
	if a := do(t, "DELETE", p.url+"/v1/model", "", nil); a.code != 405 || a.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("DELETE /v1/model: %d %v", a.code, a.header)
	}

	// The card and its picture, which is flows plot's.
	a = do(t, "GET", p.url+"/", "", nil)
	card := string(a.body)
	if a.code != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Fatalf("card: %d %v", a.code, a.header)
	}
	for _, w := range []string{"<title>model.flow", "<code>x</code>", "<code>y</code>", "nsf-coupling", "<th>validation NLL</th><td>" + strconv.FormatFloat(m.Training.ValNLL, 'f', 4, 64), "a Gaussian&#39;s validation NLL", `<img src="corner.png`,
		"flows plot model.flow data.csv", doc.SHA256, "hidden widths</th><td>16, 16"} {
		if !strings.Contains(card, w) {
			t.Errorf("the card does not show %q", w)
		}
	}
	if strings.Contains(card, "<script") {
		t.Error("the card has a script")
	}
	png := do(t, "GET", p.url+"/corner.png", "", nil)
	mustRun(t, dir, "plot", "model.flow", "data.csv", "-o", "plot.png")
	if png.code != 200 || png.header.Get("Content-Type") != "image/png" || !bytes.Equal(png.body, []byte(readText(t, filepath.Join(dir, "plot.png")))) {
		t.Errorf("/corner.png (%d, %d bytes) is not the picture flows plot draws", png.code, len(png.body))
	}

	// The metrics count what happened.
	text := string(do(t, "GET", p.url+"/metrics", "", nil).body)
	fams := checkPrometheus(t, text)
	if v := fams.value(`flows_http_requests_total{endpoint="score",code="200"}`); v != 409 {
		t.Errorf("score requests counted: %v\n%s", v, text)
	}
	if v := fams.value(`flows_rows_total{endpoint="score"}`); v != 4*400+3+1+20 {
		t.Errorf("rows scored: %v", v)
	}
	if v := fams.value(`flows_rows_total{endpoint="sample"}`); v != 5 {
		t.Errorf("rows sampled: %v", v)
	}
	if v := fams.value(`flows_request_errors_total{kind="not_found"}`); v != 1 {
		t.Errorf("not_found errors: %v", v)
	}
	if v := fams.value(`flows_request_errors_total{kind="method_not_allowed"}`); v != 2 {
		t.Errorf("method_not_allowed errors: %v", v)
	}
	if v := fams.value(`process_resident_memory_bytes`); v < 1<<20 {
		t.Errorf("resident memory %v", v)
	}

	// SIGTERM: a clean exit.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.waitExit(t); code != 0 {
		t.Errorf("exit status %d after SIGTERM:\n%s", code, p.logs.String())
	}
	p.waitLog(t, "stopped")
}

// promFamilies maps each sample (name and labels, as written) to its value.
type promFamilies map[string]float64

func (f promFamilies) value(key string) float64 {
	v, ok := f[key]
	if !ok {
		return math.NaN()
	}
	return v
}

var (
	promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$`)
	promLabel  = regexp.MustCompile(`^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$`)
	promHelp   = regexp.MustCompile(`^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$`)
)

// checkPrometheus checks text against the Prometheus text format: a TYPE
// before each family's samples, well-formed samples and labels, histograms
// with cumulative buckets ending at +Inf equal to their count.
func checkPrometheus(t *testing.T, text string) promFamilies {
	t.Helper()
	out := promFamilies{}
	types := map[string]string{}
	buckets := map[string][]float64{} // histogram series → cumulative counts
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			m := promHelp.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %d: %q", i+1, line)
			}
			if m[1] == "TYPE" {
				if !slices.Contains([]string{"counter", "gauge", "histogram"}, m[3]) {
					t.Errorf("line %d: type %q", i+1, m[3])
				}
				types[m[2]] = m[3]
			}
			continue
		}
		m := promSample.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is not a sample: %q", i+1, line)
		}
		name, family := m[1], m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && types[f] == "histogram" {
				family = f
			}
		}
		if types[family] == "" {
			t.Errorf("line %d: %s has no TYPE before it", i+1, name)
		}
		var le string
		var series []string
		if m[3] != "" {
			for _, l := range strings.Split(m[3], ",") {
				lm := promLabel.FindStringSubmatch(l)
				if lm == nil {
					t.Fatalf("line %d: label %q", i+1, l)
				}
				if lm[1] == "le" {
					le = lm[2]
				} else {
					series = append(series, l)
				}
			}
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("line %d: value %q", i+1, m[4])
		}
		out[m[1]+m[2]] = v
		key := family + "{" + strings.Join(series, ",") + "}"
		switch {
		case strings.HasSuffix(name, "_bucket"):
			if n := len(buckets[key]); n > 0 && v < buckets[key][n-1] {
				t.Errorf("line %d: buckets of %s are not cumulative", i+1, key)
			}
			buckets[key] = append(buckets[key], v)
			if le == "+Inf" {
				buckets[key] = append(buckets[key], math.Inf(1)) // a marker
			}
		case strings.HasSuffix(name, "_count") && types[family] == "histogram":
			b := buckets[key]
			if len(b) < 2 || b[len(b)-1] != math.Inf(1) || b[len(b)-2] != v {
				t.Errorf("line %d: %s's +Inf bucket %v is not its count %v", i+1, key, b, v)
			}
		}
	}
	return out
}

// TestServeBadInput sends every class of bad input: each is answered with
// a 4xx and a JSON error of its kind naming the row and column, while good
// requests sent at the same time are answered as if nothing happened.
func TestServeBadInput(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	p := startServer(t, dir, "model.flow", "--max-body", "4KiB", "--max-rows", "10")
	good := `{"rows":[[0.5,1],[2,-1]]}`
	want := logDensities(t, postJSON(t, p.url+"/v1/score", good))
	tests := []struct {
		path, ct, body string
		code           int
		kind           string
		row            int
		column         string
	}{
		{"/v1/score", "application/json", `{"rows":[[0.5,1],[2,`, 400, errBadJSON, 1, "y"},
		{"/v1/score", "application/json", `not json`, 400, errBadJSON, -1, ""},
		{"/v1/score", "application/json", `{"rows":[[0.5,1],[2,"-1"]]}`, 400, errNotANumber, 1, "y"},
		{"/v1/score", "application/json", `{"rows":[[0.5,1],[null,1]]}`, 400, errNotANumber, 1, "x"},
		{"/v1/score", "application/json", `{"rows":[[0.5,1e999]]}`, 400, errNotFinite, 0, "y"},
		{"/v1/score", "application/json", `{"rows":[[0.5,NaN]]}`, 400, errNotFinite, 0, "y"},
		{"/v1/score", "application/json", `{"rows":[[0.5,1,2]]}`, 400, errBadWidth, 0, ""},
		{"/v1/score", "application/json", `{"rows":[[0.5,1],[2]]}`, 400, errBadWidth, 1, ""},
		{"/v1/score", "application/json", `{"rows":[{"x":1,"y":2},{"x":1,"why":2}]}`, 400, errUnknownColumn, 1, "why"},
		{"/v1/score", "application/json", `{"rows":[{"x":1}]}`, 400, errMissingColumn, 0, "y"},
		{"/v1/score", "application/json", `{"rows":[]}`, 400, errNoRows, -1, ""},
		{"/v1/score", "application/json", `{"rows":[[1,2]],"context":[[1]]}`, 400, errNotConditional, -1, ""},
		{"/v1/score", "application/json", `{"rows":[[1,2]],"extra":1}`, 400, errBadRequest, -1, ""},
		{"/v1/score?latent=maybe", "application/json", good, 400, errBadRequest, -1, ""},
		{"/v1/score?color=red", "application/json", good, 400, errBadRequest, -1, ""},
		{"/v1/score", "application/json", `{"rows":[` + strings.Repeat("[1,2],", 10) + `[1,2]]}`, 413, errTooManyRows, 10, ""},
		{"/v1/score", "application/json", `{"rows":[[1,2]],"pad":"` + strings.Repeat("x", 5000) + `"}`, 413, errTooLarge, -1, ""},
		{"/v1/score", "text/csv", "x,y\n1,2\n3,abc\n", 400, errNotANumber, 1, "y"},
		{"/v1/score", "text/csv", "x,y\n1,2\n3,Inf\n", 400, errNotFinite, 1, "y"},
		{"/v1/score", "text/csv", "x,y\n1,2\n3\n", 400, errBadWidth, 1, ""},
		{"/v1/score", "text/csv", "x,z\n1,2\n", 400, errMissingColumn, -1, ""},
		{"/v1/score", "text/csv", "x,y\n1,\"2\n", 400, errBadCSV, -1, ""},
		{"/v1/score", "text/csv; charset=latin1", "x,y\n1,2\n", 415, errMediaType, -1, ""},
		{"/v1/score", "application/x-www-form-urlencoded", good, 415, errMediaType, -1, ""},
		{"/v1/score", "text/plain", good, 415, errMediaType, -1, ""},
		{"/v1/sample", "application/json", `{"n":0}`, 400, errBadRequest, -1, ""},
		{"/v1/sample", "application/json", `{"n":10001}`, 413, errTooManyRows, -1, ""},
		{"/v1/sample", "application/json", `{"n":1,"given":[1]}`, 400, errBadRequest, -1, ""},
		{"/v1/sample", "application/json", `{"n":1,"context":[1]}`, 400, errNotConditional, -1, ""},
		{"/v1/sample", "application/json", `{"n":`, 400, errBadJSON, -1, ""},
		{"/v1/sample", "text/csv", `{"n":1}`, 415, errMediaType, -1, ""},
	}
	// Good requests run all along; each must get the same scores.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var goodErrs sync.Map
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := testClient.Post(p.url+"/v1/score", "application/json", strings.NewReader(good))
				if err != nil {
					goodErrs.Store(err.Error(), true)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.Contains(string(b), want[0]) {
					goodErrs.Store(fmt.Sprintf("%d %s", resp.StatusCode, b), true)
				}
			}
		}()
	}
	kinds := map[string]float64{}
	for _, tc := range tests {
		a := do(t, "POST", p.url+tc.path, tc.ct, []byte(tc.body))
		if a.code != tc.code {
			t.Errorf("%s %.60q: status %d, want %d: %s", tc.path, tc.body, a.code, tc.code, a.body)
			continue
		}
		e := errorOf(t, a).Error
		kinds[e.Kind]++
		row, col := -1, ""
		if e.Row != nil {
			row = *e.Row
		}
		if e.Column != nil {
			col = *e.Column
		}
		if e.Kind != tc.kind || row != tc.row || col != tc.column {
			t.Errorf("%s %.60q: kind %s row %d column %q, want %s %d %q: %s", tc.path, tc.body, e.Kind, row, col, tc.kind, tc.row, tc.column, e.Message)
		}
	}
	// A body over the limit without a Content-Length (chunked).
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"rows":[[1,2]],"pad":"`))
		for range 100 {
			pw.Write(bytes.Repeat([]byte("x"), 100))
		}
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	resp, err := testClient.Post(p.url+"/v1/score", "application/json", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if a := (answer{resp.StatusCode, resp.Header, b}); a.code != 413 || errorOf(t, a).Error.Kind != errTooLarge {
		t.Errorf("chunked body over --max-body: %d %s", a.code, b)
	} else {
		kinds[errTooLarge]++
	}
	close(stop)
	wg.Wait()
	goodErrs.Range(func(k, _ any) bool { t.Errorf("a good request during the bad ones: %v", k); return true })

	// Still serving, and the errors are counted by kind.
	if got := logDensities(t, postJSON(t, p.url+"/v1/score", good)); !slices.Equal(got, want) {
		t.Errorf("after the bad requests: %v, want %v", got, want)
	}
	fams := checkPrometheus(t, string(do(t, "GET", p.url+"/metrics", "", nil).body))
	for k, n := range kinds {
		if v := fams.value(`flows_request_errors_total{kind="` + k + `"}`); v != n {
			t.Errorf("errors of kind %s: %v, want %v", k, v, n)
		}
	}
	if strings.Contains(p.logs.String(), `"level":"ERROR"`) {
		t.Errorf("bad input logged as an error:\n%s", p.logs.String())
	}
}

// slowRequest opens a connection and sends a POST whose body is only
// partly sent: the server reads it until the test sends the rest.
type slowRequest struct {
	conn net.Conn
	rest string
}

func startSlow(t *testing.T, addr, path, body string, sent int) *slowRequest {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, addr, len(body), body[:sent])
	return &slowRequest{conn: conn, rest: body[sent:]}
}

// finish sends the rest of the body and reads the answer.
func (s *slowRequest) finish(t *testing.T) (int, string) {
	t.Helper()
	defer s.conn.Close()
	if _, err := io.WriteString(s.conn, s.rest); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeLimits: beyond --workers plus --queue requests, and beyond the
// body budget, requests get 503 with Retry-After, and the others are
// answered.
func TestServeLimits(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	good := `{"rows":[[0.5,1],[2,-1]]}`

	// One admitted at a time: a request whose body is on its way holds
	// the only place.
	p := startServer(t, dir, "model.flow", "--workers", "1", "--queue", "0")
	slow := startSlow(t, p.addr, "/v1/score", good, 5)
	waitGauge(t, p, "flows_inflight_requests", 1)
	a := postJSON(t, p.url+"/v1/score", good)
	if a.code != 503 || a.header.Get("Retry-After") != "1" || errorOf(t, a).Error.Kind != errOverloaded {
		t.Errorf("a request beyond --workers + --queue: %d %v %s", a.code, a.header, a.body)
	}
	if code, body := slow.finish(t); code != 200 || !strings.Contains(body, "log_density") {
		t.Errorf("the slow request: %d %s", code, body)
	}
	if a := postJSON(t, p.url+"/v1/score", good); a.code != 200 {
		t.Errorf("after the slow one: %d %s", a.code, a.body)
	}

	// The body budget: a body of 6000 bytes on its way holds 6000 of 8KiB.
	q := startServer(t, dir, "model.flow", "--max-body", "8KiB", "--body-budget", "8KiB")
	big := `{"rows":[[0.5,1]],"latent":false` + strings.Repeat(" ", 5960) + `}`
	slow = startSlow(t, q.addr, "/v1/score", big, 10)
	waitGauge(t, q, "flows_inflight_requests", 1)
	medium := `{"rows":[[0.5,1]]` + strings.Repeat(" ", 3000) + `}`
	if a := postJSON(t, q.url+"/v1/score", medium); a.code != 503 || errorOf(t, a).Error.Kind != errOverloaded || !strings.Contains(string(a.body), "--body-budget") {
		t.Errorf("a body beyond the budget: %d %s", a.code, a.body)
	}
	if a := postJSON(t, q.url+"/v1/score", good); a.code != 200 {
		t.Errorf("a small body within the budget: %d %s", a.code, a.body)
	}
	if code, _ := slow.finish(t); code != 200 {
		t.Errorf("the slow request: %d", code)
	}
	if a := postJSON(t, q.url+"/v1/score", medium); a.code != 200 {
		t.Errorf("the medium body after the slow one: %d %s", a.code, a.body)
	}
}

// waitGauge waits until the metric has the value.
func waitGauge(t *testing.T, p *serverProc, name string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		resp, err := testClient.Get(p.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok && v == strconv.FormatFloat(want, 'g', -1, 64) {
				return
			}
		}
	}
	t.Fatalf("%s never reached %v", name, want)
}

// TestServeReload: SIGHUP swaps in a good new model file; a corrupt one,
// one that is not a model file and a missing one leave the old model
// serving, with the error logged.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	mustRun(t, dir, append([]string{"fit", "data.csv", "-o", "other.flow"}, append(tinyFit[:len(tinyFit)-1:len(tinyFit)-1], "7")...)...)
	p := startServer(t, dir, "model.flow")
	body := `{"rows":[[0.5,1],[2,-1]]}`
	writeFile(t, filepath.Join(dir, "two.csv"), "x,y\n0.5,1\n2,-1\n")
	old := scoreCells(t, dir, "model.flow", "two.csv")
	if got := logDensities(t, postJSON(t, p.url+"/v1/score", body)); !slices.Equal(got, old) {
		t.Fatalf("before: %v, want %v", got, old)
	}
	sha := func() string {
		var d modelDoc
		json.Unmarshal(do(t, "GET", p.url+"/v1/model", "", nil).body, &d)
		return d.SHA256
	}
	oldSHA := sha()

	// A good file: renamed over the model, as Save writes it.
	if err := os.Rename(filepath.Join(dir, "other.flow"), filepath.Join(dir, "model.flow")); err != nil {
		t.Fatal(err)
	}
	newScores := scoreCells(t, dir, "model.flow", "two.csv")
	if slices.Equal(newScores, old) {
		t.Fatal("the two models score alike")
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitLog(t, "reloaded")
	newSHA := sha()
	if newSHA == oldSHA {
		t.Error("the SHA-256 did not change")
	}
	if got := logDensities(t, postJSON(t, p.url+"/v1/score", body)); !slices.Equal(got, newScores) {
		t.Errorf("after the reload: %v, want the new model's %v", got, newScores)
	}

	// Bad files: each leaves the new model serving.
	good := readText(t, filepath.Join(dir, "model.flow"))
	corrupt := []byte(good)
	corrupt[len(corrupt)/2] ^= 0x40 // the checksum no longer matches
	for i, bad := range []string{string(corrupt), good[:len(good)/3], "not a model\n"} {
		writeFile(t, filepath.Join(dir, "model.flow"), bad)
		p.cmd.Process.Signal(syscall.SIGHUP)
		for deadline := time.Now().Add(20 * time.Second); strings.Count(p.logs.String(), "reload failed") <= i; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("bad file %d: no reload failure logged:\n%s", i, p.logs.String())
			}
		}
		if got := logDensities(t, postJSON(t, p.url+"/v1/score", body)); !slices.Equal(got, newScores) {
			t.Errorf("bad file %d: %v, want the loaded model's %v", i, got, newScores)
		}
		if sha() != newSHA {
			t.Errorf("bad file %d: the SHA-256 changed", i)
		}
	}
	logs := p.logs.String()
	for _, w := range []string{"checksum mismatch", "truncated", "not a model file"} {
		if !strings.Contains(logs, w) {
			t.Errorf("the log does not say %q:\n%s", w, logs)
		}
	}
	fams := checkPrometheus(t, string(do(t, "GET", p.url+"/metrics", "", nil).body))
	if fams.value(`flows_model_reloads_total{result="ok"}`) != 1 || fams.value(`flows_model_reloads_total{result="error"}`) != 3 {
		t.Errorf("reloads counted: ok %v, error %v", fams.value(`flows_model_reloads_total{result="ok"}`), fams.value(`flows_model_reloads_total{result="error"}`))
	}
}

// TestServeShutdown: on SIGTERM the server stops taking connections, lets
// the request in flight finish and exits 0; with a request that does not
// finish within --shutdown-timeout, it exits 1.
func TestServeShutdown(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	good := `{"rows":[[0.5,1],[2,-1]]}`
	for _, tc := range []struct {
		timeout string
		code    int
	}{{"30s", 0}, {"300ms", 1}} {
		p := startServer(t, dir, "model.flow", "--shutdown-timeout", tc.timeout)
		slow := startSlow(t, p.addr, "/v1/score", good, 5)
		waitGauge(t, p, "flows_inflight_requests", 1)
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.waitLog(t, "shutting down: waiting for the requests in flight")
		// New connections are refused.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("the server still takes connections after SIGTERM")
			}
		}
		if tc.code == 0 {
			if code, body := slow.finish(t); code != 200 || !strings.Contains(body, "log_density") {
				t.Errorf("the request in flight: %d %s", code, body)
			}
		}
		if code := p.waitExit(t); code != tc.code {
			t.Errorf("--shutdown-timeout %s: exit status %d, want %d:\n%s", tc.timeout, code, tc.code, p.logs.String())
		}
		if tc.code == 1 && !strings.Contains(p.logs.String(), "cut off") {
			t.Errorf("no log of the cut-off request:\n%s", p.logs.String())
		}
		slow.conn.Close()
	}
}

// TestServeConditional serves a model of y given c: scores with contexts
// (arrays, objects, CSV) equal flows score's, samples given a context equal
// flows sample --given's, and the card has no corner plot.
func TestServeConditional(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("c,y\n")
	for i := range 200 {
		c := float64(i % 2)
		fmt.Fprintf(&b, "%g,%g\n", c, 4*c+0.3*float64((i*7919)%11-5)/5)
	}
	writeFile(t, filepath.Join(dir, "cond.csv"), b.String())
	mustRun(t, dir, "fit", "cond.csv", "--context", "c", "-o", "cond.flow", "--epochs", "5", "--layers", "2", "--hidden", "8", "--quiet")
	p := startServer(t, dir, "cond.flow")
	want := scoreCells(t, dir, "cond.flow", "cond.csv")
	recs := readCSV(t, b.String())
	var rows, ctx, objs []string
	for _, r := range recs[1:] {
		rows = append(rows, "["+r[1]+"]")
		ctx = append(ctx, "["+r[0]+"]")
		objs = append(objs, fmt.Sprintf(`{"y":%s,"c":%s}`, r[1], r[0]))
	}
	for name, a := range map[string]answer{
		"arrays":  postJSON(t, p.url+"/v1/score", `{"rows":[`+strings.Join(rows, ",")+`],"context":[`+strings.Join(ctx, ",")+`]}`),
		"objects": postJSON(t, p.url+"/v1/score", `{"rows":[`+strings.Join(objs, ",")+`]}`),
		"csv":     do(t, "POST", p.url+"/v1/score", "text/csv", []byte(b.String())),
	} {
		if got := logDensities(t, a); !slices.Equal(got, want) {
			t.Errorf("%s: served scores differ from flows score's", name)
		}
	}
	a := postJSON(t, p.url+"/v1/sample", `{"n": 4, "seed": 2, "context": [1]}`)
	var smp struct{ Rows [][]float64 }
	json.Unmarshal(a.body, &smp)
	cli := readCSV(t, mustRun(t, dir, "sample", "cond.flow", "-n", "4", "--seed", "2", "--given", "1").stdout)
	for i, row := range smp.Rows {
		if table.FormatFloat(row[0]) != cli[i+1][0] {
			t.Errorf("sample given c=1, row %d: %v, flows sample %v", i, row, cli[i+1])
		}
	}
	if len(smp.Rows) != 4 {
		t.Errorf("sample: %s", a.body)
	}
	if a := postJSON(t, p.url+"/v1/sample", `{"seed": 2, "contexts": [[0], [1], [1]]}`); a.code != 200 || strings.Count(string(a.body), "],[") != 2 {
		t.Errorf("sample with contexts: %d %s", a.code, a.body)
	}
	if a := postJSON(t, p.url+"/v1/score", `{"rows":[[1]]}`); a.code != 400 || errorOf(t, a).Error.Kind != errNotConditional {
		t.Errorf("no context: %d %s", a.code, a.body)
	}
	if a := do(t, "GET", p.url+"/corner.png", "", nil); a.code != 404 {
		t.Errorf("/corner.png of a conditional model: %d", a.code)
	}
	if card := string(do(t, "GET", p.url+"/", "", nil).body); !strings.Contains(card, "no corner plot without a context") || !strings.Contains(card, "<code>c</code>") {
		t.Errorf("the card of a conditional model:\n%s", card)
	}
}

// TestServeStartErrors: a bad model file, flag or address is an error
// before the server starts.
func TestServeStartErrors(t *testing.T) {
	dir := t.TempDir()
	fitTiny(t, dir)
	writeFile(t, filepath.Join(dir, "bad.flow"), "not a model\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "missing.flow"}, "flows serve: open missing.flow: no such file or directory"},
		{[]string{"serve", "bad.flow"}, "flows serve: bad.flow: not a model file"},
		{[]string{"serve", "model.flow", "--data", "missing.csv"}, "flows serve: --data: open missing.csv"},
		{[]string{"serve", "model.flow", "--workers", "-1"}, "flows serve: --workers -1: want at least 1 (or 0 for GOMAXPROCS)"},
		{[]string{"serve", "model.flow", "--max-body", "lots"}, `"lots" is not a positive size in bytes`},
		{[]string{"serve", "model.flow", "--max-body", "8MiB", "--body-budget", "1MiB"}, "--body-budget 1MiB is less than --max-body 8MiB"},
		{[]string{"serve", "model.flow", "--queue-wait", "0s"}, "--queue-wait 0s: want a positive duration"},
		{[]string{"serve", "model.flow", "--log-format", "xml"}, `--log-format "xml": want json or text`},
		{[]string{"serve", "model.flow", "--addr", ln.Addr().String()}, "flows serve: listen tcp " + ln.Addr().String()},
	} {
		r := flowsRun(t, dir, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	r := mustRun(t, dir, "help", "serve")
	for _, w := range []string{"POST /v1/score", "POST /v1/sample", "GET /metrics", "SIGHUP", "--max-body bytes", "--workers", "--queue-wait", "(default 8MiB)", "Retry-After"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("flows help serve does not say %q", w)
		}
	}
}
