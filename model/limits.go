package model

// Memory limits: every size a user gives (columns, rows, layers, hidden
// widths, bins, rows to sample or score in one call) is checked against a
// memory estimate before anything of that size is allocated, so that a
// typing slip or a hostile request is an error, not an out-of-memory kill.
//
// The estimate is of the order of magnitude, not of the byte: the trainable
// parameters counted from the kind's shape, rounded up (each coupling half
// as the larger one, every spline with 3·Bins + 1 knot parameters, a MADE's
// masks as large as its weights), times the copies training keeps
// (parameters, gradient, Adam's two moments, the best epoch's copy and one
// spare), plus InvertibleLinear's dense factors, plus a fixed cost per block
// for the layers' own structure (measured: a few KiB), plus the activations
// of the rows in flight. TestEstimateCoversParams checks the parameter count
// against the built models of every kind.
//
// The default limit is read once per process: FLOWS_MAX_MEMORY when set,
// else half of the physical memory (MemTotal of /proc/meminfo on Linux),
// else 8 GiB.

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Limits bounds the memory that the sizes given to New, NewMixed, Read and
// the command line may cost.
type Limits struct {
	// Memory is the most bytes one model, or one call's rows, may need;
	// 0 means DefaultLimits' value.
	Memory uint64
}

// fallbackMemory is the default limit where the physical memory is unknown.
const fallbackMemory = 8 << 30

// MemoryEnv is the environment variable that sets the default limit, in
// bytes or with a suffix K, M, G or T (powers of 1024): FLOWS_MAX_MEMORY=16G.
const MemoryEnv = "FLOWS_MAX_MEMORY"

var defaultLimits = sync.OnceValue(func() Limits {
	if s := os.Getenv(MemoryEnv); s != "" {
		if b, err := ParseBytes(s); err == nil {
			return Limits{Memory: b}
		}
	}
	if total := memTotal(); total > 0 {
		return Limits{Memory: total / 2}
	}
	return Limits{Memory: fallbackMemory}
})

// DefaultLimits returns the limits New and Read apply: FLOWS_MAX_MEMORY when
// set (an unparsable value is ignored), else half of the physical memory,
// else 8 GiB. It reads them once per process.
func DefaultLimits() Limits { return defaultLimits() }

// memTotal returns MemTotal of /proc/meminfo in bytes, or 0.
func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fs[1], 10, 64)
			if err != nil || kb > math.MaxUint64/1024 {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// ParseBytes parses a size in bytes, with an optional suffix K, M, G or T
// (powers of 1024, optionally followed by "iB" or "B"): "8G", "512MiB".
func ParseBytes(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "i")
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]|0x20-0x20); i >= 0 {
			shift, t = 10*(i+1), t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil || v == 0 || v > math.MaxUint64>>shift {
		return 0, fmt.Errorf("flows: memory size %q: want a positive number of bytes, optionally with K, M, G or T", s)
	}
	return v << shift, nil
}

// memory returns l's limit in bytes.
func (l Limits) memory() uint64 {
	if l.Memory == 0 {
		return DefaultLimits().Memory
	}
	return l.Memory
}

// SizeError is the error of a size over a Limits: Field names what was too
// large (a Config field, "columns", "rows"), as a command line maps it to
// its flag.
type SizeError struct {
	// Field is the Config field ("Layers", "Hidden", "Bins"), "columns" or
	// "rows": the size that, set back to its default (or to one), lowers
	// the estimate most.
	Field string
	// Value is that size as given.
	Value string
	// Params is the estimated parameter count (0 where no model is built).
	Params uint64
	// Bytes is the estimate; Limit the limit it exceeds.
	Bytes, Limit uint64
}

// Error says what was too large, the estimate and the limit.
func (e *SizeError) Error() string {
	what := fmt.Sprintf("would need %s", FormatBytes(e.Bytes))
	if e.Params > 0 {
		what = fmt.Sprintf("the model would hold %.2g parameters (%s)", float64(e.Params), FormatBytes(e.Bytes))
	}
	return fmt.Sprintf("flows: %s %s: %s; the limit is %s (%s or model.Limits)",
		e.Field, e.Value, what, FormatBytes(e.Limit), MemoryEnv)
}

// FormatBytes writes n bytes with a binary unit: "1.2 EiB", "512 MiB".
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v, i = v/1024, i+1
	}
	if i == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.3g %s", v, units[i])
}

// CheckRows returns a *SizeError when rows×cols float64s, plus rowBytes
// bytes of working memory per row, exceed l; what names the size in the
// error (a flag such as "-n" or a field).
func (l Limits) CheckRows(what string, rows, cols int, rowBytes uint64) error {
	b := addSat(mulSat(uint64(max(rows, 0)), mulSat(uint64(max(cols, 0)), 8)), mulSat(uint64(max(rows, 0)), rowBytes))
	if b <= l.memory() {
		return nil
	}
	return &SizeError{Field: what, Value: strconv.Itoa(rows), Bytes: b, Limit: l.memory()}
}

// CheckConfig returns an error for an invalid cfg, and a *SizeError when a
// model of cfg for dim data columns and contextDim context columns, made
// from rows rows, would need more memory than l allows. The rows count for
// the kinds whose ActNorm layers New initialises from a pass over all of
// them (glow, bnaf). New, NewMixed and Read call it with
// DefaultLimits before building anything.
func (l Limits) CheckConfig(cfg Config, dim, contextDim, rows int) error {
	c, spec, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	return l.check(c, spec, dim, contextDim, rows)
}

// check is CheckConfig for a Config with its defaults filled in.
func (l Limits) check(c Config, spec kindSpec, dim, cdim, rows int) error {
	if c.Kind != KindGlow && c.Kind != KindBNAF {
		rows = 0 // no data-dependent initialisation: New makes no pass over the rows
	}
	e := c.estimate(spec, dim, cdim)
	b := e.bytes(rows)
	if b <= l.memory() {
		return nil
	}
	// Name the size whose default lowers the estimate most.
	field, value, best := "columns", strconv.Itoa(dim), c.estimate(spec, min(dim, 2), cdim).bytes(rows)
	try := func(name, v string, d Config) {
		if b2 := d.estimate(spec, dim, cdim).bytes(rows); b2 < best {
			field, value, best = name, v, b2
		}
	}
	d := c
	d.Layers = defaultLayers
	try("Layers", strconv.Itoa(c.Layers), d)
	d = c
	d.Hidden = defaultHidden
	try("Hidden", fmt.Sprint(c.Hidden), d)
	if spec.Splines {
		d = c
		d.Bins = defaultBins
		try("Bins", strconv.Itoa(c.Bins), d)
	}
	if e.bytes(min(rows, 1)) < best {
		field, value = "rows", strconv.Itoa(rows)
	}
	return &SizeError{Field: field, Value: value, Params: e.params, Bytes: b, Limit: l.memory()}
}

// Estimate is the memory a model needs, from its shape (see the file
// comment).
type estimate struct {
	params uint64 // trainable parameters, rounded up
	fixed  uint64 // bytes held whatever the rows
	row    uint64 // bytes per row of one pass through the flow
}

// bytes returns the estimate for a pass over rows rows.
func (e estimate) bytes(rows int) uint64 {
	return addSat(e.fixed, mulSat(uint64(max(rows, 0)), e.row))
}

// blockOverhead is the bytes per block of the layers' structure beyond
// their parameters (closures, shapes, scratch headers), rounded up from
// TestBlockOverhead's measurement.
const blockOverhead = 16 << 10

// copies is how many float64 vectors of the parameters' length training
// keeps (see the file comment).
const copies = 6

// estimate returns the estimate for c (defaults filled in) over dim data
// and cdim context columns.
func (c Config) estimate(spec kindSpec, dim, cdim int) estimate {
	d, cd := uint64(max(dim, 0)), uint64(max(cdim, 0))
	var hidden []uint64
	var sumHidden uint64
	for _, h := range c.Hidden {
		hidden = append(hidden, uint64(max(h, 0)))
		sumHidden = addSat(sumHidden, uint64(max(h, 0)))
	}
	perCol := uint64(2) // affine: shift and log-scale
	switch {
	case spec.Splines:
		perCol = uint64(3*max(c.Bins, 0) + 1)
	case c.Kind == KindNAF:
		perCol = 3 * nafUnits
	case c.Kind == KindSOS:
		perCol = sosKindPolys*(sosKindDegree+1) + 1
	case c.Kind == KindBernstein:
		perCol = bernKindDegree + 1
	}
	var block, structure, width uint64 // parameters, other floats, activations per row
	net := func(in, out uint64) {
		prev := in
		for _, h := range hidden {
			block = addSat(block, mulSat(prev+1, h))
			structure = addSat(structure, mulSat(prev, h)) // masks, scratch
			prev = h
		}
		block = addSat(block, mulSat(prev+1, out))
		// A MADE's context enters every layer; an MLP's only the first.
		block = addSat(block, mulSat(cd, addSat(sumHidden, out)))
		structure = addSat(structure, mulSat(prev, out))
		width = addSat(width, addSat(addSat(in, out), mulSat(2, sumHidden)))
	}
	if spec.image {
		return c.imageEstimate(d)
	}
	switch {
	case c.Kind == KindCNF:
		// The concat-squash net of (z, c) and t: each layer's weights,
		// bias, and its time gate and bias (three per unit); the solver
		// keeps seven stages of each row.
		prev := d + cd
		for _, h := range hidden {
			block = addSat(block, mulSat(prev+4, h))
			prev = h
		}
		block = addSat(block, mulSat(prev+4, d))
		width = addSat(width, addSat(mulSat(16, d), mulSat(4, sumHidden)))
	case c.Kind == KindBNAF:
		prev := d
		for _, h := range hidden {
			w := mulSat(d, (h+d-1)/max(d, 1))
			block = addSat(block, mulSat(prev+2+cd, w))
			width = addSat(width, mulSat(3, w))
			prev = w
		}
		block = addSat(block, addSat(mulSat(prev+2, d), 2*d))
	case spec.KindInfo.MinDim == 2: // couplings
		half := (d + 1) / 2
		net(half+cd, mulSat(half, perCol))
	default: // MADE kinds
		net(d+cd, mulSat(d, perCol))
	}
	if spec.linear {
		block = addSat(block, mulSat(d, d))
		structure = addSat(structure, mulSat(3*d, d)) // dense L, U and W
	}
	if c.Kind == KindGlow {
		block = addSat(block, 2*d)
	}
	layers := uint64(max(c.Layers, 0))
	params := mulSat(layers, block)
	fixed := mulSat(8, addSat(mulSat(copies, params), mulSat(layers, structure)))
	fixed = addSat(fixed, mulSat(layers, blockOverhead))
	row := mulSat(8*3, addSat(width, 2*(d+cd)))
	return estimate{params: params, fixed: fixed, row: row}
}

// imageEstimate is estimate for an image kind of d = C·H·W pixels: its
// parameters bounded above by giving every step the most channels any
// scale has (C·4^Scales: each squeeze quadruples them, before the
// factor-outs halve them) — a conv net of 3×3 convolutions in, Blocks
// residual pairs of Hidden channels and out, an ActNorm and a 1×1
// convolution — and per row the conv nets' activations kept for the
// backward pass, (Hidden + 8) channels of every pixel for each step of each
// scale, twice over.
func (c Config) imageEstimate(d uint64) estimate {
	h := uint64(max(c.Glow.Hidden, 0))
	cs := uint64(max(c.Shape.C, 0))
	for range max(c.Glow.Scales, 1) {
		cs = mulSat(cs, 4)
	}
	step := addSat(mulSat(27, mulSat(cs, h)), mulSat(uint64(max(c.Glow.Blocks, 1))*18, mulSat(h, h)))
	step = addSat(step, addSat(mulSat(cs, cs), addSat(mulSat(10, cs), mulSat(4, h))))
	nets := mulSat(uint64(max(c.Glow.Steps, 1)), uint64(max(c.Glow.Scales, 1)))
	params := mulSat(nets, step)
	width := mulSat(2*d, mulSat(h+8, nets))
	return estimate{params: params, fixed: mulSat(8, mulSat(copies, params)), row: mulSat(8, addSat(width, 2*d))}
}

// mulSat and addSat are a·b and a + b, saturating at MaxUint64.
func mulSat(a, b uint64) uint64 {
	if b != 0 && a > math.MaxUint64/b {
		return math.MaxUint64
	}
	return a * b
}

func addSat(a, b uint64) uint64 {
	if a+b < a {
		return math.MaxUint64
	}
	return a + b
}

// CheckModelRows returns a *SizeError when rows rows through m (data,
// context and the flow's activations) exceed l: for training, the
// activations of every block, which the backward pass keeps; otherwise
// those of one pass. what names the size in the error (a flag such as
// "-n" or "--batch").
func (l Limits) CheckModelRows(what string, m *Model, rows int, training bool) error {
	spec, ok := m.Config.Kind.spec()
	if !ok {
		return fmt.Errorf("flows: unknown Kind %q", string(m.Config.Kind))
	}
	cdim := m.ContextDim + m.Categories.Width()
	row := m.Config.estimate(spec, m.Dim, cdim).row
	if training {
		row = mulSat(row, uint64(max(m.Config.Layers, 1)))
	}
	return l.CheckRows(what, rows, m.Dim+cdim, row)
}
