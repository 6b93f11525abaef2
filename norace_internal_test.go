//go:build !race

package flows

// raceEnabled reports whether the tests run under the race detector.
const raceEnabled = false
