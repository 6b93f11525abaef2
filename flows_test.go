package flows_test

import (
	"testing"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

// TestBijections runs the conformance suite over the parameter-free layers
// and the combinators; each layer's own file adds its cases the same way.
func TestBijections(t *testing.T) {
	for _, c := range []flowstest.Bijection{
		{Name: "Reverse/dim=1", Init: flows.Reverse(), Dim: 1},
		{Name: "Reverse/dim=4", Init: flows.Reverse(), Dim: 4},
		{Name: "Shuffle/dim=5", Init: flows.Shuffle(), Dim: 5},
		{Name: "Serial/empty", Init: flows.Serial(), Dim: 3},
		{Name: "Serial/permutations", Init: flows.Serial(flows.Shuffle(), flows.Reverse(), flows.Shuffle()), Dim: 4},
		{Name: "Invert/Shuffle", Init: flows.Invert(flows.Shuffle()), Dim: 4},
	} {
		flowstest.TestBijection(t, c)
	}
}

func TestDistributions(t *testing.T) {
	for _, c := range []flowstest.Distribution{
		{Name: "Normal/dim=1", Init: flows.Normal(), Dim: 1},
		{Name: "Normal/dim=2", Init: flows.Normal(), Dim: 2},
		{Name: "Normal/dim=5", Init: flows.Normal(), Dim: 5},
		{Name: "DiagNormal/dim=1", Init: flows.DiagNormal(), Dim: 1},
		{Name: "DiagNormal/dim=2", Init: flows.DiagNormal(), Dim: 2},
		{Name: "DiagNormal/dim=4", Init: flows.DiagNormal(), Dim: 4},
		{Name: "Flow/Shuffle/DiagNormal", Init: flows.Flow(flows.Shuffle(), flows.DiagNormal()), Dim: 2},
	} {
		flowstest.TestDistribution(t, c)
	}
}
