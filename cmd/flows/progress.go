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
// latest training and validation NLL and the time the remaining epochs
// would take at the mean pace so far (early stopping may end the fit
// sooner):
//
//	fit epoch 12 / 100 [=====>-------------] train 1.2345  val 1.3012  at most 41s left
//
// Until the first epoch ends it says so, with the time spent. mpb draws it
// from its own goroutine; the text it shows is guarded by mu.
type progress struct {
	p      *mpb.Progress
	bar    *mpb.Bar
	epochs int
	start  time.Time

	mu   sync.Mutex
	text string
}

// newProgress starts a bar of epochs steps on w.
func newProgress(w io.Writer, epochs int, opts ...mpb.ContainerOption) *progress {
	pr := &progress{epochs: epochs, start: time.Now()}
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
			if pr.text == "" {
				return "first epoch running, " + time.Since(pr.start).Round(time.Second).String()
			}
			return pr.text
		})),
	)
	pr.bar.SetTotal(int64(epochs), false)
	return pr
}

// update shows the state after an epoch; it is an optim.FitConfig.Progress.
func (pr *progress) update(s optim.Progress) {
	pr.mu.Lock()
	if s.Epochs > 0 && s.Epochs != pr.epochs {
		// The fit's own budget, when the flag left it to the data.
		pr.epochs = s.Epochs
		pr.bar.SetTotal(int64(s.Epochs), false)
	}
	pr.text = fmt.Sprintf("train %.4f", s.TrainNLL)
	if !math.IsNaN(s.ValNLL) {
		pr.text += fmt.Sprintf("  val %.4f", s.ValNLL)
	}
	pr.text += "  at most " + timeLeft(s.Elapsed, s.Epoch, pr.epochs).String() + " left"
	pr.mu.Unlock()
	pr.bar.SetCurrent(int64(s.Epoch))
}

// timeLeft is how long the epochs after epoch done of total would take at
// the mean pace of the first done, rounded to the second.
func timeLeft(elapsed time.Duration, done, total int) time.Duration {
	if done <= 0 || done >= total {
		return 0
	}
	return (elapsed / time.Duration(done) * time.Duration(total-done)).Round(time.Second)
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
