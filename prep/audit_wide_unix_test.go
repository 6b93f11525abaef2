//go:build unix

package prep_test

import (
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/prep"
)

// cpuTime returns the CPU time this process has used (all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestAuditWide checks that a 100,000-column × 20-row table is audited in
// under a second of CPU time (the machine may be shared) with under 100 MB
// allocated: the collinearity check (d×d
// memory, d³ time) is skipped and the findings say so; and that at
// AuditMaxCollinear columns it still runs.
func TestAuditWide(t *testing.T) {
	const d = 100_000
	rng := flows.NewKey(3).Rand()
	x := mat.NewDense(20, d, nil)
	for i := range x.RawMatrix().Data {
		x.RawMatrix().Data[i] = rng.NormFloat64()
	}
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	start := cpuTime()
	findings := prep.Audit(x, nil)
	took := cpuTime() - start
	runtime.ReadMemStats(&b)
	used := b.TotalAlloc - a.TotalAlloc
	t.Logf("Audit of 20×%d: %d bytes, %v of CPU time", d, used, took)
	// The bounds are the issue's (under a second, under 100 MB); the race
	// detector's instrumentation multiplies both, so under it only the
	// finding is checked.
	if !raceEnabled && (used > 100<<20 || took > time.Second) {
		t.Errorf("Audit of 20×%d: %d bytes allocated in %v of CPU time", d, used, took)
	}
	last := findings[len(findings)-1]
	if last.Issue != prep.CollinearSkipped || last.Column != -1 || !strings.Contains(last.Message, "100000 columns") {
		t.Errorf("last finding %+v, want CollinearSkipped", last)
	}

	// At the threshold the check runs: column 1 = 2·column 0 is found.
	y := mat.NewDense(30, prep.AuditMaxCollinear, nil)
	for i := range y.RawMatrix().Data {
		y.RawMatrix().Data[i] = rng.NormFloat64()
	}
	for i := range 30 {
		y.Set(i, 1, 2*y.At(i, 0))
	}
	found := false
	for _, f := range prep.Audit(y, nil) {
		found = found || f.Issue == prep.Collinear && f.Column == 1
		if f.Issue == prep.CollinearSkipped {
			t.Errorf("skipped at %d columns", prep.AuditMaxCollinear)
		}
	}
	if !found {
		t.Errorf("collinear column 1 of %d not found", prep.AuditMaxCollinear)
	}
}
