package prep

// Audit: what in a table would silently ruin a fit, found before fitting.
//
// A flow maximises likelihood, and some tables let it do that without
// learning anything: a constant column (or one whose values differ only by
// rounding) has no density, so the likelihood grows without bound as the
// flow squeezes it; many duplicated rows are spikes the flow can collapse
// onto; integer-valued columns are lattices, not densities; a column that
// is a linear function of others (a total, a difference) puts the rows on
// a hyperplane, which has no density either; one row a million scales out
// stretches a standardisation by moments so far that every other row sits
// at one point. Audit names each such column (or the
// rows), and Model, the CLI, the server and the Beam pipelines decide from
// its findings: refuse, drop, dequantise, or warn.
//
// The robust location and scale (RobustStandardizeFrom) are the median and
// 1.4826·MAD, the median absolute deviation scaled to the standard
// deviation of a normal; where more than half the values are equal (MAD 0)
// the interquartile range over 1.349, and where that is 0 too, the
// standard deviation. A row is an outlier when some value lies more than
// OutlierScales robust scales from its column's median.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/internal/linalg"
)

// Audit thresholds.
const (
	// OutlierScales is how many robust scales from the median a value must
	// lie for its row to be reported as an outlier.
	OutlierScales = 50
	// auditFewValues is the most distinct values of a column reported as
	// few-valued.
	auditFewValues = 20
	// auditNearConstant is the relative spread (max − min)/max(|min|,
	// |max|) under which distinct values differ only by rounding.
	auditNearConstant = 1e-9
	// auditMaxRows is how many rows a finding lists.
	auditMaxRows = 10
	// auditCollinear is the residual standard deviation, relative to the
	// column's, under which a column is a linear function of earlier ones
	// (R² ≥ 1 − 10⁻⁸): what rounding to about six digits leaves of an
	// exact relation.
	auditCollinear = 1e-4
	// auditChunk is the rows the collinearity check standardises at once.
	auditChunk = 4096
)

// Issue is the kind of a Finding.
type Issue int

const (
	// Constant: the column takes one value. A fit cannot use it: the
	// likelihood grows without bound. Refuse, or drop the column.
	Constant Issue = iota + 1
	// NearConstant: the column's values differ only at the level of
	// rounding (relative spread below 1e-9). Refuse, or drop it.
	NearConstant
	// Integers: the column holds integers only (a count, a code, a
	// pixel). Fitted as continuous, its density is spikes at the integers
	// and samples come out between them; dequantise it.
	Integers
	// FewValues: the column takes few distinct values (at most 20), not
	// all integers: a category or a rounded measurement.
	FewValues
	// Outliers: some rows lie far out (more than OutlierScales robust
	// scales from a column's median). Robust standardisation keeps them
	// from stretching the scale; check that they are not errors.
	Outliers
	// Duplicates: some rows repeat earlier rows exactly. Many duplicates
	// are spikes a flow collapses onto.
	Duplicates
	// Collinear: the column is a linear function of earlier columns, up
	// to rounding (a total, a difference, a unit conversion): the rows lie
	// on a hyperplane, which has no density, and a flow squeezes towards
	// it. Drop the column (or the ones it is made of).
	Collinear
	// CollinearSkipped: the table has more than AuditMaxCollinear columns,
	// so Audit did not look for collinear ones (the check's correlation
	// matrix grows as the columns squared, its factorisation as the cube).
	// Column is −1.
	CollinearSkipped
)

// AuditMaxCollinear is the most columns Audit checks for collinearity: the
// check holds two d×d matrices (64 MB at 2,000 columns) and takes d³/3
// steps; beyond it Audit reports CollinearSkipped and stays linear in the
// columns.
const AuditMaxCollinear = 2000

// String names the issue.
func (i Issue) String() string {
	switch i {
	case Constant:
		return "constant"
	case NearConstant:
		return "near-constant"
	case Integers:
		return "integers"
	case FewValues:
		return "few values"
	case Outliers:
		return "outliers"
	case Duplicates:
		return "duplicates"
	case Collinear:
		return "collinear"
	case CollinearSkipped:
		return "collinearity not checked"
	}
	return fmt.Sprintf("Issue(%d)", int(i))
}

// Finding is one thing Audit noticed.
type Finding struct {
	Issue Issue
	// Column is the column concerned (from 0), or −1 for a finding about
	// rows (Duplicates); Name is its name.
	Column int
	Name   string
	// Of lists, for Collinear, the earlier columns the column is a linear
	// function of.
	Of []int
	// Rows lists rows concerned (outliers, duplicates), at most ten, from
	// 0; Count is how many there are in all.
	Rows  []int
	Count int
	// Message says what was found and what to do, naming the column.
	Message string
}

// Fatal reports whether the finding makes a fit meaningless unless the
// column is dropped (Constant, NearConstant).
func (f Finding) Fatal() bool { return f.Issue == Constant || f.Issue == NearConstant }

// Audit examines the rows of x (n×d, finite values) whose columns are
// called names (nil: "x0", "x1", …) and returns its findings, columns in
// order, then rows. It reads x only. Beyond AuditMaxCollinear columns it
// does not look for collinear columns and says so (CollinearSkipped), so
// that its time and memory stay linear in the columns.
func Audit(x *mat.Dense, names []string) []Finding {
	n, d := x.Dims()
	name := func(j int) string {
		if j < len(names) && names[j] != "" {
			return names[j]
		}
		return fmt.Sprintf("x%d", j)
	}
	// Room for a finding per column: growing the slice by appends would
	// allocate several times its final size on a wide table.
	out := make([]Finding, 0, d)
	center, scale := robustStats(x)
	constant := make([]bool, d)
	col, sorted := make([]float64, n), make([]float64, n) // reused: linear in d
	for j := range d {
		mat.Col(col, j, x)
		copy(sorted, col)
		slices.Sort(sorted)
		lo, hi := sorted[0], sorted[n-1]
		distinct := 1
		for i := 1; i < n; i++ {
			if sorted[i] != sorted[i-1] {
				distinct++
			}
		}
		// By name only: a number would be the column's place in x, which
		// is not its place in the file the names came from.
		label := fmt.Sprintf("column %q", name(j))
		switch {
		case distinct == 1:
			constant[j] = true
			out = append(out, Finding{Issue: Constant, Column: j, Name: name(j),
				Message: fmt.Sprintf("%s is constant (every row is %v): it has no density; drop it", label, lo)})
			continue
		case hi-lo <= auditNearConstant*max(math.Abs(lo), math.Abs(hi)):
			constant[j] = true
			out = append(out, Finding{Issue: NearConstant, Column: j, Name: name(j),
				Message: fmt.Sprintf("%s is constant up to rounding (%v to %v): it has no density; drop it", label, lo, hi)})
			continue
		}
		integers := true
		for _, v := range sorted {
			if v != math.Trunc(v) {
				integers = false
				break
			}
		}
		switch {
		case integers:
			what := fmt.Sprintf("%d distinct values", distinct)
			if distinct <= auditFewValues {
				what = fmt.Sprintf("%d values", distinct)
			}
			out = append(out, Finding{Issue: Integers, Column: j, Name: name(j),
				Message: fmt.Sprintf("%s holds integers only (%s, %v to %v): a density of it is spikes at the integers; dequantise it", label, what, lo, hi)})
		case distinct <= auditFewValues:
			out = append(out, Finding{Issue: FewValues, Column: j, Name: name(j),
				Message: fmt.Sprintf("%s takes only %d distinct values (%v to %v): a category or a rounded measurement, fitted as continuous", label, distinct, lo, hi)})
		}
		var rows []int
		for i, v := range col {
			if math.Abs(v-center[j]) > OutlierScales*scale[j] {
				rows = append(rows, i)
			}
		}
		if len(rows) > 0 {
			out = append(out, Finding{Issue: Outliers, Column: j, Name: name(j), Rows: rows[:min(len(rows), auditMaxRows)], Count: len(rows),
				Message: fmt.Sprintf("%s: %d %s more than %d robust scales (%.4g) from the median %.4g: %s; check them",
					label, len(rows), plural(len(rows), "row lies", "rows lie"), OutlierScales, scale[j], center[j], rowList(rows, col))})
		}
	}
	if d > AuditMaxCollinear {
		constant = nil // collinearColumns skips
	}
	for _, c := range collinearColumns(x, constant) {
		of := make([]string, len(c.of))
		for k, i := range c.of {
			of[k] = strconv.Quote(name(i))
		}
		out = append(out, Finding{Issue: Collinear, Column: c.j, Name: name(c.j), Of: c.of,
			Message: fmt.Sprintf("column %q is a linear function of %s %s up to rounding (R² = 1 − %.1e): the rows lie on a hyperplane, which has no density; drop it",
				name(c.j), plural(len(of), "column", "columns"), strings.Join(of, ", "), c.unexplained)})
	}
	slices.SortStableFunc(out, func(a, b Finding) int { return a.Column - b.Column })
	if d > AuditMaxCollinear {
		out = append(out, Finding{Issue: CollinearSkipped, Column: -1,
			Message: fmt.Sprintf("%d columns: collinear columns not looked for (the check takes at most %d: its memory grows as the columns squared, its time as the cube)", d, AuditMaxCollinear)})
	}
	if dups := duplicateRows(x); len(dups) > 0 {
		out = append(out, Finding{Issue: Duplicates, Column: -1, Rows: dups[:min(len(dups), auditMaxRows)], Count: len(dups),
			Message: fmt.Sprintf("%d of %d rows (%.1f%%) repeat an earlier row exactly (rows %s): many duplicates are spikes a flow collapses onto",
				len(dups), n, 100*float64(len(dups))/float64(n), intList(dups))})
	}
	return out
}

// collinear is a column that is a linear function of the earlier columns of,
// with 1 − R² = unexplained.
type collinear struct {
	j           int
	of          []int
	unexplained float64
}

// collinearColumns finds the columns of x that are linear functions of
// earlier ones (up to auditCollinear), leaving out the columns skip marks.
// It forms the correlation matrix of the columns (standardised by their
// means and standard deviations, in chunks of rows, the products on the
// matrix kernel) and runs a Cholesky factorisation that rejects a column
// whose pivot, 1 − R² of its regression on the columns kept before it, is
// at most auditCollinear²; the columns it depends on are those with a
// regression coefficient of at least 10⁻³ of the largest (on the
// standardised scale).
func collinearColumns(x *mat.Dense, skip []bool) []collinear {
	n, d := x.Dims()
	if len(skip) != d {
		return nil // skipped: see AuditMaxCollinear
	}
	var cols []int // the columns checked
	for j := range d {
		if !skip[j] {
			cols = append(cols, j)
		}
	}
	k := len(cols)
	if k < 2 || n < 3 {
		return nil
	}
	mean, sd := make([]float64, k), make([]float64, k)
	for c, j := range cols {
		col := mat.Col(nil, j, x)
		var s float64
		for _, v := range col {
			s += v
		}
		mean[c] = s / float64(n)
		var ss float64
		for _, v := range col {
			ss += (v - mean[c]) * (v - mean[c])
		}
		sd[c] = math.Sqrt(ss / float64(n))
	}
	corr := make([]float64, k*k)
	z := make([]float64, min(n, auditChunk)*k)
	for r0 := 0; r0 < n; r0 += auditChunk {
		m := min(auditChunk, n-r0)
		for i := range m {
			for c, j := range cols {
				z[i*k+c] = (x.At(r0+i, j) - mean[c]) / sd[c]
			}
		}
		linalg.Gemm(true, false, k, k, m, 1/float64(n), z[:m*k], z[:m*k], 1, corr)
	}
	// Cholesky with rejection: l holds the rows of the kept columns.
	l := make([]float64, k*k)
	var kept []int // indices into cols
	var out []collinear
	for c := range k {
		row := l[c*k : (c+1)*k]
		for q, a := range kept {
			s := corr[c*k+a]
			for p := range q {
				s -= row[kept[p]] * l[a*k+kept[p]]
			}
			row[a] = s / l[a*k+a]
		}
		s := corr[c*k+c]
		for _, a := range kept {
			s -= row[a] * row[a]
		}
		if s > auditCollinear*auditCollinear || len(kept) == 0 {
			row[c] = math.Sqrt(max(s, 0))
			kept = append(kept, c)
			continue
		}
		// β solves L_keptᵀ β = row[kept].
		beta := make([]float64, len(kept))
		for q := len(kept) - 1; q >= 0; q-- {
			a := kept[q]
			v := row[a]
			for p := q + 1; p < len(kept); p++ {
				v -= l[kept[p]*k+a] * beta[p]
			}
			beta[q] = v / l[a*k+a]
		}
		var most float64
		for _, b := range beta {
			most = max(most, math.Abs(b))
		}
		var of []int
		for q, b := range beta {
			if math.Abs(b) >= 1e-3*most {
				of = append(of, cols[kept[q]])
			}
		}
		out = append(out, collinear{j: cols[c], of: of, unexplained: max(s, 0)})
		clear(row)
	}
	return out
}

// plural returns one for n = 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// rowList names rows with their values, the first few.
func rowList(rows []int, col []float64) string {
	var b strings.Builder
	for k, i := range rows[:min(len(rows), 5)] {
		if k > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "row %d (%v)", i, col[i])
	}
	if len(rows) > 5 {
		fmt.Fprintf(&b, " and %d more", len(rows)-5)
	}
	return b.String()
}

// intList lists the first few integers.
func intList(v []int) string {
	s := make([]string, 0, 6)
	for _, i := range v[:min(len(v), 5)] {
		s = append(s, fmt.Sprint(i))
	}
	if len(v) > 5 {
		s = append(s, fmt.Sprintf("and %d more", len(v)-5))
	}
	return strings.Join(s, ", ")
}

// duplicateRows returns the rows that repeat an earlier row exactly (bit for
// bit), in order.
func duplicateRows(x *mat.Dense) []int {
	n, d := x.Dims()
	seen := make(map[string]bool, n)
	var dups []int
	key := make([]byte, 8*d)
	for i := range n {
		for j, v := range x.RawRowView(i) {
			b := math.Float64bits(v)
			for k := range 8 {
				key[8*j+k] = byte(b >> (8 * k))
			}
		}
		if seen[string(key)] {
			dups = append(dups, i)
			continue
		}
		seen[string(key)] = true
	}
	return dups
}

// robustStats returns each column's median and robust scale (see the file
// comment); a constant column gets scale 1.
func robustStats(x *mat.Dense) (center, scale []float64) {
	n, d := x.Dims()
	center, scale = make([]float64, d), make([]float64, d)
	dev, col := make([]float64, n), make([]float64, n)
	for j := range d {
		mat.Col(col, j, x)
		slices.Sort(col)
		med := quantileSorted(col, 0.5)
		for i, v := range col {
			dev[i] = math.Abs(v - med)
		}
		slices.Sort(dev)
		s := 1.4826 * quantileSorted(dev, 0.5)
		if !(s > 0) || math.IsInf(s, 0) {
			s = (quantileSorted(col, 0.75) - quantileSorted(col, 0.25)) / 1.349
		}
		if !(s > 0) || math.IsInf(s, 0) {
			_, sd, _ := momentsOf(col)
			s = sd
		}
		if !(s > 0) || math.IsInf(s, 0) {
			s = 1
		}
		center[j], scale[j] = med, s
	}
	return center, scale
}

// quantileSorted returns the q-quantile of sorted values by linear
// interpolation between order statistics.
func quantileSorted(v []float64, q float64) float64 {
	if len(v) == 1 {
		return v[0]
	}
	pos := q * float64(len(v)-1)
	i := int(pos)
	if i >= len(v)-1 {
		return v[len(v)-1]
	}
	f := pos - float64(i)
	return v[i] + f*(v[i+1]-v[i])
}

// GaussianNLL returns the mean negative log-likelihood of the rows of val
// under the maximum-likelihood full-covariance Gaussian of the rows of
// train: the baseline a flow should beat. A singular covariance (fewer
// rows than columns, a constant column) gets a ridge of 1e-9 of its mean
// variance on the diagonal. It returns +Inf where val holds a row of zero
// density, and NaN for empty inputs or mismatched widths.
func GaussianNLL(train, val *mat.Dense) float64 {
	if train == nil || val == nil || train.IsEmpty() || val.IsEmpty() {
		return math.NaN()
	}
	n, d := train.Dims()
	if _, dv := val.Dims(); dv != d {
		return math.NaN()
	}
	mean := make([]float64, d)
	for j := range d {
		mean[j], _, _ = momentsOf(mat.Col(nil, j, train))
	}
	cov := mat.NewSymDense(d, nil)
	for i := range n {
		row := train.RawRowView(i)
		for a := range d {
			for b := a; b < d; b++ {
				cov.SetSym(a, b, cov.At(a, b)+(row[a]-mean[a])*(row[b]-mean[b])/float64(n))
			}
		}
	}
	var chol mat.Cholesky
	if !chol.Factorize(cov) {
		ridge := 0.0
		for j := range d {
			ridge += cov.At(j, j)
		}
		ridge = max(1e-9*ridge/float64(d), 1e-300)
		for j := range d {
			cov.SetSym(j, j, cov.At(j, j)+ridge)
		}
		if !chol.Factorize(cov) {
			return math.NaN()
		}
	}
	logDet := chol.LogDet()
	r, _ := val.Dims()
	diff := make([]float64, d)
	sol := mat.NewVecDense(d, nil)
	nll := 0.0
	for i := range r {
		for j, v := range val.RawRowView(i) {
			diff[j] = v - mean[j]
		}
		if err := chol.SolveVecTo(sol, mat.NewVecDense(d, diff)); err != nil {
			return math.NaN()
		}
		q := mat.Dot(sol, mat.NewVecDense(d, diff))
		nll += 0.5 * (q + logDet + float64(d)*math.Log(2*math.Pi)) / float64(r)
	}
	return nll
}
