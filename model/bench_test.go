package model_test

import (
	"fmt"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows/model"
)

// BenchmarkModelScore is issue 22's scoring call: the log densities of 1,
// 16 and 1,000 rows under a 5-block MAF with 2×64 hidden units on 8
// columns (parameters perturbed off the identity), through the prepared
// evaluator (the path of flows score, flows serve and Beam) and, for
// comparison, through the Model's unprepared LogPDF (the training path).
func BenchmarkModelScore(b *testing.B) {
	x := modelData(1, 1000, 8)
	m, err := model.New(model.Config{Kind: model.KindMAF, Layers: 5, Hidden: []int{64, 64}, Seed: 1}, x, nil)
	if err != nil {
		b.Fatal(err)
	}
	perturb(m, 0.05, 2)
	ev := m.Prepare()
	for _, n := range []int{1, 16, 1000} {
		xs := x.Slice(0, n, 0, 8).(*mat.Dense)
		b.Run(fmt.Sprintf("prepared/rows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ev.LogPDF(xs, nil)
			}
		})
		b.Run(fmt.Sprintf("unprepared/rows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.LogPDF(xs, nil)
			}
		})
	}
}
