//go:build race

package flows

// raceEnabled reports whether the tests run under the race detector, whose
// sync.Pool drops buffers at random (so pooled code allocates).
const raceEnabled = true
