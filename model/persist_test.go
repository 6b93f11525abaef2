package model

// These tests are inside the package so that the atomic-save test can make
// the write fail midway through writeFileAtomic.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gonormflows/flows"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/atomicfile"
)

// persistModel makes a small model of kind on dim columns of data and
// moves its parameters away from their initial values (as training would),
// so that a round trip that lost them would show.
func persistModel(t *testing.T, kind Kind, dim int) *Model {
	t.Helper()
	rng := flows.NewKey(uint64(dim)).Rand()
	x := mat.NewDense(64, dim, nil)
	for i := range 64 {
		for j := range dim {
			x.Set(i, j, 10*float64(j)+float64(j+1)*rng.NormFloat64())
		}
	}
	m, err := New(Config{Kind: kind, Layers: 3, Hidden: []int{16, 16}, Activation: flows.SiLU, Seed: 1<<63 + 12345}, x, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Params {
		m.Params[i] += 0.1 * rng.NormFloat64()
	}
	return m
}

// encode returns m's file bytes.
func encode(t *testing.T, m *Model) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// fixCRC rewrites the checksum of a file image after an edit.
func fixCRC(b []byte) []byte {
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(b[:len(b)-4], castagnoli))
	return b
}

// sameModel fails unless b is a bit-exact copy of a: same description, same
// parameters, and the same log densities and samples, bit for bit.
func sameModel(t *testing.T, a, b *Model) {
	t.Helper()
	if !a.Config.equal(b.Config) || a.Dim != b.Dim {
		t.Fatalf("loaded %+v dim %d, saved %+v dim %d", b.Config, b.Dim, a.Config, a.Dim)
	}
	bits := func(v []float64) []uint64 {
		u := make([]uint64, len(v))
		for i, f := range v {
			u[i] = math.Float64bits(f)
		}
		return u
	}
	for _, c := range []struct {
		what string
		a, b []float64
	}{{"Mean", a.Mean, b.Mean}, {"Scale", a.Scale, b.Scale}, {"Params", a.Params, b.Params}} {
		if !slices.Equal(bits(c.a), bits(c.b)) {
			t.Fatalf("%s differ after the round trip", c.what)
		}
	}
	x := a.Sample(flows.NewKey(99), 50, nil)
	if !slices.Equal(bits(a.LogPDF(x, nil)), bits(b.LogPDF(x, nil))) {
		t.Fatal("log densities differ after the round trip")
	}
	if !slices.Equal(bits(x.RawMatrix().Data), bits(b.Sample(flows.NewKey(99), 50, nil).RawMatrix().Data)) {
		t.Fatal("samples differ after the round trip")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		kind Kind
		dim  int
	}{
		{KindRealNVP, 2}, {KindRealNVP, 5}, {KindGlow, 3}, {KindMAF, 1}, {KindMAF, 4},
		{KindNSFCoupling, 3}, {KindNSFAutoregressive, 1}, {KindNSFAutoregressive, 3},
		{KindNAF, 3}, {KindBNAF, 3}, {KindSOS, 2}, {KindBernstein, 3},
	} {
		name := fmt.Sprintf("%s-%d", c.kind, c.dim)
		m := persistModel(t, c.kind, c.dim)
		path := filepath.Join(dir, name+".flow")
		if err := m.Save(path); err != nil {
			t.Fatal(err)
		}
		got, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameModel(t, m, got)

		img := encode(t, m)
		got, err = Read(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameModel(t, m, got)
		if again := encode(t, got); !bytes.Equal(img, again) {
			t.Errorf("%s: a loaded model does not write the same bytes", name)
		}
		onDisk, _ := os.ReadFile(path)
		if !bytes.Equal(img, onDisk) {
			t.Errorf("%s: Save and WriteTo write different bytes", name)
		}
	}
}

// TestSaveFormat checks the documented byte layout.
func TestSaveFormat(t *testing.T) {
	m := persistModel(t, KindRealNVP, 2)
	b := encode(t, m)
	if string(b[:8]) != "GOFLOWS\n" {
		t.Errorf("magic %q", b[:8])
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != 2 {
		t.Errorf("version %d", v)
	}
	j := int(binary.LittleEndian.Uint32(b[12:]))
	want := `{"kind":"realnvp","layers":3,"hidden":[16,16],"activation":"SiLU","logScaleBound":3,"init":"torch","scaling":"robust","seed":"9223372036854788153","dim":2}`
	if got := string(b[16 : 16+j]); got != want {
		t.Errorf("header\n%s\nwant\n%s", got, want)
	}
	d, p := 2, len(m.Params)
	if len(b) != 28+j+16*d+8*p {
		t.Fatalf("%d bytes, want 28+J+16d+8P = %d", len(b), 28+j+16*d+8*p)
	}
	at := func(off int) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b[off:])) }
	if at(16+j) != m.Mean[0] || at(16+j+8*d) != m.Scale[0] || at(24+j+16*d) != m.Params[0] || at(16+j+16*d+8*p) != m.Params[p-1] {
		t.Error("mean, scale or parameters are not where the format puts them")
	}
	if n := binary.LittleEndian.Uint64(b[16+j+16*d:]); n != uint64(p) {
		t.Errorf("parameter count %d, want %d", n, p)
	}
	if crc := binary.LittleEndian.Uint32(b[len(b)-4:]); crc != crc32.Checksum(b[:len(b)-4], crc32.MakeTable(crc32.Castagnoli)) {
		t.Error("the last 4 bytes are not the CRC-32C of the rest")
	}

	// Spline kinds write their bins and bound too, defaults filled in.
	s := persistModel(t, KindNSFCoupling, 2)
	b = encode(t, s)
	j = int(binary.LittleEndian.Uint32(b[12:]))
	want = `{"kind":"nsf-coupling","layers":3,"hidden":[16,16],"activation":"SiLU","bins":8,"bound":3,"init":"torch","linear":"permutation","scaling":"robust","seed":"9223372036854788153","dim":2}`
	if got := string(b[16 : 16+j]); got != want {
		t.Errorf("header\n%s\nwant\n%s", got, want)
	}
	_, err := Read(bytes.NewReader(editHeader(t, b, `"bins":8`, `"bins":9`)))
	if !errors.Is(err, ErrParamCount) {
		t.Errorf("bins 8 → 9: err = %v, want ErrParamCount", err)
	}
}

// sections returns the byte ranges of a file image's sections.
func sections(b []byte, dim int) map[string][2]int {
	j := int(binary.LittleEndian.Uint32(b[12:]))
	meanAt := 16 + j
	countAt := meanAt + 16*dim
	return map[string][2]int{
		"magic":           {0, 8},
		"format version":  {8, 12},
		"header length":   {12, 16},
		"header":          {16, meanAt},
		"mean":            {meanAt, meanAt + 8*dim},
		"scale":           {meanAt + 8*dim, countAt},
		"parameter count": {countAt, countAt + 8},
		"parameters":      {countAt + 8, len(b) - 4},
		"checksum":        {len(b) - 4, len(b)},
	}
}

func TestLoadTruncated(t *testing.T) {
	m := persistModel(t, KindGlow, 3)
	full := encode(t, m)
	sec := sections(full, 3)
	cases := map[string][]int{
		"magic":           {0, 1, 7},
		"format version":  {8, 11},
		"header length":   {12, 15},
		"header":          {16, 17, sec["header"][1] - 1},
		"mean":            {sec["mean"][0], sec["mean"][0] + 9},
		"scale":           {sec["scale"][0] + 3},
		"parameter count": {sec["parameter count"][0], sec["parameter count"][1] - 1},
		"parameters":      {sec["parameters"][0], sec["parameters"][0] + 1, (sec["parameters"][0] + sec["parameters"][1]) / 2, sec["parameters"][1] - 1},
		"checksum":        {len(full) - 4, len(full) - 1},
	}
	dir := t.TempDir()
	for section, offs := range cases {
		for _, off := range offs {
			_, err := Read(bytes.NewReader(full[:off]))
			want := fmt.Sprintf("ends at byte offset %d, inside the %s", off, section)
			if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), want) {
				t.Errorf("truncated at %d: err = %v, want ErrTruncated saying %q", off, err, want)
			}
		}
	}
	// Load says which file.
	path := filepath.Join(dir, "short.flow")
	if err := os.WriteFile(path, full[:100], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); !errors.Is(err, ErrTruncated) || !strings.HasPrefix(err.Error(), "flows: model file "+path+": truncated") {
		t.Errorf("Load: err = %v", err)
	}
}

func TestLoadFlippedByte(t *testing.T) {
	m := persistModel(t, KindRealNVP, 3)
	full := encode(t, m)
	for section, r := range sections(full, 3) {
		for _, off := range []int{r[0], (r[0] + r[1]) / 2, r[1] - 1} {
			for _, mask := range []byte{0x01, 0x80, 0xff} {
				b := slices.Clone(full)
				b[off] ^= mask
				_, err := Read(bytes.NewReader(b))
				want := ErrChecksum
				if section == "magic" {
					want = ErrNotModelFile
				}
				if !errors.Is(err, want) {
					t.Errorf("%s: byte %d ^ %#x: err = %v, want %v", section, off, mask, err, want)
				}
			}
		}
	}
}

func TestLoadNewerVersion(t *testing.T) {
	b := encode(t, persistModel(t, KindMAF, 2))
	binary.LittleEndian.PutUint32(b[8:], 4)
	_, err := Read(bytes.NewReader(fixCRC(b)))
	if !errors.Is(err, ErrNewerFormat) || !strings.Contains(err.Error(), "format version 4 is newer than this library's 3") {
		t.Errorf("err = %v", err)
	}
	// Without the fixed checksum the same edit is damage.
	binary.LittleEndian.PutUint32(b[8:], 5)
	if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrChecksum) {
		t.Errorf("bumped version, stale checksum: err = %v, want ErrChecksum", err)
	}
	binary.LittleEndian.PutUint32(b[8:], 0)
	if _, err := Read(bytes.NewReader(fixCRC(b))); !errors.Is(err, ErrMalformed) {
		t.Errorf("version 0: err = %v, want ErrMalformed", err)
	}
}

// editHeader replaces old by new (of the same length) in the JSON header
// and fixes the checksum, so that only the check on the content can fire.
func editHeader(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if len(old) != len(new) {
		t.Fatal("editHeader keeps the header's length")
	}
	b = slices.Clone(b)
	j := int(binary.LittleEndian.Uint32(b[12:]))
	i := bytes.Index(b[16:16+j], []byte(old))
	if i < 0 {
		t.Fatalf("%q not in the header %s", old, b[16:16+j])
	}
	copy(b[16+i:], new)
	return fixCRC(b)
}

func TestLoadConfigMismatch(t *testing.T) {
	m := persistModel(t, KindRealNVP, 3)
	b := encode(t, m)
	_, err := Read(bytes.NewReader(editHeader(t, b, `"layers":3`, `"layers":2`)))
	want := fmt.Sprintf("config builds %d parameters, file has %d", 2*len(m.Params)/3, len(m.Params))
	if !errors.Is(err, ErrParamCount) || !strings.Contains(err.Error(), want) {
		t.Errorf("layers 3 → 2: err = %v, want ErrParamCount saying %q", err, want)
	}
	_, err = Read(bytes.NewReader(editHeader(t, b, `"hidden":[16,16]`, `"hidden":[16,17]`)))
	if !errors.Is(err, ErrParamCount) {
		t.Errorf("hidden 16 → 17: err = %v, want ErrParamCount", err)
	}
	for _, c := range [][2]string{
		{`"kind":"realnvp"`, `"kind":"realnvq"`},
		{`"activation":"SiLU"`, `"activation":"SiLV"`},
		{`"seed"`, `"sead"`},
		{`"layers":3`, `"layers":0`},
		{`"dim":3`, `"dim":0`},
	} {
		_, err := Read(bytes.NewReader(editHeader(t, b, c[0], c[1])))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s → %s: err = %v, want ErrMalformed", c[0], c[1], err)
		}
	}
}

// TestConfigJSON: a Config marshals to JSON and back whatever it leaves
// unset, as a user's own files or a pipeline's serialisation need.
func TestConfigJSON(t *testing.T) {
	for _, c := range []Config{
		{},
		{Kind: KindMAF, Hidden: []int{8}},
		{Kind: KindGlow, Init: flows.InitHe, Linear: flows.LinearOrthogonal, Scaling: ScalingMoments, Seed: 1 << 63},
	} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		var back Config
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !back.equal(c) {
			t.Errorf("%s reads back as %+v, want %+v", b, back, c)
		}
	}
	for _, bad := range []string{`{"init":"xavier"}`, `{"scaling":"minmax"}`, `{"linear":"identity"}`} {
		var c Config
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestLoadNonFinite(t *testing.T) {
	m := persistModel(t, KindMAF, 2)
	full := encode(t, m)
	sec := sections(full, 2)
	put := func(off int, v float64) []byte {
		b := slices.Clone(full)
		binary.LittleEndian.PutUint64(b[off:], math.Float64bits(v))
		return fixCRC(b)
	}
	for _, c := range []struct {
		off  int
		v    float64
		kind error
		want string
	}{
		{sec["parameters"][0] + 8*5, math.NaN(), ErrNonFinite, "parameter 5 is NaN"},
		{sec["parameters"][1] - 8, math.Inf(1), ErrNonFinite, fmt.Sprintf("parameter %d is +Inf", len(m.Params)-1)},
		{sec["mean"][0] + 8, math.Inf(-1), ErrNonFinite, "mean 1 is -Inf"},
		{sec["scale"][0], math.NaN(), ErrNonFinite, "scale 0 is NaN"},
		{sec["scale"][0], 0, ErrMalformed, "scale 0 is 0"},
		{sec["scale"][0], -1, ErrMalformed, "scale 0 is -1"},
	} {
		_, err := Read(bytes.NewReader(put(c.off, c.v)))
		if !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %v saying %q", err, c.kind, c.want)
		}
	}
}

func TestLoadNotAModel(t *testing.T) {
	for _, data := range []string{"hello, world", "GOFLOWZ\n and more", "PK\x03\x04", "G"} {
		_, err := Read(strings.NewReader(data))
		want := ErrNotModelFile
		if data == "G" {
			want = ErrTruncated // a prefix of the magic
		}
		if !errors.Is(err, want) {
			t.Errorf("%q: err = %v, want %v", data, err, want)
		}
	}
	b := encode(t, persistModel(t, KindMAF, 1))
	b = fixCRC(append(b[:len(b)-4:len(b)-4], 0, 0, 0, 0, 0, 0, 0, 0))
	if _, err := Read(bytes.NewReader(b)); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing bytes: err = %v, want ErrMalformed", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestSaveRefuses(t *testing.T) {
	m := persistModel(t, KindMAF, 2)
	path := filepath.Join(t.TempDir(), "m.flow")
	bad := *m
	bad.Params = slices.Clone(m.Params)
	bad.Params[3] = math.NaN()
	if err := bad.Save(path); err == nil || !strings.Contains(err.Error(), "parameter 3 is NaN") {
		t.Errorf("NaN parameter: err = %v", err)
	}
	bad.Params = m.Params[:len(m.Params)-1]
	if err := bad.Save(path); err == nil || !strings.Contains(err.Error(), "parameters") {
		t.Errorf("short parameters: err = %v", err)
	}
	bad = *m
	bad.Config.Layers = 0
	if _, err := bad.WriteTo(io.Discard); err == nil {
		t.Error("incomplete Config: no error")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused Save left a file: %v", err)
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct {
	w     io.Writer
	limit int
}

var errInjected = errors.New("injected write failure")

func (f *failingWriter) Write(b []byte) (int, error) {
	if len(b) > f.limit {
		n, _ := f.w.Write(b[:f.limit])
		f.limit = 0
		return n, errInjected
	}
	f.limit -= len(b)
	return f.w.Write(b)
}

// listDir returns the names in dir.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestSaveAtomic makes a save over an existing file fail midway through
// writing (after the temporary file has received part of the new model)
// and checks that the old file is untouched and no temporary file is left.
func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.flow")
	old := persistModel(t, KindRealNVP, 2)
	if err := old.Save(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	next := persistModel(t, KindGlow, 4)
	for _, limit := range []int{0, 10, 1000, len(encode(t, next)) - 1} {
		var written int
		err := atomicfile.Write(path, func(w io.Writer) error {
			fw := &failingWriter{w: w, limit: limit}
			n, err := next.writeTo(fw)
			written = int(n)
			return err
		})
		if !errors.Is(err, errInjected) {
			t.Fatalf("limit %d: err = %v, want the injected failure", limit, err)
		}
		if written != limit {
			t.Fatalf("limit %d: %d bytes written before the failure", limit, written)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatalf("limit %d: the old file changed", limit)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"model.flow"}) {
			t.Fatalf("limit %d: directory holds %v", limit, names)
		}
	}
	if _, err := Load(path); err != nil {
		t.Fatal(err)
	}

	// A save that cannot rename (the target is a directory) also cleans up.
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(filepath.Join(sub, "x.flow", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := next.Save(filepath.Join(sub, "x.flow")); err == nil {
		t.Error("Save over a directory: no error")
	}
	if names := listDir(t, sub); !slices.Equal(names, []string{"x.flow"}) {
		t.Errorf("directory holds %v", names)
	}
	// A save into a directory that does not exist fails before writing.
	if err := next.Save(filepath.Join(dir, "none", "m.flow")); err == nil {
		t.Error("Save into a missing directory: no error")
	}
}

// TestSaveConcurrent saves different models to one path from many
// goroutines: every rename is atomic, so the file is always one of them,
// whole.
func TestSaveConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.flow")
	models := make([]*Model, 6)
	for i := range models {
		models[i] = persistModel(t, KindMAF, 1+i%3)
	}
	var wg sync.WaitGroup
	for _, m := range models {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.Save(path); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range models {
		if got.Dim == m.Dim && slices.Equal(got.Params, m.Params) {
			return
		}
	}
	t.Error("the file holds none of the saved models")
}

func TestSaveKeepsModeAndLink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes or easy symlinks")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "m.flow")
	m := persistModel(t, KindMAF, 2)
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after Save over a 0600 file", fi.Mode().Perm())
	}
	link := filepath.Join(dir, "link.flow")
	if err := os.Symlink("m.flow", link); err != nil {
		t.Skip(err)
	}
	other := persistModel(t, KindMAF, 3)
	if err := other.Save(link); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	if got, err := Load(path); err != nil || got.Dim != 3 {
		t.Errorf("the link's target was not updated: %v", err)
	}
}

func TestWriteToError(t *testing.T) {
	m := persistModel(t, KindMAF, 2)
	n, err := m.WriteTo(&failingWriter{w: io.Discard, limit: 20})
	if !errors.Is(err, errInjected) || n != 20 || !strings.HasPrefix(err.Error(), "flows: ") {
		t.Errorf("n = %d, err = %v", n, err)
	}
}
