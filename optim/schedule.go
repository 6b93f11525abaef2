package optim

import "math"

// Schedule gives the learning rate for a step. step counts from 0 (it is
// Adam.Steps() before the step is taken) and totalSteps is the length of the
// whole run. A Schedule is a pure function; use it with Adam.StepLR:
//
//	sched := optim.WarmupCosine(1e-3, 1e-5, 100)
//	for range total {
//		// ... compute grad ...
//		opt.StepLR(p, grad, sched(opt.Steps(), total))
//	}
type Schedule func(step, totalSteps int) float64

// Constant returns the Schedule that is lr at every step.
func Constant(lr float64) Schedule {
	return func(step, totalSteps int) float64 { return lr }
}

// Cosine returns the Schedule that decays from lr at step 0 to final at
// step totalSteps along half a cosine period:
//
//	final + (lr − final)·(1 + cos(π·step/totalSteps))/2
//
// so it is (lr + final)/2 half way. Steps at or before 0 give lr; later
// steps at or after totalSteps give final.
func Cosine(lr, final float64) Schedule {
	return func(step, totalSteps int) float64 {
		return cosineAt(lr, final, step, totalSteps)
	}
}

// WarmupCosine returns the Schedule that rises linearly over the first
// warmup steps, lr·(step+1)/warmup for step < warmup (so the first step is
// not wasted at rate 0 and step warmup−1 reaches lr), and then follows
// Cosine(lr, final) over the remaining steps: lr at step warmup, final at
// step totalSteps. WarmupCosine(lr, final, 0) is Cosine(lr, final). It
// panics if warmup is negative.
func WarmupCosine(lr, final float64, warmup int) Schedule {
	if warmup < 0 {
		panic("optim: WarmupCosine: negative warmup")
	}
	return func(step, totalSteps int) float64 {
		if step < warmup {
			step = max(step, 0)
			return lr * float64(step+1) / float64(warmup)
		}
		return cosineAt(lr, final, step-warmup, totalSteps-warmup)
	}
}

// cosineAt is the cosine decay from lr at step 0 to final at step total.
func cosineAt(lr, final float64, step, total int) float64 {
	switch {
	case step <= 0:
		return lr
	case step >= total:
		return final
	}
	frac := float64(step) / float64(total)
	return final + (lr-final)*(1+math.Cos(math.Pi*frac))/2
}
