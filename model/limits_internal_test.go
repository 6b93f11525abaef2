package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
)

// TestMain fixes the default limit at 8 GiB, so that what the tests refuse
// does not depend on the machine's memory.
func TestMain(m *testing.M) {
	os.Setenv(MemoryEnv, "8G")
	os.Exit(m.Run())
}

// sizeData is n rows of dim columns of distinct values.
func sizeData(n, dim int) *mat.Dense {
	rng := flows.NewKey(7).Rand()
	x := mat.NewDense(n, dim, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	return x
}

// TestEstimateCoversParams checks the estimate's parameter count against
// built models of every kind: never below, and within a factor of 4 (the
// estimate rounds up, it does not guess).
func TestEstimateCoversParams(t *testing.T) {
	for _, k := range kinds {
		if k.image {
			continue // image kinds: TestImageEstimate
		}
		for _, dim := range []int{1, 2, 5, 12} {
			for _, cdim := range []int{0, 3} {
				for _, hidden := range [][]int{{8}, {16, 24}} {
					if dim < k.MinDim {
						continue
					}
					cfg, spec, err := Config{Kind: k.Kind, Layers: 2, Hidden: hidden, Bins: 4}.withDefaults()
					if err != nil {
						t.Fatal(err)
					}
					mean, scale := make([]float64, dim), make([]float64, dim)
					for i := range scale {
						scale[i] = 1
					}
					var cm, cs []float64
					for range cdim {
						cm, cs = append(cm, 0), append(cs, 1)
					}
					m, err := buildModel(cfg, spec, dim, mean, scale, cm, cs, nil)
					if err != nil {
						t.Fatal(err)
					}
					got, est := uint64(len(m.Params)), cfg.estimate(spec, dim, cdim).params
					if est < got || est > 4*got+64 {
						t.Errorf("%s dim %d context %d hidden %v: estimate %d parameters, model has %d", k.Kind, dim, cdim, hidden, est, got)
					}
				}
			}
		}
	}
}

// allocated returns the bytes f allocates (TotalAlloc) and its duration.
func allocated(f func()) (uint64, time.Duration) {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	start := time.Now()
	f()
	d := time.Since(start)
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc, d
}

// TestBlockOverhead measures what one more block costs New beyond its
// parameters, and checks that the estimate's fixed cost per block covers it.
func TestBlockOverhead(t *testing.T) {
	x := sizeData(20, 4)
	for _, k := range kinds {
		if k.image {
			continue // rows of pixels of a shape, not 4 columns
		}
		cost := func(layers int) uint64 {
			b, _ := allocated(func() {
				if _, err := New(Config{Kind: k.Kind, Layers: layers, Hidden: []int{2}, Bins: 2}, x, nil); err != nil {
					t.Fatal(err)
				}
			})
			return b
		}
		perBlock := (int64(cost(120)) - int64(cost(20))) / 100
		cfg, spec, _ := Config{Kind: k.Kind, Layers: 1, Hidden: []int{2}, Bins: 2}.withDefaults()
		e := cfg.estimate(spec, 4, 0)
		if est := e.fixed + 20*e.row; int64(est) < perBlock {
			t.Errorf("%s: one block allocates %d bytes, the estimate says %d", k.Kind, perBlock, est)
		}
		t.Logf("%s: %d bytes per block measured, %d estimated", k.Kind, perBlock, e.fixed+20*e.row)
	}
}

// TestNewSizeBombs checks that sizes far beyond any machine are refused by
// New before allocation: each answered in under a second with under 100 MB
// allocated, with a *SizeError naming the size.
func TestNewSizeBombs(t *testing.T) {
	small := sizeData(20, 3)
	wide := sizeData(1, 1_100_000) // the one-line CSV of 1.1M numbers
	for _, tc := range []struct {
		name  string
		cfg   Config
		x     *mat.Dense
		field string
	}{
		{"layers", Config{Layers: 100_000_000}, small, "Layers"},
		{"hidden", Config{Hidden: []int{100_000_000}}, small, "Hidden"},
		{"hidden maf", Config{Kind: KindMAF, Hidden: []int{100_000, 100_000}}, small, "Hidden"},
		{"bins", Config{Bins: 100_000_000}, small, ""}, // refused by SplineConfig
		{"bins and hidden", Config{Bins: 900, Hidden: []int{100_000}}, small, "Hidden"},
		{"bnaf layers", Config{Kind: KindBNAF, Layers: 100_000}, small, "Layers"},
		{"bnaf hidden", Config{Kind: KindBNAF, Hidden: []int{100_000_000}}, small, "Hidden"},
		{"wide glow", Config{Kind: KindGlow}, wide, "columns"},
		{"wide default", Config{}, wide, "columns"},
	} {
		var err error
		b, d := allocated(func() { _, err = New(tc.cfg, tc.x, nil) })
		var se *SizeError
		switch {
		case err == nil:
			t.Errorf("%s: no error", tc.name)
		case tc.field == "": // refused by another check
		case !errors.As(err, &se):
			t.Errorf("%s: got %v, want a SizeError", tc.name, err)
		case se.Field != tc.field || !strings.Contains(err.Error(), MemoryEnv):
			t.Errorf("%s: %v: want field %s", tc.name, err, tc.field)
		}
		if b > 100<<20 || d > time.Second {
			t.Errorf("%s: refused after allocating %d bytes in %v", tc.name, b, d)
		}
		t.Logf("%s: %v (%d bytes, %v)", tc.name, err, b, d)
	}
}

// TestLimits checks the limit itself: a small model passes the default,
// fails a limit below its estimate, and CheckRows counts rows × columns.
func TestLimits(t *testing.T) {
	x := sizeData(50, 3)
	if _, err := New(Config{}, x, nil); err != nil {
		t.Fatal(err)
	}
	if DefaultLimits().Memory != 8<<30 {
		t.Errorf("default limit %d bytes with %s=8G", DefaultLimits().Memory, MemoryEnv)
	}
	if total := memTotal(); runtime.GOOS == "linux" && total < 64<<20 {
		t.Errorf("MemTotal read as %d bytes", total)
	}
	var se *SizeError
	if err := (Limits{Memory: 1 << 20}).CheckConfig(Config{Hidden: []int{2000}}, 3, 0, 50); !errors.As(err, &se) || se.Field != "Hidden" {
		t.Errorf("1 MiB limit, hidden 2000: %v", err)
	}
	// Rows count where New's data-dependent initialisation passes over them.
	if err := (Limits{Memory: 1 << 30}).CheckConfig(Config{Kind: KindGlow}, 3, 0, 10_000_000); !errors.As(err, &se) || se.Field != "rows" {
		t.Errorf("glow, 10M rows, 1 GiB: %v", err)
	}
	if err := (Limits{Memory: 1 << 30}).CheckConfig(Config{}, 3, 0, 10_000_000); err != nil {
		t.Errorf("nsf-coupling, 10M rows, 1 GiB: %v", err)
	}
	if err := (Limits{Memory: 1 << 20}).CheckConfig(Config{Hidden: []int{8}}, 3, 0, 50); err != nil {
		t.Errorf("1 MiB limit, hidden 8: %v", err)
	}
	if err := (Limits{Memory: 1 << 20}).CheckRows("-n", 1<<17, 2, 0); !errors.As(err, &se) || se.Field != "-n" || se.Bytes != 2<<20 {
		t.Errorf("1 MiB of rows: %v", err)
	}
	if err := (Limits{Memory: 1 << 20}).CheckRows("-n", 1<<15, 2, 0); err != nil {
		t.Errorf("half a MiB of rows: %v", err)
	}
	for s, want := range map[string]uint64{"8G": 8 << 30, "512MiB": 512 << 20, "1000": 1000, "2k": 2048, "3TB": 3 << 40} {
		if got, err := ParseBytes(s); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "0", "-1", "1.5G", "G", "99999999999T"} {
		if _, err := ParseBytes(s); err == nil {
			t.Errorf("ParseBytes(%q): no error", s)
		}
	}
}

// TestReadSizeBombs checks that a model file whose header asks for an
// absurd model (what a server's reload or Beam's model input reads) is
// refused in under a second with under 100 MB allocated.
func TestReadSizeBombs(t *testing.T) {
	m, err := New(Config{Kind: KindGlow, Layers: 2, Hidden: []int{4}}, sizeData(30, 3), nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	for _, edit := range [][2]string{
		{`"layers":2`, `"layers":100000000`},
		{`"hidden":[4]`, `"hidden":[100000000]`},
		{`"dim":3`, `"dim":1100000`},
	} {
		file := reheader(t, buf.Bytes(), edit[0], edit[1])
		var err error
		b, d := allocated(func() { _, err = Read(bytes.NewReader(file)) })
		t.Logf("%s: %v", edit[1], err)
		if err == nil || b > 100<<20 || d > time.Second {
			t.Errorf("%s: %v after allocating %d bytes in %v", edit[1], err, b, d)
		}
	}
}

// reheader returns the model file data with old replaced by new in its
// JSON header, the header length and the checksum fixed.
func reheader(t *testing.T, data []byte, old, new string) []byte {
	t.Helper()
	hlen := int(binary.LittleEndian.Uint32(data[12:16]))
	h := string(data[16 : 16+hlen])
	if !strings.Contains(h, old) {
		t.Fatalf("header %s has no %s", h, old)
	}
	h = strings.Replace(h, old, new, 1)
	out := append(append(slices.Clone(data[:16]), h...), data[16+hlen:len(data)-4]...)
	binary.LittleEndian.PutUint32(out[12:16], uint32(len(h)))
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli))
}

// TestImageEstimate: the estimate of an image kind covers its parameters,
// and an MNIST-sized model is within the default limits.
func TestImageEstimate(t *testing.T) {
	for _, shape := range []flows.Shape{{C: 1, H: 4, W: 4}, {C: 1, H: 28, W: 28}, {C: 3, H: 8, W: 8}} {
		cfg, spec, err := Config{Kind: KindImageGlow, Shape: shape}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		d := shape.C * shape.H * shape.W
		mean, scale := make([]float64, d), make([]float64, d)
		for i := range scale {
			scale[i] = 1
		}
		m, err := buildModel(cfg, spec, d, mean, scale, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if e := cfg.estimate(spec, d, 0); e.params < uint64(len(m.Params)) {
			t.Errorf("%v: estimate %d parameters, model has %d", shape, e.params, len(m.Params))
		}
	}
}
