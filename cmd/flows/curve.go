package main

// flows fit --curve: the learning curve, a picture of the training and
// validation NLL of every epoch.

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/gonormflows/flows/optim"
)

// pictureFormat returns the format of a picture file from its extension:
// png (also for none), svg or pdf; flag names the flag in the error.
func pictureFormat(cmd, flag, path string) (string, error) {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	switch format {
	case "png", "svg", "pdf":
		return format, nil
	case "":
		return "png", nil
	}
	return "", usagef(cmd, "%s %s: want a .png, .svg or .pdf file", flag, path)
}

// writePicture renders p at w×h in format and writes it to path,
// atomically.
func writePicture(e *env, path, format string, p *plot.Plot, w, h vg.Length) error {
	wt, err := p.WriterTo(w, h, format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return err
	}
	return writeOutput(e, path, func(out io.Writer) error {
		_, err := out.Write(buf.Bytes())
		return err
	})
}

// Colours of the learning curve.
var (
	trainColour = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	valColour   = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff} // red
)

// learningCurve draws res's training NLL (the mean minibatch loss of each
// epoch), validation NLL and early-stopping score against the epoch, with
// the kept epoch marked on the score and the epochs of recoveries from
// blow-ups. The y axis leaves out the
// first epoch's values when they would squash the rest.
func learningCurve(title string, res optim.FitResult) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "negative log-likelihood (nats per row)"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())

	series := func(v []float64) plotter.XYs {
		var xy plotter.XYs
		for i, y := range v {
			if !math.IsNaN(y) && !math.IsInf(y, 0) {
				xy = append(xy, plotter.XY{X: float64(i + 1), Y: y})
			}
		}
		return xy
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range [][]float64{res.TrainNLL, res.ValNLL, res.ValScore} {
		for i, y := range v {
			if math.IsNaN(y) || math.IsInf(y, 0) || (i == 0 && len(v) > 2) {
				continue
			}
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	for _, s := range []struct {
		name   string
		v      []float64
		colour color.Color
		dashed bool
	}{
		{"training (mean minibatch loss)", res.TrainNLL, trainColour, false},
		{"validation", res.ValNLL, valColour, false},
		{"validation without its worst tenth (early stopping)", res.ValScore, valColour, true},
	} {
		xy := series(s.v)
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = s.colour, s.colour
		l.Width = vg.Points(1.5)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pts.Shape, pts.Radius = draw.CircleGlyph{}, vg.Points(2)
		p.Add(l, pts)
		p.Legend.Add(s.name, l)
	}
	if res.BestEpoch > 0 {
		best := res.BestEpoch
		y := res.TrainNLL[best-1]
		if res.ValScore != nil {
			y = res.ValScore[best-1]
		}
		if !math.IsNaN(y) && !math.IsInf(y, 0) {
			s, err := plotter.NewScatter(plotter.XYs{{X: float64(best), Y: y}})
			if err != nil {
				return nil, err
			}
			s.Shape, s.Radius, s.Color = draw.RingGlyph{}, vg.Points(6), color.Black
			p.Add(s)
			p.Legend.Add(fmt.Sprintf("kept: epoch %d", best), s)
		}
	}
	for k, r := range res.Recoveries {
		l, err := plotter.NewLine(plotter.XYs{{X: float64(r.Epoch), Y: lo}, {X: float64(r.Epoch), Y: hi}})
		if err != nil {
			return nil, err
		}
		l.Color, l.Dashes = color.Gray{Y: 0x80}, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		if k == 0 {
			p.Legend.Add("recovered from a blow-up", l)
		}
	}
	if lo < hi {
		pad := 0.05 * (hi - lo)
		p.Y.Min, p.Y.Max = lo-pad, hi+pad
	}
	p.X.Min, p.X.Max = 0.5, float64(max(res.Epochs, 1))+0.5
	return p, nil
}
