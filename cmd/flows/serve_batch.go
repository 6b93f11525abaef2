package main

// Batching of score requests: the requests that wait for a worker are
// scored together, by whichever of them gets a worker first. A row's log
// density does not depend on the other rows of its batch (the library
// guarantees it, bit for bit), so a request's answer is the same alone or
// batched; under load, the fixed cost of a call to the model (its masked
// weights are made afresh on every call) is paid once for many requests.

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"
)

// batchRows is the most rows scored in one call: as many as score and
// flows score use, so that a batch costs what a chunk of a file does.
var batchRows = 4096

// scoreJob is a decoded score request waiting to be scored, or scored.
type scoreJob struct {
	st     *modelState
	x, c   *mat.Dense
	cats   []string // the levels, row-major; nil without categorical columns
	latent bool

	claimed bool          // taken from the queue (under batcher.mu)
	done    chan struct{} // one token once lp (and z) are set, or panicked; buffered
	lp      []float64
	z       *mat.Dense
	panic   any         // what the scoring panicked with, if it did
	timer   *time.Timer // for --queue-wait, kept with the job for its next use
}

// The jobs are pooled with their channel and timer (jobs, getJob and
// putJob): a claimed job's done gets exactly one token, which the job's
// own request takes before it returns, so a job put back holds none.

// getJob returns a job of the request req for the model of st, from the
// pool.
func (s *server) getJob(st *modelState, req *scoreRequest, latent bool) *scoreJob {
	j, _ := s.jobs.Get().(*scoreJob)
	if j == nil {
		j = &scoreJob{done: make(chan struct{}, 1)}
	}
	j.st, j.x, j.c, j.cats, j.latent = st, req.x, req.c, req.cats, latent
	return j
}

// putJob returns a job whose schedule has returned to the pool, holding
// nothing of its request.
func (s *server) putJob(j *scoreJob) {
	*j = scoreJob{done: j.done, timer: j.timer}
	s.jobs.Put(j)
}

// batcher holds the score jobs waiting for a worker, oldest first.
type batcher struct {
	mu      sync.Mutex
	waiting []*scoreJob
}

// schedule scores the job: it waits for a worker (at most --queue-wait)
// and, holding one, scores the waiting jobs, this one among them or not;
// or another request's worker scores this one. It returns when the job is
// scored, or with the error of a job that waited too long or whose client
// left.
func (s *server) schedule(r *http.Request, j *scoreJob) *requestError {
	s.batch.mu.Lock()
	s.batch.waiting = append(s.batch.waiting, j)
	s.batch.mu.Unlock()
	s.metrics.queued.Add(1)
	var timeout <-chan time.Time
	for {
		if s.isClaimed(j) {
			<-j.done // a worker is scoring it
			return j.result()
		}
		// Take a worker free at once; else wait up to --queue-wait. A
		// worker taken scores the oldest jobs, which are this one or come
		// before it.
		if timeout == nil {
			select {
			case s.slots <- struct{}{}:
				s.lead()
				<-s.slots
				continue
			default:
			}
			if j.timer == nil {
				j.timer = time.NewTimer(s.f.queueWait)
			} else {
				j.timer.Reset(s.f.queueWait) // stopped: no stale tick (Go 1.23's timers)
			}
			defer j.timer.Stop()
			timeout = j.timer.C
		}
		select {
		case s.slots <- struct{}{}:
			s.lead()
			<-s.slots
		case <-j.done:
			return j.result()
		case <-timeout:
			if s.unqueue(j) {
				return s.overloaded()
			}
		case <-r.Context().Done():
			if s.unqueue(j) {
				return clientGone()
			}
		}
	}
}

// result returns nil for a scored job, or panics again with what the
// scoring panicked with (the handler answers 500 and logs it).
func (j *scoreJob) result() *requestError {
	if j.panic != nil {
		panic(fmt.Sprintf("scoring a batch: %v", j.panic))
	}
	return nil
}

// isClaimed reports whether a worker has taken the job.
func (s *server) isClaimed(j *scoreJob) bool {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	return j.claimed
}

// unqueue takes the job out of the queue, unless a worker has taken it,
// and reports whether it did.
func (s *server) unqueue(j *scoreJob) bool {
	s.batch.mu.Lock()
	defer s.batch.mu.Unlock()
	if j.claimed {
		return false
	}
	for i, w := range s.batch.waiting {
		if w == j {
			s.batch.waiting = append(s.batch.waiting[:i], s.batch.waiting[i+1:]...)
			break
		}
	}
	j.claimed = true
	s.metrics.queued.Add(-1)
	return true
}

// lead, holding a worker, takes the oldest waiting job and every other
// waiting job of the same model and kind (latent or not) that fits in
// batchRows rows, scores them in one call, and marks them done.
func (s *server) lead() {
	s.batch.mu.Lock()
	if len(s.batch.waiting) == 0 {
		s.batch.mu.Unlock()
		return
	}
	head := s.batch.waiting[0]
	var room [16]*scoreJob // the jobs of a batch of up to 16 without an allocation
	jobs := append(room[:0], head)
	rows, _ := head.x.Dims()
	keep := s.batch.waiting[:0]
	for _, j := range s.batch.waiting[1:] {
		n, _ := j.x.Dims()
		if j.st == head.st && j.latent == head.latent && rows+n <= batchRows {
			jobs = append(jobs, j)
			rows += n
			continue
		}
		keep = append(keep, j)
	}
	clear(s.batch.waiting[len(keep):]) // no references to scored jobs
	s.batch.waiting = keep
	for _, j := range jobs {
		j.claimed = true
	}
	s.batch.mu.Unlock()
	s.metrics.queued.Add(-int64(len(jobs)))
	s.metrics.batches.Add(1)
	s.metrics.batchedRows.Add(uint64(rows))

	defer func() {
		v := recover()
		for _, j := range jobs {
			j.panic = v
			j.done <- struct{}{}
		}
	}()
	if len(jobs) == 1 {
		head.lp, head.z = scoreRows(head.st, head.x, head.c, head.cats, head.latent)
		return
	}
	st := head.st
	x := mat.NewDense(rows, st.schema.dim, nil)
	var c *mat.Dense
	if st.schema.cdim > 0 {
		c = mat.NewDense(rows, st.schema.cdim, nil)
	}
	var cats []string
	if st.schema.cat != nil {
		cats = make([]string, 0, rows*st.schema.ncat())
	}
	at := 0
	for _, j := range jobs {
		n, _ := j.x.Dims()
		x.Slice(at, at+n, 0, st.schema.dim).(*mat.Dense).Copy(j.x)
		if c != nil {
			c.Slice(at, at+n, 0, st.schema.cdim).(*mat.Dense).Copy(j.c)
		}
		cats = append(cats, j.cats...)
		at += n
	}
	lp, z := scoreRows(st, x, c, cats, head.latent)
	at = 0
	for _, j := range jobs {
		n, _ := j.x.Dims()
		j.lp = lp[at : at+n : at+n]
		if z != nil {
			j.z = z.Slice(at, at+n, 0, st.schema.dim).(*mat.Dense)
		}
		at += n
	}
}

// scoreRows returns the log densities of the rows x (given c, and of the
// levels cats for a model of a mixed table) under the model of st and,
// when latent, their latent coordinates, scored in chunks of chunkRows
// rows. The levels are the model's own (the decoders checked them).
func scoreRows(st *modelState, x, c *mat.Dense, cats []string, latent bool) ([]float64, *mat.Dense) {
	n, _ := x.Dims()
	lp := make([]float64, 0, n)
	var z *mat.Dense
	if latent {
		z = mat.NewDense(n, st.schema.dim, nil)
	}
	for lo := 0; lo < n; lo += chunkRows {
		hi := min(lo+chunkRows, n)
		xc := x
		if lo > 0 || hi < n {
			xc = x.Slice(lo, hi, 0, st.schema.dim).(*mat.Dense)
		}
		var cc *mat.Dense
		if c != nil {
			cc = c.Slice(lo, hi, 0, st.schema.cdim).(*mat.Dense)
		}
		var logp []float64 // the levels' log probabilities
		if cats != nil {
			k := st.schema.ncat()
			var err error
			if cc, logp, err = st.ev.Context(cats[lo*k:hi*k], cc); err != nil {
				panic(err) // a bug: the decoders checked the levels
			}
		}
		// As Prepared.LogPDFMixed adds them, for the same bits.
		at := len(lp)
		lp = append(lp, st.ev.LogPDF(xc, cc)...)
		for i, v := range logp {
			lp[at+i] += v
		}
		if latent {
			z.Slice(lo, hi, 0, st.schema.dim).(*mat.Dense).Copy(st.ev.Latent(xc, cc))
		}
	}
	return lp, z
}
