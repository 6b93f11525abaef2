//go:build !amd64 || purego

package linalg

func init() {
	defaultKernel = goKernel
	forceKernel(kernels())
}

// kernels lists the kernels this build runs (for tests).
func kernels() []*kernelInfo { return []*kernelInfo{goKernel} }

// pickKernel chooses the kernel for an m×n product.
func pickKernel(m, n int, f32 bool) *kernelInfo { return goKernel }
