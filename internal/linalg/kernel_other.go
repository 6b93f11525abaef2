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

// hasConvert reports that convertPanel may run: never in this build.
const hasConvert = false

// convertPanel is the assembly conversion of the amd64 build; never called
// in this one.
func convertPanel(dst []float32, w int, src []float64, ld, rows, np int) {
	panic("linalg: convertPanel without assembly")
}
