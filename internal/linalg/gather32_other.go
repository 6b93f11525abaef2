//go:build !amd64 || purego

package linalg

// copyRows32 is the assembly copy of the amd64 build; never called in this
// one (hasConvert is false).
func copyRows32(dst []float32, b []float32, boff []int, c0 int) {
	panic("linalg: copyRows32 without assembly")
}
