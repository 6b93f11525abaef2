package model_test

import (
	"fmt"

	"github.com/gonormflows/flows/model"
)

// Limits checks a configuration before anything is built: here hidden
// layers of 100 million units for a table of 3 columns and 1,000 rows,
// against a limit of 1 GiB.
func ExampleLimits_CheckConfig() {
	l := model.Limits{Memory: 1 << 30}
	fmt.Println(l.CheckConfig(model.Config{Hidden: []int{100_000_000}}, 3, 0, 1000))
	fmt.Println(l.CheckConfig(model.Config{Hidden: []int{64, 64}}, 3, 0, 1000))
	// Output:
	// flows: Hidden [100000000]: the model would hold 2.7e+10 parameters (1.35 TiB); the limit is 1 GiB (FLOWS_MAX_MEMORY or model.Limits)
	// <nil>
}
