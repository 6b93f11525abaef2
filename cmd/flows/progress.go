package main

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/gonormflows/flows/optim"
)

// progress draws the progress bar of a fit, an epoch a step, with the
// latest training and validation NLL:
//
//	fit epoch 12 / 100 [=====>-------------] train 1.2345  val 1.3012  3s
//
// mpb draws it from its own goroutine; the text it shows is guarded by mu.
type progress struct {
	p   *mpb.Progress
	bar *mpb.Bar

	mu   sync.Mutex
	text string
}

// newProgress starts a bar of epochs steps on w.
func newProgress(w io.Writer, epochs int, opts ...mpb.ContainerOption) *progress {
	pr := &progress{}
	pr.p = mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithWidth(96), mpb.WithRefreshRate(100 * time.Millisecond)}, opts...)...)
	// A bar made with a total completes by itself when it reaches it, and
	// its total cannot change after; one made without completes only when
	// finish says so, where the fit ended (early stopping).
	pr.bar = pr.p.AddBar(0,
		mpb.PrependDecorators(
			decor.Name("fit"),
			decor.CountersNoUnit(" epoch %d / %d", decor.WCSyncWidth),
		),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			pr.mu.Lock()
			defer pr.mu.Unlock()
			return pr.text
		})),
	)
	pr.bar.SetTotal(int64(epochs), false)
	return pr
}

// update shows the state after an epoch; it is an optim.FitConfig.Progress.
func (pr *progress) update(s optim.Progress) {
	pr.mu.Lock()
	pr.text = fmt.Sprintf("train %.4f", s.TrainNLL)
	if !math.IsNaN(s.ValNLL) {
		pr.text += fmt.Sprintf("  val %.4f", s.ValNLL)
	}
	pr.text += "  " + s.Elapsed.Round(time.Second).String()
	pr.mu.Unlock()
	pr.bar.SetCurrent(int64(s.Epoch))
}

// finish completes the bar where it is (a fit that stopped early ends
// short of its epochs) or, when the fit failed, leaves it as it was, and
// waits until the last frame is drawn.
func (pr *progress) finish(ok bool) {
	if pr == nil {
		return
	}
	if ok {
		pr.bar.SetTotal(-1, true)
	} else {
		pr.bar.Abort(false)
	}
	pr.p.Wait()
}
