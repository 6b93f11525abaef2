package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/table"
)

// TestServeMixed serves a model of a mixed table (iris: four numbers and
// Species): rows carry their levels as strings, in arrays, objects and
// CSV, and score to flows score's bits, alone, batched and from
// concurrent clients; an unseen level or a number where a level belongs
// is an error naming the row and column; samples carry levels as text,
// flows sample's; the model's endpoint and card list the levels.
func TestServeMixed(t *testing.T) {
	dir := t.TempDir()
	copyFixture(t, dir, "iris.csv")
	mustRun(t, dir, "fit", "iris.csv", "-o", "iris.flow", "--epochs", "3", "--layers", "2", "--hidden", "8", "--seed", "4", "--quiet")
	p := startServer(t, dir, "iris.flow", "--data", "iris.csv")

	want := scoreCells(t, dir, "iris.flow", "iris.csv")
	data := readText(t, filepath.Join(dir, "iris.csv"))
	recs := readCSV(t, data)
	names := []string{"Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width", "Species"}
	var arrays, objects []string
	for _, r := range recs[1:] {
		// The file's columns: "", the four numbers, Species.
		arrays = append(arrays, fmt.Sprintf(`[%s,%q]`, strings.Join(r[1:5], ","), r[5]))
		obj := make([]string, 5)
		for j, n := range names[:4] {
			obj[j] = fmt.Sprintf("%q:%s", n, r[1+j])
		}
		obj[4] = fmt.Sprintf(`"Species":%q`, r[5])
		slices.Reverse(obj) // any order
		objects = append(objects, "{"+strings.Join(obj, ",")+"}")
	}
	for name, a := range map[string]answer{
		"arrays":  postJSON(t, p.url+"/v1/score", `{"rows":[`+strings.Join(arrays, ",")+`]}`),
		"objects": postJSON(t, p.url+"/v1/score", `{"rows":[`+strings.Join(objects, ",")+`]}`),
		"csv":     do(t, "POST", p.url+"/v1/score", "text/csv", []byte(data)),
	} {
		if got := logDensities(t, a); !slices.Equal(got, want) {
			t.Errorf("%s: served scores differ from flows score's:\n%v\n%v", name, got[:3], want[:3])
		}
	}
	// Every row alone, from 16 clients (batched with others' rows and
	// levels): the same bits.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := c; i < len(want); i += 16 {
				a := postJSON(t, p.url+"/v1/score", `{"rows":[`+arrays[i]+`]}`)
				if got := logDensities(t, a); len(got) != 1 || got[0] != want[i] {
					mu.Lock()
					t.Errorf("row %d alone: %v, want %s", i, got, want[i])
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// The latent coordinates come with the same scores.
	if got := logDensities(t, postJSON(t, p.url+"/v1/score?latent=true", `{"rows":[`+arrays[0]+`]}`)); got[0] != want[0] {
		t.Errorf("with latent: %v, want %s", got, want[0])
	}

	// Errors name the row and the column.
	for _, tc := range []struct {
		name, contentType, body string
		kind, msg               string
		row, index              int
	}{
		{"unseen level", "application/json", `{"rows":[` + arrays[0] + `,[5,3,1,0.2,"setosaa"]]}`, errUnknownLevel,
			`row 1: column "Species": level "setosaa" was not in the model's training rows (its levels: setosa, versicolor, virginica)`, 1, 4},
		{"unseen level in an object", "application/json", `{"rows":[{"Sepal.Length":5,"Sepal.Width":3,"Petal.Length":1,"Petal.Width":0.2,"Species":"rose"}]}`,
			errUnknownLevel, `row 0: column "Species": level "rose" was not in the model's training rows`, 0, -1},
		{"unseen level in CSV", "text/csv", "Species,Sepal.Length,Sepal.Width,Petal.Length,Petal.Width\nsetosa,5,3,1,0.2\nrose,5,3,1,0.2\n",
			errUnknownLevel, `body:3: column "Species": level "rose" was not in the model's training rows`, 1, -1},
		{"a number as a level", "application/json", `{"rows":[[5,3,1,0.2,2]]}`, errNotALevel,
			`row 0, column "Species": a number (2) is not a level: want a string, one of "setosa", "versicolor", "virginica"`, 0, 4},
		{"no level", "application/json", `{"rows":[[5,3,1,0.2]]}`, errBadWidth,
			"row 0 has 4 values; want 5 (Sepal.Length, Sepal.Width, Petal.Length, Petal.Width, Species)", 0, -1},
		{"a level where a number belongs", "application/json", `{"rows":[["setosa",3,1,0.2,"setosa"]]}`, errNotANumber,
			`row 0, column "Sepal.Length": a string ("setosa") is not a number`, 0, 0},
		{"an object without its level", "application/json", `{"rows":[{"Sepal.Length":5,"Sepal.Width":3,"Petal.Length":1,"Petal.Width":0.2}]}`,
			errMissingColumn, `row 0 has no column "Species"`, 0, -1},
	} {
		a := do(t, "POST", p.url+"/v1/score", tc.contentType, []byte(tc.body))
		e := errorOf(t, a).Error
		column := ""
		if _, after, ok := strings.Cut(tc.msg, `column "`); ok {
			column, _, _ = strings.Cut(after, `"`)
		}
		if a.code != 400 || e.Kind != tc.kind || !strings.Contains(e.Message, tc.msg) || e.Row == nil || *e.Row != tc.row ||
			column != "" && (e.Column == nil || *e.Column != column) || tc.index >= 0 && (e.Index == nil || *e.Index != tc.index) {
			t.Errorf("%s: %d %s", tc.name, a.code, a.body)
		}
	}

	// Samples: flows sample's numbers and levels.
	a := postJSON(t, p.url+"/v1/sample", `{"n": 300, "seed": 3}`)
	var smp struct {
		Columns []string
		Rows    [][]any
	}
	if err := json.Unmarshal(a.body, &smp); err != nil || a.code != 200 {
		t.Fatalf("sample: %d %s", a.code, a.body)
	}
	cli := readCSV(t, mustRun(t, dir, "sample", "iris.flow", "-n", "300", "--seed", "3").stdout)
	if !slices.Equal(smp.Columns, cli[0]) || len(smp.Rows) != 300 {
		t.Fatalf("sample: columns %q, %d rows; flows sample: %q", smp.Columns, len(smp.Rows), cli[0])
	}
	for i, row := range smp.Rows {
		got := make([]string, len(row))
		for j, v := range row {
			if f, ok := v.(float64); ok {
				got[j] = table.FormatFloat(f)
			} else {
				got[j] = v.(string)
			}
		}
		if !slices.Equal(got, cli[i+1]) {
			t.Errorf("sample row %d: %q, flows sample %q", i, got, cli[i+1])
			break
		}
	}

	// The model and its card list the levels.
	var doc struct {
		Categories []struct {
			Name   string
			Index  int
			Levels []string
		}
	}
	if err := json.Unmarshal(do(t, "GET", p.url+"/v1/model", "", nil).body, &doc); err != nil || len(doc.Categories) != 1 ||
		doc.Categories[0].Name != "Species" || doc.Categories[0].Index != 4 || !slices.Equal(doc.Categories[0].Levels, []string{"setosa", "versicolor", "virginica"}) {
		t.Errorf("/v1/model's categories: %+v (%v)", doc.Categories, err)
	}
	card := string(do(t, "GET", p.url+"/", "", nil).body)
	for _, w := range []string{"Categorical columns", "<code>Species</code>", "<code>versicolor</code>", `&#34;setosa&#34;]]}`} {
		if !strings.Contains(card, w) {
			t.Errorf("the card does not say %q", w)
		}
	}
	if a := do(t, "GET", p.url+"/corner.png", "", nil); a.code != 200 {
		t.Errorf("/corner.png: %d", a.code)
	}
}

// TestDecodeMixed: the JSON decoder reads a mixed table's levels as the
// model's own strings (escaped or not, in arrays and objects), without an
// allocation per level.
func TestDecodeMixed(t *testing.T) {
	cat, err := model.NewCategories([]string{"colour"}, []string{"red", "blue", "red", "green"})
	if err != nil {
		t.Fatal(err)
	}
	s := &schema{names: []string{"x"}, dim: 1, cat: cat, rowNames: []string{"x", "colour"}, maxRows: 1000, path: "m.flow"}
	req, err := decodeScoreJSON([]byte(`{"rows":[[1,"red"],[2,"gr\u0065en"]]}`), s)
	if err != nil {
		t.Fatal(err)
	}
	req2, err := decodeScoreJSON([]byte(`{"rows":[{"colour":"blue","x":3}]}`), s)
	if err != nil {
		t.Fatal(err)
	}
	got := append(req.cats, req2.cats...)
	if !slices.Equal(got, []string{"red", "green", "blue"}) || !slices.Equal(req.x.RawMatrix().Data, []float64{1, 2}) {
		t.Fatalf("levels %q, x %v", got, req.x.RawMatrix().Data)
	}
	for _, lv := range got {
		at, _ := slices.BinarySearch(cat.Levels[0], lv)
		if unsafe.StringData(lv) != unsafe.StringData(cat.Levels[0][at]) {
			t.Errorf("level %q is a copy, not the model's string", lv)
		}
	}
	body := func(n int) []byte {
		var b strings.Builder
		b.WriteString(`{"rows":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `[%d,"blue"]`, i)
		}
		b.WriteString("]}")
		return []byte(b.String())
	}
	b100, b1000 := body(100), body(1000)
	a100 := testing.AllocsPerRun(20, func() { decodeScoreJSON(b100, s) })
	a1000 := testing.AllocsPerRun(20, func() { decodeScoreJSON(b1000, s) })
	// Only the slices' growth (a few doublings) may add allocations.
	if a1000-a100 > 12 {
		t.Errorf("%v allocations for 100 rows, %v for 1000: levels allocate per row", a100, a1000)
	}
}
