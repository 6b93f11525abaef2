package model

// Model files.
//
// # File format, version 2
//
// All integers and floats are little-endian; floats are IEEE-754 binary64,
// written bit for bit. With J the length of the JSON header, d = Dim,
// e = ContextDim and P the number of parameters:
//
//	offset             size  field
//	0                  8     magic "GOFLOWS\n" (47 4F 46 4C 4F 57 53 0A)
//	8                  4     format version, uint32 = 2
//	12                 4     J, uint32 (1 ≤ J ≤ 2²⁰)
//	16                 J     header, UTF-8 JSON (see below)
//	16+J               8·d   Mean, float64 × d
//	16+J+8d            8·d   Scale, float64 × d
//	16+J+16d           8·e   ContextMean, float64 × e
//	16+J+16d+8e        8·e   ContextScale, float64 × e
//	16+J+16d+16e       8     P, uint64
//	24+J+16d+16e       8·P   Params, float64 × P
//	24+J+16d+16e+8P    4     CRC-32C (Castagnoli) of every byte before it, uint32
//
// and the file ends there. The header is one JSON object: the Config, by
// its JSON field names, with "dim" and, for a conditional model,
// "contextDim":
//
//	{"kind":"realnvp","layers":5,"hidden":[64,64],"activation":"ReLU","seed":"0","columns":["a","b"],"dim":2}
//
// activation is the Activation's name; seed the Config's Seed as a decimal
// string (exact beyond 2⁵³); bins and bound appear only for spline kinds,
// columns and context only when the model has names, dequantize and bounds
// when set, and training (Model.Training: rows, epochs, best epoch, its
// training and validation NLL and the Gaussian baseline's) when the model
// was fitted by Model.Fit. Every default is
// written out, so a file does not depend on this library's defaults. The
// parameters are in Dist's layout; Dist itself is not stored but rebuilt by
// Load from the header and the standardisations, with NewKey(seed) (which
// also redraws the layers' fixed structure, such as InvertibleLinear's
// permutation).
//
// Version 3 is version 2 whose header may also hold "categories" (a mixed
// table's model) and "precision" ("float32"; absent for float64): a file
// is written as version 3 only when it holds either, so a model of numbers
// in float64 is still a version 2 file, byte for byte.
//
// Version 1, written before conditional models and column names, is
// version 2 without the context sections, with a header of kind, dim,
// layers, hidden, activation, bins, bound and seed only; Load reads it as
// the same model with no names and no context.
//
// The file stores the configuration, not the layers: Load rebuilds them
// with this library's constructors. So a release that changes a kind's
// architecture, a layer's parameter layout, or what a layer draws from its
// key must write a new format version, and read the old one by a tested
// migration (testdata/models pins a file of every kind). Every later version
// will also start with the magic and a uint32 version and end with the
// CRC-32C of everything before it, so a reader can tell a damaged file
// (checksum mismatch) from a newer one. CRC-32C detects accidental damage
// (every burst of up to 32 bits, and all but 2⁻³² of the rest); it is not a
// defence against deliberate tampering.

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

	"github.com/gonormflows/flows"

	"github.com/gonormflows/flows/internal/atomicfile"
)

// Errors of Read and Load. Every error they return for a bad file
// wraps exactly one of these (test with errors.Is) and says more: the byte
// offset where a truncated file ends, the stored and computed checksums,
// the versions, the parameter counts, the index of a non-finite number.
var (
	// ErrNotModelFile: the data does not start with the magic bytes.
	ErrNotModelFile = errors.New("flows: not a model file")
	// ErrTruncated: the file ends before the end its own fields imply.
	ErrTruncated = errors.New("flows: model file is truncated")
	// ErrChecksum: the bytes do not match their checksum (the file was
	// damaged after it was written).
	ErrChecksum = errors.New("flows: model file checksum mismatch")
	// ErrNewerFormat: the file is in a format version newer than this
	// library reads.
	ErrNewerFormat = errors.New("flows: model file format is newer than this library")
	// ErrParamCount: the file's configuration builds a model with a
	// different number of parameters than the file holds.
	ErrParamCount = errors.New("flows: model file parameter count does not match its configuration")
	// ErrNonFinite: a parameter, mean or scale in the file is NaN or ±Inf.
	ErrNonFinite = errors.New("flows: model file holds a non-finite number")
	// ErrMalformed: the file is intact (its checksum matches) but its
	// contents are not a valid model (an unknown kind, bad JSON, a zero
	// scale, trailing bytes).
	ErrMalformed = errors.New("flows: malformed model file")
)

// The file format; see Model.Save.
const (
	fileMagic   = "GOFLOWS\n"
	fileVersion = 3
	// maxHeaderLen bounds the JSON header, which is a few hundred bytes;
	// a larger length field is damage, not a header.
	maxHeaderLen = 1 << 20
	// A file too short to hold its parameters is built, only to tell
	// truncation from a damaged parameter count, when its configuration
	// needs at most this many parameters or one per byte of the file.
	minDiagnoseParams = 1 << 16
)

// castagnoli is the CRC-32C table.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// fileHeader is the JSON header of the file format: the Config and the
// widths.
type fileHeader struct {
	Config
	Dim        int         `json:"dim"`
	ContextDim int         `json:"contextDim,omitempty"`
	Categories *Categories `json:"categories,omitempty"`
	Training   *Training   `json:"training,omitempty"`
}

// fileError is an error about a model file: it wraps one of the Err
// sentinels and names the file when it has a path.
type fileError struct {
	path string // empty for a stream
	kind error  // one of the Err sentinels
	msg  string
}

func (e *fileError) Error() string {
	where := "model file"
	if e.path != "" {
		where += " " + e.path
	}
	return "flows: " + where + ": " + e.msg
}

func (e *fileError) Unwrap() error { return e.kind }

func fileErrorf(kind error, format string, args ...any) *fileError {
	return &fileError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// checkSavable returns an error when m cannot be written as a file that
// Load accepts: an invalid or incomplete Config, standardisations of the
// wrong length or not finite, a parameter vector whose length differs from
// what the Config builds, or a non-finite parameter.
func (m *Model) checkSavable() error {
	cfg, spec, err := m.Config.withDefaults()
	if err != nil {
		return err
	}
	if !cfg.equal(m.Config) {
		return fmt.Errorf("flows: Save: Config has zero fields; use the Config of a model made by New")
	}
	for i, v := range m.Params {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("flows: Save: parameter %d is %v", i, v)
		}
	}
	if len(m.ContextMean) != m.ContextDim {
		return fmt.Errorf("flows: Save: %d context means for %d context columns", len(m.ContextMean), m.ContextDim)
	}
	// Rebuilding checks Dim, the standardisations (through their
	// constructors) and the names, and gives the parameter count the file
	// must have.
	if m.Categories != nil {
		if err := m.Categories.check(); err != nil {
			return fmt.Errorf("flows: Save: %w", err)
		}
	}
	b, err := buildModel(cfg, spec, m.Dim, m.Mean, m.Scale, m.ContextMean, m.ContextScale, m.Categories)
	if err != nil {
		return fmt.Errorf("flows: Save: %w", err)
	}
	if len(b.Params) != len(m.Params) {
		return fmt.Errorf("flows: Save: Config builds %d parameters, Params has %d", len(b.Params), len(m.Params))
	}
	return nil
}

// Save writes the model to the file at path (the format is described in
// persist.go), atomically: it writes a new temporary file in the same
// directory, fsyncs it, renames it over path and fsyncs the directory, so a
// crash or an error at any point leaves either the old file whole or the
// new one whole, never a mix; on an error the temporary file (".<name>.tmp-…"
// next to path) is removed. The file keeps the permissions of the file it
// replaces, or gets 0666 less the umask when new. A symbolic link at path
// is followed: the file it points to is replaced and the link kept. Save
// refuses, before touching the disk, a model that Load would refuse (a
// non-finite parameter, a parameter count that the Config does not build).
func (m *Model) Save(path string) error {
	if err := m.checkSavable(); err != nil {
		return err
	}
	if err := atomicfile.Write(path, func(w io.Writer) error {
		_, err := m.writeTo(w)
		return err
	}); err != nil {
		return fmt.Errorf("flows: Save: %w", err)
	}
	return nil
}

// WriteTo writes the model to w in the file format described at Save, and
// returns the number of bytes written. It writes nothing and returns an
// error for a model that Save refuses.
func (m *Model) WriteTo(w io.Writer) (int64, error) {
	if err := m.checkSavable(); err != nil {
		return 0, err
	}
	return m.writeTo(w)
}

// crcWriter writes to w, counting the bytes and updating a CRC-32C, and
// keeps the first error.
type crcWriter struct {
	w   io.Writer
	n   int64
	crc uint32
	err error
}

func (c *crcWriter) write(b []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.crc = crc32.Update(c.crc, castagnoli, b[:n])
	c.err = err
}

// writeFloats writes vs as float64 LE in chunks.
func (c *crcWriter) writeFloats(vs []float64) {
	var buf [4096]byte
	b := buf[:0]
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		if len(b) == len(buf) {
			c.write(b)
			b = buf[:0]
		}
	}
	c.write(b)
}

// writeTo writes m, which checkSavable accepted, in the file format.
func (m *Model) writeTo(w io.Writer) (int64, error) {
	hdr, err := json.Marshal(fileHeader{Config: m.Config, Dim: m.Dim, ContextDim: m.ContextDim, Categories: m.Categories, Training: m.Training})
	if err != nil {
		return 0, fmt.Errorf("flows: WriteTo: %w", err)
	}
	// A file is of the oldest version that holds the model, so that a
	// model of numbers reads in the libraries that read version 2.
	version := uint32(2)
	if m.Categories != nil || m.Config.Precision != flows.Float64 {
		version = 3
	}
	cw := &crcWriter{w: w}
	head := make([]byte, 0, 16)
	head = append(head, fileMagic...)
	head = binary.LittleEndian.AppendUint32(head, version)
	head = binary.LittleEndian.AppendUint32(head, uint32(len(hdr)))
	cw.write(head)
	cw.write(hdr)
	cw.writeFloats(m.Mean)
	cw.writeFloats(m.Scale)
	cw.writeFloats(m.ContextMean)
	cw.writeFloats(m.ContextScale)
	cw.write(binary.LittleEndian.AppendUint64(nil, uint64(len(m.Params))))
	cw.writeFloats(m.Params)
	cw.write(binary.LittleEndian.AppendUint32(nil, cw.crc))
	if cw.err != nil {
		return cw.n, fmt.Errorf("flows: WriteTo: %w", cw.err)
	}
	return cw.n, nil
}

// Load reads a model saved by Save. It rebuilds Dist from the file's
// configuration and standardisation and fills in the saved parameters, so
// the loaded model gives bit for bit the log densities and samples of the
// saved one.
//
// For a file that is not an intact model of a format this library reads,
// it returns an error that names the file and wraps one of ErrNotModelFile,
// ErrTruncated (with the byte offset where the file ends and the section it
// ends in), ErrChecksum, ErrNewerFormat, ErrParamCount, ErrNonFinite or
// ErrMalformed. Errors opening or reading the file are returned as they
// come, wrapped. The whole file is read into memory. Load checks a file for
// damage, not for malice: the header's configuration decides how large a
// model it builds, so load files only from sources you trust.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("flows: Load: %w", err)
	}
	m, err := decodeModel(data)
	if fe, ok := err.(*fileError); ok {
		fe.path = path
	}
	return m, err
}

// Read reads a model written by WriteTo (or Save) from r, to its end,
// and returns it as Load does, with the same errors.
func Read(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("flows: Read: %w", err)
	}
	return decodeModel(data)
}

// decodeModel parses a whole model file.
//
// The checksum covers everything, but a damaged file and a truncated one
// both fail it, so when it fails the layout is parsed anyway: if every field
// read before the end is consistent (the header parses, the parameter count
// is the one the header builds) and the file simply ends early, the error
// is ErrTruncated at that offset; otherwise it is ErrChecksum.
func decodeModel(data []byte) (*Model, error) {
	n := len(data)
	if n < len(fileMagic) {
		if bytes.HasPrefix([]byte(fileMagic), data) {
			return nil, fileErrorf(ErrTruncated, "truncated: the file ends at byte offset %d, inside the magic (bytes 0 to 8)", n)
		}
		return nil, fileErrorf(ErrNotModelFile, "not a model file: it does not start with %q", fileMagic)
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, fileErrorf(ErrNotModelFile, "not a model file: it does not start with %q", fileMagic)
	}
	if n < 12 {
		return nil, fileErrorf(ErrTruncated, "truncated: the file ends at byte offset %d, inside the format version (bytes 8 to 12)", n)
	}
	version := binary.LittleEndian.Uint32(data[8:])
	var stored, computed uint32
	crcOK := false
	if n >= 16 {
		stored = binary.LittleEndian.Uint32(data[n-4:])
		computed = crc32.Checksum(data[:n-4], castagnoli)
		crcOK = stored == computed
	}
	if !crcOK {
		if version >= 1 && version <= fileVersion {
			if _, err := parse(data, version); errors.Is(err, ErrTruncated) {
				return nil, err
			}
		}
		if n < 16 {
			return nil, fileErrorf(ErrChecksum, "checksum mismatch: the file (%d bytes) is too short to hold a checksum", n)
		}
		return nil, fileErrorf(ErrChecksum, "checksum mismatch: stored CRC-32C %08x, computed %08x: the file is damaged", stored, computed)
	}
	switch {
	case version == 0:
		return nil, fileErrorf(ErrMalformed, "format version 0 does not exist")
	case version > fileVersion:
		return nil, fileErrorf(ErrNewerFormat, "format version %d is newer than this library's %d", version, fileVersion)
	}
	return parse(data, version)
}

// v1Config migrates the configuration of a version 1 file, which predates
// the settings LogScaleBound, Init, Linear and Scaling: it sets them to what
// every model then was made with (bound 3, InitHe, LinearOrthogonal,
// ScalingMoments), so that Load
// rebuilds the same function (InvertibleLinear's permutation and signs
// depend on Linear).
func v1Config(c Config) Config {
	if spec, ok := c.Kind.spec(); ok {
		if spec.affine {
			c.LogScaleBound = 3
		}
		if spec.linear {
			c.Linear = flows.LinearOrthogonal
		}
	}
	c.Init = flows.InitHe
	c.Scaling = ScalingMoments
	return c
}

// fileReader reads the sections of a file in order.
type fileReader struct {
	data []byte
	off  int
}

// next returns the next size bytes (size ≥ 0), the section called what, or
// an ErrTruncated error saying where the file ends.
func (r *fileReader) next(size int, what string) ([]byte, error) {
	if size > len(r.data)-r.off {
		return nil, fileErrorf(ErrTruncated, "truncated: the file ends at byte offset %d, inside the %s (bytes %d to %d)", len(r.data), what, r.off, r.off+size)
	}
	b := r.data[r.off : r.off+size]
	r.off += size
	return b, nil
}

// floats reads count float64 values, the section called section, each an
// item, and checks that they are finite.
func (r *fileReader) floats(count int, section, item string) ([]float64, error) {
	if count < 0 || count > (len(r.data)-r.off)/8 {
		return nil, fileErrorf(ErrTruncated, "truncated: the file ends at byte offset %d, inside the %s (bytes %d to %d)",
			len(r.data), section, r.off, uint64(r.off)+8*uint64(count))
	}
	b, err := r.next(8*count, section)
	if err != nil {
		return nil, err
	}
	vs := make([]float64, count)
	for i := range vs {
		vs[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if math.IsNaN(vs[i]) || math.IsInf(vs[i], 0) {
			return nil, fileErrorf(ErrNonFinite, "%s %d is %v (at byte offset %d)", item, i, vs[i], r.off-len(b)+8*i)
		}
	}
	return vs, nil
}

// parse parses a file of the given version (see the file comment) and
// builds its model.
func parse(data []byte, version uint32) (*Model, error) {
	r := &fileReader{data: data, off: 12}
	h, spec, err := r.header(version)
	if err != nil {
		return nil, err
	}
	cfg := h.Config
	mean, scale, cmean, cscale, err := r.standardizations(h.Dim, h.ContextDim)
	if err != nil {
		return nil, err
	}
	b, err := r.next(8, "parameter count")
	if err != nil {
		return nil, err
	}
	count := binary.LittleEndian.Uint64(b)
	// The header decides how large a model Load builds: before building
	// it, check that its configuration cannot need more parameters than
	// the file says it holds, and, when the file is too short to hold
	// them, that the model is small next to the file before building it
	// just to tell a truncated file from a damaged count. So a damaged or hostile header
	// cannot make Load allocate much more than the file's size implies.
	least := cfg.leastParams(spec, h.Dim)
	if least > count {
		return nil, fileErrorf(ErrParamCount, "config builds at least %d parameters, file has %d", least, count)
	}
	if count > uint64(len(data)-r.off)/8 && least > max(minDiagnoseParams, uint64(len(data))) {
		return nil, fileErrorf(ErrTruncated, "truncated: the file ends at byte offset %d, inside the parameters (bytes %d to %d)",
			len(data), r.off, uint64(r.off)+8*count)
	}
	m, err := buildModel(cfg, spec, h.Dim, mean, scale, cmean, cscale, h.Categories)
	if err != nil {
		return nil, fileErrorf(ErrMalformed, "%v", err)
	}
	if count != uint64(len(m.Params)) {
		return nil, fileErrorf(ErrParamCount, "config builds %d parameters, file has %d", len(m.Params), count)
	}
	params, err := r.floats(len(m.Params), "parameters", "parameter")
	if err != nil {
		return nil, err
	}
	if _, err := r.next(4, "checksum"); err != nil {
		return nil, err
	}
	if r.off != len(data) {
		return nil, fileErrorf(ErrMalformed, "%d bytes after the checksum", len(data)-r.off)
	}
	copy(m.Params, params)
	m.Training = h.Training
	return m, nil
}

// header reads the header length and the JSON header, migrates a version
// 1 configuration, and checks the configuration (complete, with its
// defaults written out) and the widths.
func (r *fileReader) header(version uint32) (fileHeader, kindSpec, error) {
	data := r.data
	b, err := r.next(4, "header length")
	if err != nil {
		return fileHeader{}, kindSpec{}, err
	}
	hlen := binary.LittleEndian.Uint32(b)
	if hlen == 0 || hlen > maxHeaderLen {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header length %d is not in [1, %d]", hlen, maxHeaderLen)
	}
	if int(hlen) > len(data)-r.off {
		// Either the file ends inside the header, or the length field is
		// damaged: a complete JSON object that ends before the claimed
		// length tells the second from the first.
		dec := json.NewDecoder(bytes.NewReader(data[r.off:]))
		var v map[string]any
		if dec.Decode(&v) == nil && dec.InputOffset() < int64(hlen) {
			return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header length %d, but the header ends after %d bytes", hlen, dec.InputOffset())
		}
	}
	hb, err := r.next(int(hlen), "header")
	if err != nil {
		return fileHeader{}, kindSpec{}, err
	}
	var h fileHeader
	dec := json.NewDecoder(bytes.NewReader(hb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: data after the JSON object")
	}
	if version == 1 && (h.Columns != nil || h.Context != nil || h.ContextDim != 0 || h.LogScaleBound != 0 || h.Init != 0 || h.Linear != 0 || h.Scaling != 0 ||
		h.Dequantize != nil || h.Bounds != nil || h.Training != nil) {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: a version 1 file has no column names, context or init settings")
	}
	if version == 1 {
		h.Config = v1Config(h.Config)
	}
	if h.Precision != flows.Float64 && version < 3 {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: a version %d file has no precision", version)
	}
	if h.Categories != nil {
		if version < 3 {
			return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: a version %d file has no categories", version)
		}
		if err := h.Categories.check(); err != nil {
			return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: %v", err)
		}
	}
	cfg := h.Config
	full, spec, err := cfg.withDefaults()
	if err != nil {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: %v", err)
	}
	if !full.equal(cfg) {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: configuration %+v is incomplete", cfg)
	}
	if h.Dim < 1 {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: dim %d, want at least 1", h.Dim)
	}
	if h.ContextDim < 0 {
		return fileHeader{}, kindSpec{}, fileErrorf(ErrMalformed, "header: contextDim %d, want at least 0", h.ContextDim)
	}
	return h, spec, nil
}

// standardizations reads the means and scales of dim data columns and
// cdim context columns, and checks that the scales are positive.
func (r *fileReader) standardizations(dim, cdim int) (mean, scale, cmean, cscale []float64, err error) {
	mean, err = r.floats(dim, "mean", "mean")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	scale, err = r.floats(dim, "scale", "scale")
	if err != nil {
		return nil, nil, nil, nil, err
	}
	for j, s := range scale {
		if !(s > 0) {
			return nil, nil, nil, nil, fileErrorf(ErrMalformed, "scale %d is %v, want positive", j, s)
		}
	}
	if cdim > 0 {
		if cmean, err = r.floats(cdim, "context mean", "context mean"); err != nil {
			return nil, nil, nil, nil, err
		}
		if cscale, err = r.floats(cdim, "context scale", "context scale"); err != nil {
			return nil, nil, nil, nil, err
		}
		for j, s := range cscale {
			if !(s > 0) {
				return nil, nil, nil, nil, fileErrorf(ErrMalformed, "context scale %d is %v, want positive", j, s)
			}
		}
	}
	return mean, scale, cmean, cscale, nil
}
