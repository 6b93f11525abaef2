package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/gonormflows/flows/internal/linalg"
	"github.com/gonormflows/flows/optim"
)

func TestSpan(t *testing.T) {
	v := make([]float64, 1001)
	for i := range v {
		v[i] = float64(i)
	}
	v[500] = 1e9 // an outlier does not stretch the box
	lo, hi, ok := span(v)
	if !ok || lo > 5 || lo < -200 || hi < 995 || hi > 1200 {
		t.Errorf("span = %v, %v", lo, hi)
	}
	if lo, hi, _ := span([]float64{3, 3}); !(lo < 3 && hi > 3) {
		t.Errorf("span of a constant = %v, %v", lo, hi)
	}
}

// TestProgress draws the bar into a buffer, as on a terminal.
func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	pr := newProgress(&buf, 10, mpb.WithAutoRefresh(), mpb.WithWidth(80))
	for epoch := 1; epoch <= 4; epoch++ {
		pr.update(optim.Progress{Epoch: epoch, TrainNLL: 2.5, ValNLL: 2.75, Elapsed: time.Duration(epoch) * time.Second})
	}
	pr.update(optim.Progress{Epoch: 5, TrainNLL: 2.25, ValNLL: math.NaN()})
	pr.finish(true) // stopped early: the bar completes at epoch 5
	out := buf.String()
	for _, w := range []string{"fit", "epoch 5 / 5", "train 2.2500", "at most "} {
		if !strings.Contains(out, w) {
			t.Errorf("the bar does not show %q:\n%q", w, out)
		}
	}
	for _, tc := range []struct {
		elapsed     time.Duration
		done, total int
		want        time.Duration
	}{{4 * time.Second, 4, 10, 6 * time.Second}, {time.Second, 0, 10, 0}, {time.Second, 10, 10, 0}, {1500 * time.Millisecond, 1, 3, 3 * time.Second}} {
		if got := timeLeft(tc.elapsed, tc.done, tc.total); got != tc.want {
			t.Errorf("timeLeft(%v, %d, %d) = %v, want %v", tc.elapsed, tc.done, tc.total, got, tc.want)
		}
	}
	var nilBar *progress
	nilBar.finish(false) // no bar: nothing to do
}

// TestChunkSizeIrrelevant: score and sample give the same bytes whatever
// chunkRows is (sample's rows come in keyed blocks of sampleBlock).
func TestChunkSizeIrrelevant(t *testing.T) {
	if linalg.Backend() == "openblas" {
		// OpenBLAS's order of summation depends on the batch's size.
		t.Skip("chunks giving the same bits is our kernels' promise, not OpenBLAS's")
	}
	dir := t.TempDir()
	writeMixture(t, dir+"/data.csv", 300)
	quiet := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	if code := run(quiet, append([]string{"fit", dir + "/data.csv", "-o", dir + "/m.flow", "--quiet"}, tinyFit...)); code != 0 {
		t.Fatalf("fit: exit %d: %s", code, quiet.stderr)
	}
	defer func(n int) { chunkRows = n }(chunkRows)
	outputs := func() (score, sample string) {
		for _, args := range [][]string{
			{"score", dir + "/m.flow", dir + "/data.csv", "--top", "0"},
			{"sample", dir + "/m.flow", "-n", "9000", "--seed", "4"},
		} {
			var out, errs bytes.Buffer
			if code := run(&env{stdout: &out, stderr: &errs}, args); code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errs.String())
			}
			if args[0] == "score" {
				score = out.String()
			} else {
				sample = out.String()
			}
		}
		return score, sample
	}
	chunkRows = 4096
	score, sample := outputs()
	for _, n := range []int{1, 7, 1000} {
		chunkRows = n
		if s, x := outputs(); s != score || x != sample {
			t.Errorf("chunkRows %d: the output differs from chunkRows 4096's (score %v, sample %v)", n, s == score, x == sample)
		}
	}
}
