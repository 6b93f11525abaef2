package flowsbeam

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"

	"github.com/gonormflows/flows/model"
	//lint:ignore SA1019 the direct runner is a second runner, to show that samples do not depend on the runner
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/direct"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"
)

// flowsBin is the command line tool of the repository, built by TestMain:
// the reference the pipelines are compared with.
var flowsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flowsbeam-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	flowsBin = filepath.Join(dir, "flows")
	build := exec.Command("go", "build", "-o", flowsBin, "./cmd/flows")
	build.Dir = filepath.Join("..", "..") // the root module
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building flows: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(2)
	}
	code := ptest.MainRet(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// runFlows runs the command line tool and returns its standard output.
func runFlows(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(flowsBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("flows %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// writeData writes n rows of a 4-column table with a header "a,b,c,d" as
// shards files named part-SSSSS.csv in dir, and the same rows as one file
// all.csv (one header); it returns the data rows' text, one per row.
func writeData(t *testing.T, dir string, n, shards int, seed uint64) []string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	rows := make([]string, n)
	for i := range rows {
		x := rng.NormFloat64()
		rows[i] = fmt.Sprintf("%v,%v,%v,%v", x, x*x+0.5*rng.NormFloat64(), rng.NormFloat64(), rng.ExpFloat64())
	}
	const header = "a,b,c,d\n"
	writeFile(t, filepath.Join(dir, "all.csv"), header+strings.Join(rows, "\n")+"\n")
	for s := range shards {
		part := rows[s*n/shards : (s+1)*n/shards]
		text := header + strings.Join(part, "\n")
		if len(part) > 0 {
			text += "\n"
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("part-%05d.csv", s)), text)
	}
	return rows
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fitModel fits a small model of kind to the rows of the file at path and
// saves it in dir; it returns the file's path.
func fitModel(t *testing.T, dir, data string, kind model.Kind) string {
	t.Helper()
	path := filepath.Join(dir, "model.flow")
	runFlows(t, "fit", data, "-o", path, "--kind", string(kind), "--layers", "2", "--hidden", "16,16",
		"--epochs", "3", "--seed", "3", "--quiet")
	return path
}

// readCSV reads CSV text whole.
func readCSV(t *testing.T, text string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(text)).ReadAll()
	if err != nil {
		t.Fatalf("not CSV: %v", err)
	}
	return recs
}

// readCSVFile reads a CSV file whole.
func readCSVFile(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return recs
}

// readShards reads the shards of an output with a header each, checks the
// headers agree, and returns the header and all the data records.
func readShards(t *testing.T, o Output) ([]string, [][]string) {
	t.Helper()
	files, _ := filepath.Glob(o.Prefix + "-*-of-*.csv")
	slices.Sort(files)
	var header []string
	var recs [][]string
	for i, f := range files {
		if want := o.ShardName(i, len(files)); f != want {
			t.Fatalf("shard %d is %s, want %s", i, f, want)
		}
		r := readCSVFile(t, f)
		if len(r) == 0 {
			t.Fatalf("%s: no header", f)
		}
		if header == nil {
			header = r[0]
		} else if !slices.Equal(header, r[0]) {
			t.Fatalf("%s: header %q, but the first shard's is %q", f, r[0], header)
		}
		recs = append(recs, r[1:]...)
	}
	return header, recs
}

// noTemps fails the test when dir holds a temporary file.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

// counters returns the pipeline's counters in the flows namespace by name.
func counters(pr beam.PipelineResult) map[string]int64 {
	out := map[string]int64{}
	for _, c := range pr.Metrics().AllMetrics().Counters() {
		if c.Key.Namespace == MetricNamespace {
			out[c.Key.Name] += c.Result()
		}
	}
	return out
}

// atoi parses an integer, or fails the test.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not an integer", s)
	}
	return n
}
