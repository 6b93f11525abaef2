package main

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// decodeBenchBodies returns score requests of 1 and 1,000 rows of 8
// columns a, b, …, h, as arrays and as objects, with values of up to 5
// decimals: the bodies of BenchmarkDecodeScoreJSON, and of the jsontext
// comparison in serve_json.go's design notes.
func decodeBenchBodies() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	out := map[string][]byte{}
	for _, n := range []int{1, 1000} {
		var arr, obj strings.Builder
		arr.WriteString(`{"rows":[`)
		obj.WriteString(`{"rows":[`)
		for i := range n {
			if i > 0 {
				arr.WriteByte(',')
				obj.WriteByte(',')
			}
			arr.WriteByte('[')
			obj.WriteByte('{')
			for j := range 8 {
				if j > 0 {
					arr.WriteByte(',')
					obj.WriteByte(',')
				}
				v := strconv.FormatFloat(float64(int(rng.NormFloat64()*1e5))/1e5, 'g', -1, 64)
				arr.WriteString(v)
				fmt.Fprintf(&obj, "%q:%s", names[j], v)
			}
			arr.WriteByte(']')
			obj.WriteByte('}')
		}
		arr.WriteString("]}")
		obj.WriteString("]}")
		out[fmt.Sprintf("arrays-%d", n)] = []byte(arr.String())
		out[fmt.Sprintf("objects-%d", n)] = []byte(obj.String())
	}
	return out
}

// BenchmarkDecodeScoreJSON measures the JSON decoder alone.
func BenchmarkDecodeScoreJSON(b *testing.B) {
	s := &schema{names: []string{"a", "b", "c", "d", "e", "f", "g", "h"}, dim: 8, maxRows: 1000, path: "m.flow"}
	bodies := decodeBenchBodies()
	for _, k := range []string{"arrays-1", "objects-1", "arrays-1000", "objects-1000"} {
		body := bodies[k]
		b.Run(k, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := decodeScoreJSON(body, s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
