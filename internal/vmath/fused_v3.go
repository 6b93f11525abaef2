//go:build amd64.v3

package vmath

// tanhFused reports a build in which the compiler fuses a·b+c into one
// FMA (GOAMD64=v3 or above), so math.tanh's polynomial rounds differently
// from the tanh kernel's separate multiplies and adds.
const tanhFused = true
