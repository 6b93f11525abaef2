package linalg

import "fmt"

// checkMask panics unless mask (nil: none) covers k rows and n columns;
// it returns the number of masks the rows use.
func checkMask(mask *GatherMask, n, k int) int {
	if mask == nil {
		return 0
	}
	if len(mask.Class) < k || mask.Words < blocks(n, 32) {
		panic(fmt.Sprintf("linalg: GemmGatherMaskF32: the mask (%d classes, %d words) is too short for %d rows of %d columns", len(mask.Class), mask.Words, k, n))
	}
	nclass := 0
	for _, r := range mask.Class[:k] {
		if r < 0 {
			panic(fmt.Sprintf("linalg: GemmGatherMaskF32: negative mask class %d", r))
		}
		nclass = max(nclass, int(r)+1)
	}
	if len(mask.Bits) < nclass*mask.Words {
		panic(fmt.Sprintf("linalg: GemmGatherMaskF32: %d mask words for %d masks of %d words", len(mask.Bits), nclass, mask.Words))
	}
	return nclass
}

// panelMask expands a GatherMask for one panel of B: vec[r·w + j] is all
// ones where mask r keeps the panel's column j, zero where it drops it and
// past the panel's columns.
type panelMask struct {
	*GatherMask
	vec []uint32
}

// set expands the masks for the panel of cols columns from column j0, w
// lanes each.
func (pm *panelMask) set(j0, cols, w int) {
	for r := range len(pm.vec) / w {
		v := pm.vec[r*w : (r+1)*w]
		bits := pm.Bits[r*pm.Words:]
		for j := range v {
			v[j] = 0
			if j < cols {
				jj := j0 + j
				v[j] = -(bits[jj/32] >> (jj % 32) & 1)
			}
		}
	}
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
