package flowsbeam

// Evaluation.
//
// The mean log-likelihood is computed exactly: every finite log density is
// an integer multiple of 2⁻¹⁰⁷⁴, so the accumulator adds them as integers
// (53-bit mantissas into one int64 per binary exponent, carried into a
// big.Int every 512 additions) and divides once at the end, rounding to the
// nearest float64. The sum does not depend on the order of additions, so
// the mean is the same, bit for bit, however the runner bundles and merges;
// and it is the correctly rounded mean of the rows.
//
// The histogram has bins of a fixed width anchored at 0 (bin i holds the
// log densities in [i·w, (i+1)·w)), so accumulators merge by adding counts,
// and only the bins that hold rows are kept.

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

// DefaultBinWidth is the width of the histogram's bins, in nats, when
// EvaluateConfig.BinWidth is zero.
const DefaultBinWidth = 0.5

// EvaluateConfig configures Evaluate.
type EvaluateConfig struct {
	// BinWidth is the width of the histogram's bins in nats (default
	// DefaultBinWidth).
	BinWidth float64
}

// Evaluation summarises the log densities of a set of rows.
type Evaluation struct {
	// Rows is the number of rows.
	Rows int64
	// MeanLogDensity is the mean log density of the rows (the mean
	// log-likelihood, in nats), correctly rounded; −Inf when a row has
	// log density −Inf, NaN when one has NaN or there are no rows.
	MeanLogDensity float64
	// Min and Max are the lowest and highest log densities (NaN rows
	// aside).
	Min, Max float64
	// NaN counts the rows of log density NaN, NegInf and PosInf those of
	// −Inf and +Inf; they are in no bin.
	NaN, NegInf, PosInf int64
	// BinWidth is the bins' width; Bins lists the bins that hold rows, in
	// increasing order.
	BinWidth float64
	Bins     []Bin
}

// Bin is a bin of the histogram: Count log densities in [Lo, Lo+width).
type Bin struct {
	Lo    float64
	Count int64
}

// Evaluate returns the Evaluation of the log densities of scored (a
// PCollection of Scored) as a one-element PCollection, computed by a
// combiner: each worker summarises its rows and the runner merges the
// summaries. The result does not depend on how the runner bundles or
// merges.
func Evaluate(s beam.Scope, scored beam.PCollection, cfg EvaluateConfig) beam.PCollection {
	s = s.Scope("flowsbeam.Evaluate")
	w := cfg.BinWidth
	if !(w > 0) || math.IsInf(w, 0) {
		w = DefaultBinWidth
	}
	return beam.Combine(s, &evaluateFn{BinWidth: w}, scored)
}

func init() {
	beam.RegisterCoder(reflect.TypeOf(evalAccum{}), encodeEvalAccum, decodeEvalAccum)
	beam.RegisterType(reflect.TypeOf(Evaluation{}))
	beam.RegisterType(reflect.TypeOf(Bin{}))
	register.Combiner3[evalAccum, Scored, Evaluation](&evaluateFn{})
}

// evaluateFn is the combiner of Evaluate.
type evaluateFn struct {
	BinWidth float64
}

// evalAccum is Evaluate's accumulator.
type evalAccum struct {
	rows, nan, negInf, posInf int64
	min, max                  float64
	sum                       exactSum
	bins                      map[int64]int64
}

func (f *evaluateFn) CreateAccumulator() evalAccum {
	return evalAccum{min: math.Inf(1), max: math.Inf(-1)}
}

func (f *evaluateFn) AddInput(a evalAccum, sc Scored) evalAccum {
	if a.bins == nil {
		a.bins = make(map[int64]int64)
	}
	for _, v := range sc.LogDensity {
		a.add(v, f.BinWidth)
	}
	a.sum.carry()
	return a
}

// add adds one log density.
func (a *evalAccum) add(v, width float64) {
	a.rows++
	switch {
	case math.IsNaN(v):
		a.nan++
		return
	case math.IsInf(v, -1):
		a.negInf++
	case math.IsInf(v, 1):
		a.posInf++
	default:
		a.sum.add(v)
		a.bins[int64(math.Floor(v/width))]++
	}
	a.min, a.max = min(a.min, v), max(a.max, v)
}

func (f *evaluateFn) MergeAccumulators(a, b evalAccum) evalAccum {
	a.rows += b.rows
	a.nan += b.nan
	a.negInf += b.negInf
	a.posInf += b.posInf
	a.min, a.max = min(a.min, b.min), max(a.max, b.max)
	a.sum.merge(&b.sum)
	if a.bins == nil {
		a.bins = make(map[int64]int64)
	}
	for k, n := range b.bins {
		a.bins[k] += n
	}
	return a
}

func (f *evaluateFn) ExtractOutput(a evalAccum) Evaluation {
	e := Evaluation{Rows: a.rows, NaN: a.nan, NegInf: a.negInf, PosInf: a.posInf,
		Min: a.min, Max: a.max, BinWidth: f.BinWidth}
	finite := a.rows - a.nan - a.negInf - a.posInf
	switch {
	case a.nan > 0 || a.rows == 0 || a.negInf > 0 && a.posInf > 0:
		e.MeanLogDensity = math.NaN()
	case a.negInf > 0:
		e.MeanLogDensity = math.Inf(-1)
	case a.posInf > 0:
		e.MeanLogDensity = math.Inf(1)
	default:
		e.MeanLogDensity = a.sum.mean(finite)
	}
	if a.rows == a.nan {
		e.Min, e.Max = math.NaN(), math.NaN()
	}
	for k, n := range a.bins {
		e.Bins = append(e.Bins, Bin{Lo: float64(k) * f.BinWidth, Count: n})
	}
	slices.SortFunc(e.Bins, func(x, y Bin) int { return cmp.Compare(x.Lo, y.Lo) })
	return e
}

// exactSum adds float64s exactly, as integers in units of 2⁻¹⁰⁷⁴.
type exactSum struct {
	total *big.Int     // the carried sum; nil for 0
	bins  *[2048]int64 // mantissas by biased exponent, not yet carried
	adds  int          // additions since the last carry
}

// add adds the finite v.
func (s *exactSum) add(v float64) {
	if v == 0 {
		return
	}
	if s.bins == nil {
		s.bins = new([2048]int64)
	}
	b := math.Float64bits(v)
	exp := int(b>>52) & 0x7ff
	m := int64(b & (1<<52 - 1))
	if exp > 0 {
		m |= 1 << 52
	}
	if b>>63 != 0 {
		m = -m
	}
	s.bins[exp] += m
	// 512 mantissas below 2⁵³ cannot overflow an int64.
	if s.adds++; s.adds == 512 {
		s.carry()
	}
}

// carry moves the bins into the total.
func (s *exactSum) carry() {
	if s.bins == nil || s.adds == 0 {
		return
	}
	if s.total == nil {
		s.total = new(big.Int)
	}
	var t big.Int
	for exp, m := range s.bins {
		if m == 0 {
			continue
		}
		// A mantissa m of biased exponent exp is m·2^(exp−1) units of
		// 2⁻¹⁰⁷⁴ (exp 0 is subnormal: m units).
		t.SetInt64(m)
		if exp > 1 {
			t.Lsh(&t, uint(exp-1))
		}
		s.total.Add(s.total, &t)
		s.bins[exp] = 0
	}
	s.adds = 0
}

// merge adds the sum o.
func (s *exactSum) merge(o *exactSum) {
	s.carry()
	o.carry()
	if o.total == nil {
		return
	}
	if s.total == nil {
		s.total = new(big.Int)
	}
	s.total.Add(s.total, o.total)
}

// mean returns the sum divided by n, rounded to the nearest float64.
func (s *exactSum) mean(n int64) float64 {
	s.carry()
	if n == 0 {
		return math.NaN()
	}
	if s.total == nil {
		return 0
	}
	num := new(big.Float).SetInt(s.total)
	q := new(big.Float).SetPrec(53).SetMode(big.ToNearestEven)
	q.Quo(num, new(big.Float).SetInt64(n))
	q.SetMantExp(q, -1074)
	v, _ := q.Float64()
	return v
}

func encodeEvalAccum(a evalAccum) []byte {
	a.sum.carry()
	var e encoder
	e.int(int(a.rows))
	e.int(int(a.nan))
	e.int(int(a.negInf))
	e.int(int(a.posInf))
	e.floats([]float64{a.min, a.max})
	var total []byte
	sign := 0
	if a.sum.total != nil {
		total, sign = a.sum.total.Bytes(), a.sum.total.Sign()
	}
	e.int(sign)
	e.string(string(total))
	keys := make([]int64, 0, len(a.bins))
	for k := range a.bins {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.uint(uint64(len(keys)))
	for _, k := range keys {
		e.int(int(k))
		e.int(int(a.bins[k]))
	}
	return e.b
}

func decodeEvalAccum(b []byte) (evalAccum, error) {
	d := decoder{b: b}
	a := evalAccum{rows: int64(d.int()), nan: int64(d.int()), negInf: int64(d.int()), posInf: int64(d.int())}
	if mm := d.floats(); len(mm) == 2 {
		a.min, a.max = mm[0], mm[1]
	} else if d.err == nil {
		d.err = errCorrupt
	}
	sign := d.int()
	if total := d.string(); sign != 0 {
		a.sum.total = new(big.Int).SetBytes([]byte(total))
		if sign < 0 {
			a.sum.total.Neg(a.sum.total)
		}
	}
	n := d.length(2)
	a.bins = make(map[int64]int64, n)
	for range n {
		k := d.int()
		a.bins[int64(k)] = int64(d.int())
	}
	if err := d.check("Evaluate's accumulator"); err != nil {
		return evalAccum{}, err
	}
	return a, nil
}

// String formats the evaluation in one line.
func (e Evaluation) String() string {
	return fmt.Sprintf("%d rows, mean log density %v, min %v, max %v", e.Rows, e.MeanLogDensity, e.Min, e.Max)
}
