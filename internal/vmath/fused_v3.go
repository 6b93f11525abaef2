//go:build amd64.v3

package vmath

// tanhFused reports a build in which the compiler may fuse a·b+c into one
// FMA (GOAMD64=v3 or above: Go 1.26 builds math.tanh's s+q0, with s = x·x,
// as one fused x·x+q0), so math.tanh can round differently from the tanh
// kernel's separate multiplies and adds; Tanh then uses the portable loop.
const tanhFused = true
