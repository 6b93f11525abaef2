package flowsbeam

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/testing/ptest"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// scorePipeline builds ReadCSV and Score of the shards in dir under the
// model at path.
func scorePipeline(t *testing.T, s beam.Scope, dir, model string, chunk int) beam.PCollection {
	t.Helper()
	mf, m, err := ReadModelFile(s, model)
	if err != nil {
		t.Fatal(err)
	}
	opt := table.Options{Columns: m.Config.Columns, Context: m.Config.Context, Want: m.Dim, WantContext: m.ContextDim}
	rows, _ := ReadCSV(s, ReadConfig{Options: opt, ChunkRows: chunk}, filepath.Join(dir, "part-*.csv"))
	return Score(s, mf, rows, ScoreConfig{})
}

// shardLine maps a line of shard part-SSSSS.csv of n rows in shards to the
// line of all.csv.
func shardLine(t *testing.T, file string, line, n, shards int) int {
	t.Helper()
	var s int
	if _, err := fmt.Sscanf(filepath.Base(file), "part-%05d.csv", &s); err != nil {
		t.Fatalf("file %q: %v", file, err)
	}
	return s*n/shards + line
}

// TestTopAnomalies checks the k least likely rows, globally against flows
// score --top on the concatenated file, and per file against flows score
// --top on each file.
func TestTopAnomalies(t *testing.T) {
	const n, shards, k = 3000, 5, 10
	dir := t.TempDir()
	writeData(t, dir, n, shards, 4)
	model := fitModel(t, dir, filepath.Join(dir, "all.csv"), model.KindMAF)
	p, s := beam.NewPipelineWithRoot()
	scored := scorePipeline(t, s, dir, model, 100)
	global, perFile := filepath.Join(dir, "top.csv"), filepath.Join(dir, "top-per-file.csv")
	WriteAnomalies(s, global, TopAnomalies(s, k, scored))
	WriteAnomaliesPerKey(s, perFile, TopAnomaliesPerKey(s, 3, KeyByFile(s, scored)))
	ptest.RunAndValidate(t, p)

	want := readCSV(t, runFlows(t, "score", model, filepath.Join(dir, "all.csv"), "--top", strconv.Itoa(k)))
	got := readCSVFile(t, global)
	if strings.Join(got[0], ",") != "file,row,line,log_density,a,b,c,d" || len(got) != len(want) {
		t.Fatalf("top: header %q and %d rows; want %d rows", got[0], len(got)-1, len(want)-1)
	}
	for i, r := range got[1:] {
		w := want[i+1]
		if line := shardLine(t, r[0], atoi(t, r[2]), n, shards); strconv.Itoa(line) != w[1] || strings.Join(r[3:], ",") != strings.Join(w[2:], ",") {
			t.Errorf("top row %d: %q (all.csv line %d); flows score --top: %q", i, r, line, w)
		}
	}

	got = readCSVFile(t, perFile)
	if strings.Join(got[0], ",") != "key,file,row,line,log_density,a,b,c,d" {
		t.Fatalf("per-key header %q", got[0])
	}
	var wantPer []string
	for sh := range shards {
		file := filepath.Join(dir, fmt.Sprintf("part-%05d.csv", sh))
		for _, w := range readCSV(t, runFlows(t, "score", model, file, "--top", "3"))[1:] {
			wantPer = append(wantPer, strings.Join(append([]string{file, file, w[0], w[1]}, w[2:]...), ","))
		}
	}
	var gotPer []string
	for _, r := range got[1:] {
		gotPer = append(gotPer, strings.Join(r, ","))
	}
	if !slices.Equal(gotPer, wantPer) {
		t.Errorf("per file:\n got %q\nwant %q", gotPer, wantPer)
	}
}

// TestTopAnomaliesByColumn keys rows by a context column of a conditional
// model and checks each key's least likely rows against flows score.
func TestTopAnomaliesByColumn(t *testing.T) {
	const n, shards = 1200, 3
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 5))
	var rows []string
	for range n {
		g := rng.IntN(3)
		rows = append(rows, fmt.Sprintf("%v,%d,%v", float64(g)+rng.NormFloat64(), g, rng.NormFloat64()))
	}
	writeFile(t, filepath.Join(dir, "all.csv"), "x,g,y\n"+strings.Join(rows, "\n")+"\n")
	for sh := range shards {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("part-%05d.csv", sh)), "x,g,y\n"+strings.Join(rows[sh*n/shards:(sh+1)*n/shards], "\n")+"\n")
	}
	model := filepath.Join(dir, "model.flow")
	runFlows(t, "fit", filepath.Join(dir, "all.csv"), "-o", model, "--context", "g", "--layers", "2", "--hidden", "8,8", "--epochs", "2", "--quiet")

	p, s := beam.NewPipelineWithRoot()
	out := filepath.Join(dir, "top.csv")
	WriteAnomaliesPerKey(s, out, TopAnomaliesPerKey(s, 4, KeyByColumn(s, "g", scorePipeline(t, s, dir, model, 64))))
	ptest.RunAndValidate(t, p)

	all := readCSV(t, runFlows(t, "score", model, filepath.Join(dir, "all.csv")))[1:] // row,line,log_density,x,y,g
	byKey := map[string][][]string{}
	for _, r := range all {
		byKey[r[5]] = append(byKey[r[5]], r)
	}
	var want []string
	for _, g := range []string{"0", "1", "2"} {
		rs := byKey[g]
		slices.SortStableFunc(rs, func(a, b []string) int {
			x, _ := strconv.ParseFloat(a[2], 64)
			y, _ := strconv.ParseFloat(b[2], 64)
			return cmpFloat(x, y)
		})
		for _, r := range rs[:4] {
			want = append(want, g+","+r[1]+","+strings.Join(r[2:], ","))
		}
	}
	var got []string
	for _, r := range readCSVFile(t, out)[1:] {
		got = append(got, r[0]+","+strconv.Itoa(shardLine(t, r[1], atoi(t, r[3]), n, shards))+","+strings.Join(r[4:], ","))
	}
	if !slices.Equal(got, want) {
		t.Errorf("per g:\n got %q\nwant %q", got, want)
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestEvaluate checks the evaluation against the log densities of flows
// score: the count, the exact mean (computed here with big.Float), the
// extremes and the histogram; and that chunks of 7 and of 4096 rows give
// the same bits.
func TestEvaluate(t *testing.T) {
	const n, shards = 5000, 4
	dir := t.TempDir()
	writeData(t, dir, n, shards, 6)
	model := fitModel(t, dir, filepath.Join(dir, "all.csv"), model.KindRealNVP)
	var evals []Evaluation
	for _, chunk := range []int{7, 4096} {
		p, s := beam.NewPipelineWithRoot()
		out := filepath.Join(dir, fmt.Sprintf("eval-%d.json", chunk))
		WriteEvaluation(s, out, Evaluate(s, scorePipeline(t, s, dir, model, chunk), EvaluateConfig{BinWidth: 0.25}))
		ptest.RunAndValidate(t, p)
		var e Evaluation
		if err := json.Unmarshal([]byte(readText(t, out)), &e); err != nil {
			t.Fatal(err)
		}
		evals = append(evals, e)
	}
	if fmt.Sprintf("%#v", evals[0]) != fmt.Sprintf("%#v", evals[1]) {
		t.Errorf("chunks of 7 rows and of 4096 differ:\n%#v\n%#v", evals[0], evals[1])
	}
	e := evals[0]

	sum := new(big.Float).SetPrec(4000)
	lo, hi := math.Inf(1), math.Inf(-1)
	bins := map[float64]int64{}
	for _, r := range readCSV(t, runFlows(t, "score", model, filepath.Join(dir, "all.csv")))[1:] {
		v, _ := strconv.ParseFloat(r[2], 64)
		sum.Add(sum, new(big.Float).SetFloat64(v))
		lo, hi = min(lo, v), max(hi, v)
		bins[math.Floor(v/0.25)*0.25]++
	}
	mean, _ := new(big.Float).SetPrec(53).Quo(sum, new(big.Float).SetInt64(n)).Float64()
	if e.Rows != n || e.MeanLogDensity != mean || e.Min != lo || e.Max != hi || e.NaN+e.NegInf+e.PosInf != 0 || e.BinWidth != 0.25 {
		t.Errorf("evaluation %v; want %d rows, mean %v, min %v, max %v", e, n, mean, lo, hi)
	}
	if len(e.Bins) != len(bins) {
		t.Errorf("%d bins, want %d", len(e.Bins), len(bins))
	}
	for i, b := range e.Bins {
		if bins[b.Lo] != b.Count || i > 0 && !(b.Lo > e.Bins[i-1].Lo) {
			t.Errorf("bin [%v, %v): %d rows, want %d", b.Lo, b.Lo+0.25, b.Count, bins[b.Lo])
		}
	}
}

// TestExactSum checks the exact mean against big.Float on values of every
// magnitude and sign, added in two orders and merged from parts.
func TestExactSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	vals := make([]float64, 5000)
	for i := range vals {
		vals[i] = math.Ldexp(rng.NormFloat64(), rng.IntN(2000)-1070)
	}
	vals = append(vals, math.SmallestNonzeroFloat64, -math.MaxFloat64, math.MaxFloat64, 1e300, math.Copysign(0, -1))
	sum := new(big.Float).SetPrec(5000)
	for _, v := range vals {
		sum.Add(sum, new(big.Float).SetFloat64(v))
	}
	want, _ := new(big.Float).SetPrec(53).Quo(sum, new(big.Float).SetInt64(int64(len(vals)))).Float64()
	if got := MeanLogDensity(vals); got != want {
		t.Errorf("mean %v, want %v", got, want)
	}
	var a, b exactSum
	perm := rng.Perm(len(vals))
	for i, j := range perm {
		if i%2 == 0 {
			a.add(vals[j])
		} else {
			b.add(vals[j])
		}
	}
	// Through the coder, as a runner merges.
	acc, err := decodeEvalAccum(encodeEvalAccum(evalAccum{sum: b, bins: map[int64]int64{}}))
	if err != nil {
		t.Fatal(err)
	}
	a.merge(&acc.sum)
	if got := a.mean(int64(len(vals))); got != want {
		t.Errorf("merged mean %v, want %v", got, want)
	}
}

// TestSampleMatchesCLI checks that the shards of a sample, in order, are
// the rows flows sample writes, bit for bit, whatever the number of shards,
// the runner (Prism, the direct runner) or GOMAXPROCS.
func TestSampleMatchesCLI(t *testing.T) {
	const n, seed = 10000, 11 // three blocks: 4096, 4096 and 1808 rows
	dir := t.TempDir()
	writeData(t, dir, 500, 1, 9)
	model := fitModel(t, dir, filepath.Join(dir, "all.csv"), model.KindNSFCoupling)
	want := runFlows(t, "sample", model, "-n", strconv.Itoa(n), "--seed", strconv.Itoa(seed))
	for _, c := range []struct {
		runner     string
		shards     int
		gomaxprocs int
	}{{"prism", 1, 0}, {"prism", 2, 0}, {"prism", 3, 1}, {"prism", 9, 0}, {"direct", 2, 0}} {
		t.Run(fmt.Sprintf("%s/shards=%d/procs=%d", c.runner, c.shards, c.gomaxprocs), func(t *testing.T) {
			if c.gomaxprocs > 0 {
				defer setMaxProcs(c.gomaxprocs)()
			}
			p, s := beam.NewPipelineWithRoot()
			mf, m, err := ReadModelFile(s, model)
			if err != nil {
				t.Fatal(err)
			}
			cfg := SampleConfig{N: n, Seed: seed, Shards: c.shards}
			blocks, err := Sample(s, mf, m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			o := NewOutput(filepath.Join(t.TempDir(), "sample"))
			WriteSample(s, o, cfg, blocks)
			if _, err := beam.Run(t.Context(), c.runner, p); err != nil {
				t.Fatal(err)
			}
			got := concatShards(t, o, min(c.shards, 3))
			if got != want {
				t.Errorf("the shards differ from flows sample (%d and %d bytes)", len(got), len(want))
			}
		})
	}
}

// concatShards returns the n shards of o concatenated, with the header of
// the first only.
func concatShards(t *testing.T, o Output, n int) string {
	t.Helper()
	var b strings.Builder
	files, _ := filepath.Glob(o.Prefix + "-*")
	if len(files) != n {
		t.Fatalf("%d shards %v, want %d", len(files), files, n)
	}
	for i := range n {
		text := readText(t, o.ShardName(i, n))
		if i > 0 {
			_, text, _ = strings.Cut(text, "\n")
		}
		b.WriteString(text)
	}
	return b.String()
}

// TestSampleGiven draws from a conditional model given a context, as flows
// sample --given does.
func TestSampleGiven(t *testing.T) {
	dir := t.TempDir()
	writeData(t, dir, 400, 1, 10)
	model := filepath.Join(dir, "model.flow")
	runFlows(t, "fit", filepath.Join(dir, "all.csv"), "-o", model, "--context", "d", "--layers", "1", "--hidden", "8", "--epochs", "2", "--quiet")
	want := runFlows(t, "sample", model, "-n", "5000", "--given", "0.5")
	p, s := beam.NewPipelineWithRoot()
	mf, m, err := ReadModelFile(s, model)
	if err != nil {
		t.Fatal(err)
	}
	cfg := SampleConfig{N: 5000, Shards: 2, Given: []float64{0.5}}
	blocks, err := Sample(s, mf, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := NewOutput(filepath.Join(dir, "sample"))
	WriteSample(s, o, cfg, blocks)
	ptest.RunAndValidate(t, p)
	if got := concatShards(t, o, 2); got != want {
		t.Errorf("the shards differ from flows sample --given")
	}
	if _, err := Sample(s, mf, m, SampleConfig{N: 10}); err == nil {
		t.Errorf("Sample without the context of a conditional model: no error")
	}
}

// setMaxProcs sets GOMAXPROCS and returns a function that restores it.
func setMaxProcs(n int) func() {
	old := runtime.GOMAXPROCS(n)
	return func() { runtime.GOMAXPROCS(old) }
}
