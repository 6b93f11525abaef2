//go:build race

package prep_test

// raceEnabled reports whether the tests run under the race detector, whose
// instrumentation multiplies a function's CPU time and allocations.
const raceEnabled = true
