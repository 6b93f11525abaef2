package prep

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// StandardizeFrom returns the column means and population standard
// deviations (divisor n) of the rows of x, for flows.Standardize. A column that is
// constant, with standard deviation at most 1e-12·max(1, max|x_j|) (the
// threshold ActNorm uses, since rounding leaves a constant column's computed
// deviation slightly above zero), gets scale 1. The sums are scaled by each
// column's largest magnitude, so finite data never overflows to an infinite
// mean or scale.
//
// It returns an error for a nil or empty x, and for a NaN or ±Inf entry,
// naming its row and column (counting from 0).
func StandardizeFrom(x *mat.Dense) (mean, scale []float64, err error) {
	if err := checkTable("StandardizeFrom", x); err != nil {
		return nil, nil, err
	}
	_, dim := x.Dims()
	mean, scale = make([]float64, dim), make([]float64, dim)
	for j := range dim {
		m, sd, big := momentsOf(mat.Col(nil, j, x))
		if sd <= constantTol*max(1, big) {
			sd = 1
		}
		mean[j], scale[j] = m, sd
	}
	return mean, scale, nil
}

// RobustStandardizeFrom returns, for each column, the mean and population
// standard deviation of its values after leaving out those more than
// OutlierScales robust scales from its median (the robust scale being
// 1.4826·MAD, or the interquartile range over 1.349 where more than half
// the values are equal, or the standard deviation where that is 0 too), for
// flows.Standardize. Without such values it is StandardizeFrom's result, bit for
// bit; with them, a few rows far out (a value a million scales away) do not
// stretch the scale and squeeze every other row together. A constant
// column gets scale 1. It returns StandardizeFrom's errors.
func RobustStandardizeFrom(x *mat.Dense) (mean, scale []float64, err error) {
	if err := checkTable("RobustStandardizeFrom", x); err != nil {
		return nil, nil, err
	}
	center, rscale := robustStats(x)
	_, dim := x.Dims()
	mean, scale = make([]float64, dim), make([]float64, dim)
	for j := range dim {
		col := mat.Col(nil, j, x)
		kept := col[:0:0]
		for _, v := range col {
			if math.Abs(v-center[j]) <= OutlierScales*rscale[j] {
				kept = append(kept, v)
			}
		}
		if len(kept) == len(col) {
			kept = col
		}
		m, sd, big := momentsOf(kept)
		if sd <= constantTol*max(1, big) {
			sd = 1
		}
		mean[j], scale[j] = m, sd
	}
	return mean, scale, nil
}

// CheckFinite returns an error for a nil or empty x ("no data"), and for
// the first NaN or ±Inf entry, naming its row and column (counting from 0):
// "row 3, column 2 is NaN". The message has no prefix; callers add theirs.
func CheckFinite(x *mat.Dense) error {
	if x == nil || x.IsEmpty() {
		return errors.New("no data")
	}
	n, _ := x.Dims()
	for i := range n {
		for j, v := range x.RawRowView(i) {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("row %d, column %d is %v", i, j, v)
			}
		}
	}
	return nil
}

// checkTable is CheckFinite with the error prefixed by "flows: who: ".
func checkTable(who string, x *mat.Dense) error {
	if err := CheckFinite(x); err != nil {
		return fmt.Errorf("flows: %s: %w", who, err)
	}
	return nil
}

// constantTol is the relative threshold under which a column's standard
// deviation makes it constant: at most constantTol·max(1, max|x|). It is
// ActNorm's threshold (flows.ActNorm), since rounding leaves a constant
// column's computed deviation slightly above zero.
const constantTol = 1e-12

// momentsOf returns the mean and population standard deviation of v and
// its largest magnitude, computed on v scaled by that magnitude so that no
// sum overflows for finite v (0, 0, 0 for an all-zero v).
func momentsOf(v []float64) (mean, sd, big float64) {
	for _, x := range v {
		big = max(big, math.Abs(x))
	}
	if big == 0 {
		return 0, 0, 0
	}
	n := float64(len(v))
	sum := 0.0
	for _, x := range v {
		sum += x / big
	}
	mu := sum / n
	ss := 0.0
	for _, x := range v {
		d := x/big - mu
		ss += d * d
	}
	return mu * big, math.Sqrt(ss/n) * big, big
}
