//go:build !amd64.v3

package vmath

// tanhFused reports a build in which the compiler may fuse a·b+c into one
// FMA (GOAMD64=v3 or above; see fused_v3.go). Below v3 it never does.
const tanhFused = false
