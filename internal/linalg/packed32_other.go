//go:build !amd64 || purego

package linalg

// stridedKernel32 returns nil: this build has no float32 kernel that reads
// A in place, so Packed32 packs every tile of A.
func stridedKernel32(kn *kernelInfo) microKernel32S { return nil }
