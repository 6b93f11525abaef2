package flows_test

import (
	"fmt"
	"math"

	"github.com/gonormflows/flows"
)

// DeepSigmoidalBounded acts on [−B, B] and continues with slope 1 beyond:
// a far value keeps its distance to the bulk, and the inverse holds there
// and inside, even at parameters a conditioner gives for far inputs.
func ExampleDeepSigmoidalBounded() {
	t := flows.DeepSigmoidalBounded(2, 1, 4) // 2 units, 1 layer, B = 4
	theta := []float64{1, -0.5, 2e6, -3e8, 0.3, -0.3}
	for _, x := range []float64{-1e6, -2, 0.5, 4, 1e6} {
		y, ld := t.Forward(theta, x)
		xb, _ := t.Inverse(theta, y)
		fmt.Printf("x = %-8g y = %-10.6g log f′ = %-8.4f round trip within 1e-12: %v\n", x, y, ld, math.Abs(xb-x) <= 1e-12*max(1, math.Abs(x)))
	}
	// Output:
	// x = -1e+06   y = -999997    log f′ = 0.0000   round trip within 1e-12: true
	// x = -2       y = 0.6217     log f′ = -2.7628  round trip within 1e-12: true
	// x = 0.5      y = 0.768252   log f′ = -2.3489  round trip within 1e-12: true
	// x = 4        y = 1.53809    log f′ = 0.0000   round trip within 1e-12: true
	// x = 1e+06    y = 999998     log f′ = 0.0000   round trip within 1e-12: true
}
