//go:build !amd64 || purego

package linalg

// stridedKernel32 returns nil: this build has no float32 kernel that reads
// A in place, so Packed32 packs every tile of A.
func stridedKernel32(kn *kernelInfo) microKernel32S { return nil }

// reluKernels32 returns nils: this build has no kernel with a bias and
// ReLU in its update.
func reluKernels32(kn *kernelInfo) (microKernel32R, microKernel32SR) { return nil, nil }

// packKernel32 returns the kernel PackB32 packs n columns for: the only
// one.
func packKernel32(n int) *kernelInfo { return pickKernel(mcMax, n, true) }
