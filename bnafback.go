package flows

// BNAF's pullback of Direct on the tape of its pass (the formulas are in
// bnaf.go's file comment, "The log-determinant").

import (
	"math"
	"slices"

	"github.com/gonormflows/flows/internal/linalg"
)

// back is the Direct pullback on the tape: dz (n×dim rows) and dLogDet in,
// dL/dparams added into dp, dL/dc (n×cdim rows) returned (nil without a
// context), dL/dx returned.
func (b *bnaf) back(p Params, t *bnafTape, dz, dLogDet []float64, dp Params) (dx, dc []float64) {
	n := t.n
	// The log-det chain backwards: Ḡ per layer (summed over rows) and Ā
	// per hidden pre-activation.
	gG := make([][]float64, b.L)
	gA := make([][]float64, b.L) // gA[l] is n×w[l+1], for l < L−1
	vbar := make([]float64, n*b.dim)
	for i := range n {
		for r := range b.dim {
			vbar[i*b.dim+r] = dLogDet[i]
		}
	}
	for l := b.L - 1; l >= 0; l-- {
		in, out := b.w[l], b.w[l+1]
		G := t.ws[l].G
		gG[l] = make([]float64, out*in)
		if l == 0 {
			for i := range n {
				for r := range out {
					dlo, _ := b.rowRange(l, r)
					gG[l][r*in+dlo] += vbar[i*out+r]
				}
			}
			break
		}
		ubar := make([]float64, n*in)
		for i := range n {
			for r := range out {
				vb := vbar[i*out+r]
				if vb == 0 {
					continue
				}
				dlo, hi := b.rowRange(l, r)
				u := t.u[l-1][i*in+dlo : i*in+hi]
				gr := G[r*in+dlo : r*in+hi]
				ggr := gG[l][r*in+dlo : r*in+hi]
				ub := ubar[i*in+dlo : i*in+hi]
				vr := t.v[l][i*out+r]
				for c, uc := range u {
					g := vb * math.Exp(gr[c]+uc-vr)
					ggr[c] += g
					ub[c] += g
				}
			}
		}
		gA[l-1] = ubar
		vbar = ubar
	}

	// The output's backward pass, joined by Ā at each hidden layer.
	dpre := slices.Clone(dz)
	var dcs []float64
	for l := b.L - 1; l >= 0; l-- {
		in, out := b.w[l], b.w[l+1]
		lw := t.ws[l]
		gW := make([]float64, out*in)
		linalg.Gemm(true, false, out, in, n, 1, dpre, t.h[l], 0, gW)
		db := dp[b.off[l]+out*in+out : b.off[l]+out*in+2*out]
		for i := range n {
			for r, v := range dpre[i*out : (i+1)*out] {
				db[r] += v
			}
		}
		if l == 0 && b.cdim > 0 {
			linalg.Gemm(true, false, b.cdim, out, n, 1, t.c, dpre, 1, dp[b.ctx:b.ctx+b.cdim*out])
			dcs = make([]float64, n*b.cdim)
			linalg.Gemm(false, true, n, b.cdim, out, 1, dpre, p[b.ctx:b.ctx+b.cdim*out], 0, dcs)
		}
		dh := make([]float64, n*in)
		linalg.Gemm(false, false, n, in, out, 1, dpre, lw.W, 0, dh)
		b.weightsBack(l, lw, gW, gG[l], dp)
		if l == 0 {
			return dh, dcs
		}
		for k, d := range t.dphi[l-1] {
			dh[k] = dh[k]*d + gA[l-1][k]*t.dla[l-1][k]
		}
		dpre = dh
	}
	return nil, nil // not reached: L ≥ 1
}

// weightsBack adds into dp the gradient of layer l's raw W̃ and s given
// those of its effective weights W (gW) and diagonal logs G (gG); see the
// file's notes. Unused entries get no gradient.
func (b *bnaf) weightsBack(l int, lw bnafWeights, gW, gG []float64, dp Params) {
	in, out := b.w[l], b.w[l+1]
	dRaw := dp[b.off[l] : b.off[l]+out*in]
	ds := dp[b.off[l]+out*in : b.off[l]+out*in+out]
	for r := range out {
		dlo, hi := b.rowRange(l, r)
		W, V, G := lw.W[r*in:r*in+hi], lw.V[r*in:r*in+hi], gG[r*in:r*in+hi]
		gw := gW[r*in : r*in+hi]
		var sr, S, Gam float64
		for c := range W {
			sr += gw[c] * W[c]
			S += gw[c] * V[c]
		}
		for c := dlo; c < hi; c++ {
			Gam += G[c]
		}
		ds[r] += sr + Gam
		sig, n2 := lw.sigma[r], lw.n2[r]
		for c := range V {
			vb := sig*(gw[c]-S*V[c]/n2) - Gam*V[c]/n2
			if c >= dlo {
				dRaw[r*in+c] += vb*V[c] + G[c]
			} else {
				dRaw[r*in+c] += vb * lw.em[r] // V_c = W̃_c·e^{−m}
			}
		}
	}
}
