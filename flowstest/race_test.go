//go:build race

package flowstest_test

// raceEnabled reports whether the tests run under the race detector, which
// rightly reports the deliberate write of a layer that scribbles on its
// input while the concurrency check runs it.
const raceEnabled = true
