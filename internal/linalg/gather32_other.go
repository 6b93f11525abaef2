//go:build !amd64 || purego

package linalg

// copyRows is the assembly copy of the amd64 build; never called in this
// one (hasConvert is false).
func copyRows(dst []float32, w int, b []float32, boff []int, c0 int) {
	panic("linalg: copyRows without assembly")
}

// copyRowsMask is the assembly masked copy of the amd64 build; never
// called in this one (hasConvert is false).
func copyRowsMask(dst []float32, w int, b []float32, boff []int, c0 int, class []int32, vec []uint32) {
	panic("linalg: copyRowsMask without assembly")
}
