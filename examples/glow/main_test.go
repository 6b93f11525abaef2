package main

import (
	"bytes"
	"encoding/gob"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// tinyRun returns the options of a small, fast run on images made by
// tinyImages: 32 training images in batches of 8 (4 steps an epoch), a
// one-step Glow with 4 hidden channels, a checkpoint every 3 steps.
func tinyRun(out string) options {
	return options{out: out, f32: true, nTrain: 32, nTest: 8, epochs: 3, steps: 1, hidden: 4, batch: 8,
		lr: 2e-3, warmup: 3, every: 2, seed: 7, checkpointEvery: 3}
}

// tinyImages returns n random integer images.
func tinyImages(n int, seed uint64) *mat.Dense {
	r := rand.New(rand.NewPCG(seed, 1))
	x := mat.NewDense(n, shape.Size(), nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = float64(r.IntN(256))
	}
	return x
}

// readCheckpoint reads dir's checkpoint.
func readCheckpoint(t *testing.T, dir string) checkpoint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, checkpointName))
	if err != nil {
		t.Fatal(err)
	}
	var ck checkpoint
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&ck); err != nil {
		t.Fatal(err)
	}
	return ck
}

// TestResumeBitIdentical checks that a run of 12 steps (3 epochs of 4)
// ends with the same bits as one stopped after 7 steps (after its
// mid-epoch checkpoint at step 6, as a kill would leave it) and resumed:
// the parameters, Adam's state, the logged bits/dim, the sample grid and
// the interpolation strip. It also checks that resuming with another
// -hidden is refused, naming the flag.
func TestResumeBitIdentical(t *testing.T) {
	xTrain, xTest := tinyImages(32, 1), tinyImages(8, 2)
	whole, parts := t.TempDir(), t.TempDir()
	if err := trainOn(tinyRun(whole), xTrain, xTest); err != nil {
		t.Fatal(err)
	}
	o := tinyRun(parts)
	o.stopAfter = 7
	if err := trainOn(o, xTrain, xTest); err != nil {
		t.Fatal(err)
	}
	if ck := readCheckpoint(t, parts); ck.Step != 6 || len(ck.Epochs) != 1 {
		t.Fatalf("the stopped run's checkpoint is at step %d with %d epochs, want step 6 with 1", ck.Step, len(ck.Epochs))
	}
	bad := tinyRun(parts)
	bad.resume, bad.hidden = parts, 5
	if err := trainOn(bad, xTrain, xTest); err == nil || !strings.Contains(err.Error(), `-hidden is "5" here but "4" in the checkpoint`) {
		t.Fatalf("resuming with -hidden 5: error %v, want one naming -hidden", err)
	}
	o = tinyRun(parts)
	o.resume = parts
	if err := trainOn(o, xTrain, xTest); err != nil {
		t.Fatal(err)
	}

	a, b := readCheckpoint(t, whole), readCheckpoint(t, parts)
	if a.Step != 12 || b.Step != 12 {
		t.Fatalf("final checkpoints at steps %d and %d, want 12", a.Step, b.Step)
	}
	for i := range a.Params {
		if math.Float64bits(a.Params[i]) != math.Float64bits(b.Params[i]) {
			t.Fatalf("parameter %d: %v resumed, %v uninterrupted", i, b.Params[i], a.Params[i])
		}
	}
	if !bytes.Equal(a.Adam, b.Adam) {
		t.Fatal("Adam's state differs between the resumed and the uninterrupted run")
	}
	if len(a.Epochs) != 3 || len(b.Epochs) != 3 {
		t.Fatalf("%d and %d epochs recorded, want 3", len(a.Epochs), len(b.Epochs))
	}
	for e := range a.Epochs {
		ra, rb := a.Epochs[e], b.Epochs[e]
		if ra.Train != rb.Train || ra.Test != rb.Test {
			t.Errorf("epoch %d: train %v, test %v bits/dim resumed; %v, %v uninterrupted", e+1, rb.Train, rb.Test, ra.Train, ra.Test)
		}
	}
	if b.Session != 1 || b.Epochs[2].Session != 1 || b.Epochs[2].Resume != 6 || b.Epochs[0].Session != 0 {
		t.Errorf("sessions %d, %d (resumed at %d), want 1, 0 and 6", b.Session, b.Epochs[0].Session, b.Epochs[2].Resume)
	}
	for _, name := range []string{"samples.png", "interp.png"} {
		pa, errA := os.ReadFile(filepath.Join(whole, name))
		pb, errB := os.ReadFile(filepath.Join(parts, name))
		if errA != nil || errB != nil || !bytes.Equal(pa, pb) {
			t.Errorf("%s differs between the resumed and the uninterrupted run (errors %v, %v)", name, errA, errB)
		}
	}
	tsv, err := os.ReadFile(filepath.Join(parts, progressName))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(string(tsv)), "\n"); len(lines) != 4 || !strings.HasPrefix(lines[3], "3\t12\t") {
		t.Errorf("progress.tsv:\n%s\nwant a header and epochs 1 to 3", tsv)
	}
}
