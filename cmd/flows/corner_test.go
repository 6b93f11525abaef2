package main

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gonormflows/flows/internal/plotstyle"
	"gonum.org/v1/plot/vg"
)

func TestAxisTicks(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{-3.2, 3.7}, {0, 1}, {5.1, 15.3}, {-0.0012, 0.0031}, {1e6, 3e6}, {-2.6, 5.2}} {
		for _, most := range []int{4, 5} {
			ticks := axisTicks{most: most}.Ticks(tc.lo, tc.hi)
			if len(ticks) < 2 || len(ticks) > most {
				t.Errorf("%v, at most %d: %d ticks %v", tc, most, len(ticks), ticks)
				continue
			}
			step := ticks[1].Value - ticks[0].Value
			for i, tk := range ticks {
				if tk.Value < tc.lo || tk.Value > tc.hi || tk.Label == "" {
					t.Errorf("%v: tick %v", tc, tk)
				}
				if i > 0 && math.Abs(tk.Value-ticks[i-1].Value-step) > 1e-9*step {
					t.Errorf("%v: uneven ticks %v", tc, ticks)
				}
			}
			if m := step / math.Pow(10, math.Floor(math.Log10(step)+1e-9)); !near(m, 1) && !near(m, 2) && !near(m, 2.5) && !near(m, 5) {
				t.Errorf("%v: step %v is not a round number", tc, step)
			}
		}
	}
	if ticks := (axisTicks{most: 4, unlabelled: true}).Ticks(0, 10); len(ticks) == 0 || ticks[0].Label != "" {
		t.Errorf("unlabelled ticks %v", ticks)
	}
	if got := (plotstyle.PowerTicks{}).Ticks(-4, 0); len(got) != 5 || got[0].Label != "1e-04" || got[4].Label != "1" || got[2].Label != "0.01" {
		t.Errorf("power ticks %v", got)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestPointStyle: more points are drawn smaller and more transparent.
func TestPointStyle(t *testing.T) {
	r0, a0 := pointStyle(100, 2*vg.Inch)
	for _, n := range []int{178, 1000, 5000, 100000} {
		r, a := pointStyle(n, 2*vg.Inch)
		if r > r0 || a > a0 || r <= 0 || a == 0 {
			t.Errorf("%d points: radius %v, alpha %d after %v, %d", n, r, a, r0, a0)
		}
		r0, a0 = r, a
	}
	if rs, _ := pointStyle(1000, 1.1*vg.Inch); rs >= func() vg.Length { r, _ := pointStyle(1000, 2*vg.Inch); return r }() {
		t.Error("points in a small panel are not drawn smaller")
	}
	if cornerSamplesFor(178) != cornerMinScat || cornerSamplesFor(3000) != 3000 || cornerSamplesFor(1e6) != cornerMaxScat || cornerSamplesFor(0) != cornerSamples {
		t.Error("cornerSamplesFor")
	}
}

// decodePNG reads the PNG at path.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s does not decode: %v", path, err)
	}
	return img
}

// countColors counts the pixels of the rectangle r of img that are orange
// (samples), blue (the density and the model) and dark grey (data).
func countColors(img image.Image, r image.Rectangle) (orange, blue, dark int) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			R, G, B := cr>>8, cg>>8, cb>>8
			switch {
			case R > 200 && G > 90 && G < 200 && B < 120:
				orange++
			case B > R+40 && B > 90:
				blue++
			case R < 90 && G < 90 && B < 90:
				dark++
			}
		}
	}
	return
}

// TestPlotCorner draws the corner plots of models of 1, 2 and 3 columns and
// checks what is where: samples below the diagonal, the density above it.
func TestPlotCorner(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	fitTiny(t, dir)

	// 2 columns: the density panel is top right, the scatter bottom left.
	mustRun(t, dir, "plot", "model.flow", "data.csv", "-o", "c2.png")
	img := decodePNG(t, filepath.Join(dir, "c2.png"))
	b := img.Bounds()
	grid := b.Dx() - int(math.Round(cornerStrip*cornerDPI)) // the panels' part
	topRight := image.Rect(grid/2+20, b.Dy()/6, grid-10, b.Dy()/2-20)
	bottomLeft := image.Rect(grid/8, b.Dy()/2+40, grid/2-20, b.Dy()-60)
	if _, blue, _ := countColors(img, topRight); blue < 2000 {
		t.Errorf("the density panel (top right) has %d blue pixels", blue)
	}
	if orange, _, dark := countColors(img, bottomLeft); orange < 300 || dark < 300 {
		t.Errorf("the scatter panel (bottom left) has %d orange and %d dark pixels", orange, dark)
	}
	if orange, _, _ := countColors(img, topRight); orange > 0 {
		t.Errorf("the density panel has %d orange pixels", orange)
	}
	if fi, err := os.Stat(filepath.Join(dir, "c2.png")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("c2.png: mode %v, %v; want 0644 (0666 less the umask 022)", fi.Mode(), err)
	}

	// 3 columns, 1 column, and the options.
	rng := rand.New(rand.NewPCG(5, 6))
	var s3, s1 strings.Builder
	s3.WriteString("a,b,c\n")
	s1.WriteString("v\n")
	for range 300 {
		a := rng.NormFloat64()
		fmt.Fprintf(&s3, "%.5f,%.5f,%.5f\n", a, a*a+0.3*rng.NormFloat64(), 5+2*rng.NormFloat64())
		fmt.Fprintf(&s1, "%.5f\n", rng.NormFloat64())
	}
	writeFile(t, filepath.Join(dir, "d3.csv"), s3.String())
	writeFile(t, filepath.Join(dir, "d1.csv"), s1.String())
	mustRun(t, dir, append([]string{"fit", "d3.csv", "-o", "m3.flow"}, tinyFit...)...)
	mustRun(t, dir, append([]string{"fit", "d1.csv", "-o", "m1.flow"}, tinyFit...)...)
	mustRun(t, dir, "plot", "m3.flow", "d3.csv", "-o", "c3.png", "-n", "300")
	mustRun(t, dir, "plot", "m3.flow", "-o", "c3log.png", "--log-scale", "-n", "0")
	mustRun(t, dir, "plot", "m3.flow", "d3.csv", "-o", "c3show.png", "--show", "c,0", "--xlim", "0,10")
	mustRun(t, dir, "plot", "m3.flow", "d3.csv", "-o", "c3.svg")
	mustRun(t, dir, "plot", "m1.flow", "d1.csv", "-o", "c1.png")
	w3, w2, w1 := decodePNG(t, filepath.Join(dir, "c3.png")).Bounds().Dx(), b.Dx(), decodePNG(t, filepath.Join(dir, "c1.png")).Bounds().Dx()
	if !(w1 < w2 && w2 < w3) {
		t.Errorf("widths of 1, 2 and 3 columns: %d, %d, %d", w1, w2, w3)
	}
	if ws := decodePNG(t, filepath.Join(dir, "c3show.png")).Bounds().Dx(); ws != w2 {
		t.Errorf("--show of 2 columns: width %d, want %d as for a model of 2", ws, w2)
	}
	if svg := readText(t, filepath.Join(dir, "c3.svg")); !strings.Contains(svg, "<svg") {
		t.Error("c3.svg is not SVG")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plot", "m3.flow", "-o", "x.png", "--show", "d"}, "--show d: m3.flow has no column of that name or index; its columns are a, b, c"},
		{[]string{"plot", "m3.flow", "-o", "x.png", "--show", "a,0"}, `--show lists column "a" twice`},
		{[]string{"plot", "m3.flow", "-o", "x.png", "--show", "a", "--ylim", "0,1"}, "--ylim sets the second shown column's range, but 1 column is shown"},
		{[]string{"plot", "m3.flow", "-o", "x.png", "-n", "-3"}, `"-3" is not a count`},
	} {
		r := flowsRun(t, dir, tc.args...)
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.png")); err == nil {
		t.Error("a failed plot wrote x.png")
	}
	r := mustRun(t, dir, "help", "plot")
	for _, w := range []string{"--log-scale", "--show list", "corner plot", "flows serve"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("flows help plot does not say %q", w)
		}
	}
	noTemps(t, dir)
}
