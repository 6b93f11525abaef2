package flowstest_test

import (
	"fmt"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
)

// A layer is checked in one call: CheckBijection runs the whole suite
// (round trip, the log-det against a finite-difference Jacobian, the
// pullbacks against finite differences, aliasing, determinism,
// concurrency) and returns the failures joined, each starting with its
// check's name, or nil. In a test, TestBijection(t, b) runs each check as a
// subtest instead.
func Example() {
	layer := flowstest.Bijection{
		Name: "AffineCoupling",
		Init: flows.AffineCoupling(flows.MLP([]int{8}, flows.Tanh)),
		Dim:  3,
	}
	if err := flowstest.CheckBijection(layer); err != nil {
		fmt.Println(err)
	} else {
		fmt.Println("AffineCoupling: ok")
	}

	// The same layer with a slip: Direct doubles its log-determinant.
	layer.Init = doubledLogDet(layer.Init)
	err := flowstest.CheckBijection(layer)
	first, _, _ := strings.Cut(fmt.Sprint(err), ":")
	fmt.Println("doubled log-det caught:", err != nil, "first by", first)
	// Output:
	// AffineCoupling: ok
	// doubled log-det caught: true first by roundtrip
}

// doubledLogDet is init with Direct's log-determinant doubled.
func doubledLogDet(init flows.InitFunc) flows.InitFunc {
	return func(key flows.Key, dim, contextDim int) (flows.Params, flows.Bijection, error) {
		p, b, err := init(key, dim, contextDim)
		direct := b.Direct
		b.Direct = func(p flows.Params, x, c *mat.Dense) (*mat.Dense, []float64) {
			z, ld := direct(p, x, c)
			for i := range ld {
				ld[i] *= 2
			}
			return z, ld
		}
		return p, b, err
	}
}
