package model

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gonormflows/flows"
)

// TestLeastParams checks that the bound Load applies before building a
// model never exceeds what a configuration really builds.
func TestLeastParams(t *testing.T) {
	for _, spec := range kinds {
		kind := spec.Kind
		if spec.image {
			for _, g := range []flows.GlowConfig{{Steps: 1, Hidden: 1}, {Steps: 2, Hidden: 5, Blocks: 2}, {Scales: 1, Steps: 3, Hidden: 8}} {
				cfg, spec, err := Config{Kind: kind, Shape: flows.Shape{C: 1, H: 4, W: 4}, Glow: g}.withDefaults()
				if err != nil {
					t.Fatal(err)
				}
				m, err := buildModel(cfg, spec, 16, make([]float64, 16), slices.Repeat([]float64{1}, 16), nil, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				if least := cfg.leastParams(spec, 16); least > uint64(len(m.Params)) || least == 0 {
					t.Errorf("%s %+v: bound %d, builds %d", kind, g, least, len(m.Params))
				}
			}
			continue
		}
		for _, dim := range []int{1, 2, 3, 5, 8} {
			if dim < spec.MinDim {
				continue
			}
			for _, hidden := range [][]int{{1}, {7}, {16, 3}, {4, 9, 2}} {
				for _, bins := range []int{2, 9} {
					cfg, spec, err := Config{Kind: kind, Layers: 3, Hidden: hidden, Bins: bins}.withDefaults()
					if err != nil {
						t.Fatal(err)
					}
					m, err := buildModel(cfg, spec, dim, make([]float64, dim), slices.Repeat([]float64{1}, dim), nil, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					if least := cfg.leastParams(spec, dim); least > uint64(len(m.Params)) {
						t.Errorf("%s dim %d hidden %v bins %d: bound %d, builds %d", kind, dim, hidden, bins, least, len(m.Params))
					}
				}
			}
		}
	}
}

// FuzzReadModel feeds the model-file decoder arbitrary bytes, and the same
// bytes with their trailing checksum made to match, so that mutations reach
// the parser behind the checksum. It must never panic or allocate beyond
// what the file's size implies; every error must wrap one of the Err
// sentinels; and a file it accepts must write back to a file that reads
// back to the same model.
func FuzzReadModel(f *testing.F) {
	files, _ := filepath.Glob("testdata/models/*.flow")
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(fileMagic))
	sentinels := []error{ErrNotModelFile, ErrTruncated, ErrChecksum, ErrNewerFormat, ErrParamCount, ErrNonFinite, ErrMalformed}
	check := func(t *testing.T, data []byte) {
		m, err := Read(bytes.NewReader(data))
		if err != nil {
			if !slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		var buf bytes.Buffer
		if _, err := m.WriteTo(&buf); err != nil {
			t.Fatalf("accepted model does not write: %v", err)
		}
		m2, err := Read(&buf)
		if err != nil {
			t.Fatalf("written model does not read back: %v", err)
		}
		if !m.Config.equal(m2.Config) || !slices.Equal(m.Params, m2.Params) ||
			!slices.Equal(m.Mean, m2.Mean) || !slices.Equal(m.Scale, m2.Scale) {
			t.Fatal("model changed in a write and read")
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		check(t, data)
		if len(data) >= 16 {
			fixed := slices.Clone(data)
			binary.LittleEndian.PutUint32(fixed[len(fixed)-4:], crc32.Checksum(fixed[:len(fixed)-4], castagnoli))
			check(t, fixed)
		}
	})
}
