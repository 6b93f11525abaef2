package linalg

import "fmt"

// checkMask panics unless mask (nil: none) covers k rows and n columns
// and every row's class is one of its len(Bits)/Words masks; it returns
// that number of masks.
func checkMask(mask *GatherMask, n, k int) int {
	if mask == nil {
		return 0
	}
	if len(mask.Class) < k || mask.Words < blocks(n, 32) {
		panic(fmt.Sprintf("linalg: GemmGatherMaskF32: the mask (%d classes, %d words) is too short for %d rows of %d columns", len(mask.Class), mask.Words, k, n))
	}
	nclass := len(mask.Bits) / mask.Words
	for p, r := range mask.Class[:k] {
		if r < 0 || int(r) >= nclass {
			panic(fmt.Sprintf("linalg: GemmGatherMaskF32: row %d has mask %d of %d", p, r, nclass))
		}
	}
	return nclass
}

// expand returns the masks expanded to panels of w columns: panel q's
// mask r at [(q·nclass + r)·w:], nclass = len(Bits)/Words masks, its lane j
// all ones where mask r keeps column q·w + j, zero where it drops it (past
// column 32·Words, panels are never packed by lanes). The expansion is
// made once per width and kept.
func (m *GatherMask) expand(w int) []uint32 {
	if v, ok := m.lanes.Load(w); ok {
		return v.([]uint32)
	}
	nclass, cols := len(m.Bits)/m.Words, 32*m.Words
	v := make([]uint32, blocks(cols, w)*nclass*w)
	for q := range blocks(cols, w) {
		for r := range nclass {
			lane := v[(q*nclass+r)*w:][:w]
			for j := range lane {
				if jj := q*w + j; jj < cols {
					lane[j] = -(m.Bits[r*m.Words+jj/32] >> (jj % 32) & 1)
				}
			}
		}
	}
	got, _ := m.lanes.LoadOrStore(w, v)
	return got.([]uint32)
}

// packGatherMask is packGather with row p's entries ANDed with the lanes
// of mask class[p] (vec, w lanes a mask: see panelMask).
func packGatherMask(dst []float32, w int, b []float32, boff, coff []int, class []int32, vec []uint32) {
	cols := len(coff)
	if cols == w && w%8 == 0 && hasConvert && coff[cols-1]-coff[0] == cols-1 && consecutive(coff) {
		copyRowsMask(dst[:len(boff)*w], w, b, boff, coff[0], class, vec) // in bounds: checkOffsets, checkMask
		return
	}
	for p, o := range boff {
		d, v := dst[p*w:p*w+w], vec[int(class[p])*w:][:w]
		for j, cj := range coff {
			d[j] = 0
			if v[j] != 0 {
				d[j] = b[o+cj]
			}
		}
		clear(d[cols:])
	}
}
