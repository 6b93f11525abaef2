package flows

import (
	"gonum.org/v1/gonum/mat"
)

// Reverse reverses the order of the columns: z_j = x_{dim−1−j}. Between
// coupling layers it makes consecutive layers transform opposite halves.
// It has no parameters and log-det zero.
func Reverse() InitFunc {
	return func(_ Key, dim, _ int) (Params, Bijection, error) {
		if err := checkDim("Reverse", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		perm := make([]int, dim)
		for j := range perm {
			perm[j] = dim - 1 - j
		}
		return Params{}, permutation("Reverse", perm), nil
	}
}

// Shuffle permutes the columns by a fixed permutation drawn from the key at
// init: z_j = x_{perm[j]}. It has no parameters and log-det zero.
func Shuffle() InitFunc {
	return func(key Key, dim, _ int) (Params, Bijection, error) {
		if err := checkDim("Shuffle", dim, 1); err != nil {
			return nil, Bijection{}, err
		}
		return Params{}, permutation("Shuffle", key.Rand().Perm(dim)), nil
	}
}

// permutation is the bijection z_j = x_{perm[j]}.
func permutation(name string, perm []int) Bijection {
	dim := len(perm)
	inv := make([]int, dim)
	for j, k := range perm {
		inv[k] = j
	}
	// gather returns y with y[:, j] = x[:, idx[j]].
	gather := func(x *mat.Dense, idx []int) *mat.Dense {
		n, _ := x.Dims()
		y := mat.NewDense(n, dim, nil)
		for i := 0; i < n; i++ {
			src, dst := x.RawRowView(i), y.RawRowView(i)
			for j, k := range idx {
				dst[j] = src[k]
			}
		}
		return y
	}
	apply := func(idx []int) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64) {
		return func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64) {
			checkParams(name, p, 0)
			checkWidth(name, x, dim)
			n, _ := x.Dims()
			return gather(x, idx), make([]float64, n)
		}
	}
	applyVJP := func(idx, back []int) func(Params, *mat.Dense, *mat.Dense) (*mat.Dense, []float64, Pullback) {
		return func(p Params, x, _ *mat.Dense) (*mat.Dense, []float64, Pullback) {
			checkParams(name, p, 0)
			checkWidth(name, x, dim)
			n, _ := x.Dims()
			pb := func(dz *mat.Dense, dLogDet []float64, dp Params, _ *mat.Dense) *mat.Dense {
				checkPullback(name, dz, dLogDet, dp, nil, n, dim, 0, 0)
				// The pullback of a gather by idx is the gather by its inverse.
				return gather(dz, back)
			}
			return gather(x, idx), make([]float64, n), pb
		}
	}
	// rows is the permutation's row map by idx: a gather of each row, log-det 0.
	rows := func(idx []int) rowMap {
		return func(dst, src, _ []float64, n int, ld []float64, _ bool) {
			for i := 0; i < n; i++ {
				s, d := src[i*dim:(i+1)*dim], dst[i*dim:(i+1)*dim]
				for j, k := range idx {
					d[j] = s[k]
				}
			}
			clear(ld[:n])
		}
	}
	return Bijection{
		Direct:     apply(perm),
		Inverse:    apply(inv),
		DirectVJP:  applyVJP(perm, inv),
		InverseVJP: applyVJP(inv, perm),
		Prepare: func(p Params) PreparedBijection {
			checkParams(name, p, 0)
			return withRows(name, &preparedRows{dim: dim, cdim: -1, direct: rows(perm), inverse: rows(inv), perm: perm})
		},
	}
}
