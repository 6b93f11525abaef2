package figs

import (
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/plot/vg"
)

// blob returns n points of a Gaussian around (cx, cy), wide sx and sy, and
// one far outlier.
func blob(n int, cx, cy, sx, sy float64) *mat.Dense {
	rng := rand.New(rand.NewPCG(1, 2))
	x := mat.NewDense(n, 2, nil)
	for i := range n {
		x.Set(i, 0, cx+sx*rng.NormFloat64())
		x.Set(i, 1, cy+sy*rng.NormFloat64())
	}
	x.Set(0, 0, 1e6)
	return x
}

func TestBoxOf(t *testing.T) {
	b := BoxOf(blob(2000, 10, -3, 2, 0.5))
	if b.XMin < 2 || b.XMin > 6 || b.XMax < 14 || b.XMax > 18 || b.YMin < -5 || b.YMax > -1 {
		t.Errorf("box %+v does not fit the points (an outlier stretched it?)", b)
	}
	if c := BoxOf(mat.NewDense(2, 2, []float64{1, 1, 1, 1})); !(c.XMin < 1 && c.XMax > 1) {
		t.Errorf("box of one point %+v", c)
	}
}

// out is where the pictures go: FIGS_OUT to look at them, else a temporary
// folder.
func out(t *testing.T) string {
	if d := os.Getenv("FIGS_OUT"); d != "" {
		return d
	}
	return t.TempDir()
}

func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: mode %v; want 0644 (0666 less the umask 022)", path, fi.Mode())
	}
	return img
}

// dark counts the pixels of r that are not near white.
func dark(img image.Image, r image.Rectangle) int {
	n := 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			if cr>>8 < 200 || cg>>8 < 200 || cb>>8 < 200 {
				n++
			}
		}
	}
	return n
}

// TestPictures draws each kind of picture and checks its file, its shape,
// and that the colour bar is drawn beside a density.
func TestPictures(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := out(t)
	wide := blob(3000, 0, 0, 3, 1)
	box := BoxOf(wide)
	if err := Scatter(filepath.Join(dir, "scatter.png"), Labels{Title: "a wide blob", X: "x₁", Y: "x₂"}, box,
		Set{Name: "data", Points: wide}, Set{Name: "samples", Points: blob(500, 0, 0.5, 2.5, 1)}); err != nil {
		t.Fatal(err)
	}
	logPDF := func(x *mat.Dense) []float64 {
		n, _ := x.Dims()
		out := make([]float64, n)
		for i := range n {
			a, b := x.At(i, 0)/3, x.At(i, 1)
			// A broad Gaussian and a sharp spike 1000 times higher.
			out[i] = math.Log(math.Exp(-(a*a+b*b)/2)/(2*math.Pi*3) + 0.01*math.Exp(-((a-1)*(a-1)+b*b)*5000)*5000/math.Pi)
		}
		return out
	}
	for _, s := range []Scale{Linear, Log} {
		name := []string{"linear.png", "log.png"}[s]
		if err := Density(filepath.Join(dir, name), Labels{Title: "a spike on a blob", X: "x₁", Y: "x₂"}, box, 200, s, logPDF); err != nil {
			t.Fatal(err)
		}
	}
	sc, lin, lg := decode(t, filepath.Join(dir, "scatter.png")), decode(t, filepath.Join(dir, "linear.png")), decode(t, filepath.Join(dir, "log.png"))
	if b := sc.Bounds(); 2*b.Dx() < 3*b.Dy() {
		t.Errorf("the scatter plot of a box 3 times wider than high is %v", b)
	}
	if lin.Bounds().Dx() <= sc.Bounds().Dx() {
		t.Error("the density picture has no room for its colour bar")
	}
	// The colour bar: a column of colour right of the plot.
	b := lin.Bounds()
	bar := image.Rect(b.Max.X-28, b.Dy()/4, b.Max.X-4, 3*b.Dy()/4)
	if dark(lin, bar) < bar.Dx()*bar.Dy()/4 {
		t.Errorf("no colour bar at %v", bar)
	}
	// On the log scale, the broad part shows; on the linear one, the spike
	// washes it out.
	plotArea := image.Rect(b.Min.X+80, b.Min.Y+30, b.Max.X-115, b.Max.Y-50)
	if nl, ng := dark(lin, plotArea), dark(lg, plotArea); ng < 5*nl {
		t.Errorf("dark pixels: linear %d, log %d: the log scale does not show the broad part", nl, ng)
	}

	panels := [][]*Panel{
		{HistPanel(Labels{Title: "data", X: "x₁", Y: "x₂"}, box, 80, Linear, wide), DensityPanel(Labels{Title: "density"}, box, 80, Log, logPDF)},
		{nil, DensityPanel(Labels{Title: "density"}, box, 80, Linear, logPDF)},
	}
	if err := Grid(filepath.Join(dir, "grid.png"), panels, 2.5*vg.Inch); err != nil {
		t.Fatal(err)
	}
	g := decode(t, filepath.Join(dir, "grid.png"))
	if g.Bounds().Dx() < 2*int(2.5*96) {
		t.Errorf("grid %v", g.Bounds())
	}
	if err := Grid(filepath.Join(dir, "none.png"), nil, vg.Inch); err == nil {
		t.Error("a grid of no panels")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) > 0 {
		t.Errorf("temporary files left: %v", m)
	}
}
