package main

import (
	"encoding/gob"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/optim"
)

// The files a run keeps in -out besides the pictures.
const (
	checkpointName = "checkpoint.gob"
	progressName   = "progress.tsv"
)

// checkpointVersion is the Version of the checkpoints this command writes.
const checkpointVersion = 1

// checkpoint is everything a run needs to continue exactly as if it had
// not stopped, written with encoding/gob. The data order and the
// dequantisation noise need no generator state: the order of epoch e is
// the e-th permutation drawn from the -seed's data key (replayed on
// resuming), and the noise of step i comes from that key folded with i;
// the learning rate is a function of the step.
type checkpoint struct {
	Version int
	Flags   []flagValue // the flags that define the run, in runFlags's order
	Params  []float64
	Adam    []byte // optim.Adam.MarshalBinary
	Progress
}

// Progress is where a run stands.
type Progress struct {
	Step        int     // steps taken, counting every epoch
	Sum, Window float64 // the current epoch's sums of training bits/dim (see fit)
	CPU         float64 // CPU seconds of the run's kept work up to Step, every session together
	Session     int     // the process working on the run: 0 for the first, 1 after the first resume, …
	Epochs      []epochRecord
}

// epochRecord is one line of progress.tsv.
type epochRecord struct {
	Epoch           int
	Train, Test     float64 // bits/dim
	CPU, TotalCPU   float64 // seconds: of this epoch (since the previous one's end) and of the run
	Finished        time.Time
	StepsPerEpoch   int
	Session, Resume int // the process's session (0 for the first) and the step it started from
}

// flagValue is a flag's name and value as the command line would give it.
type flagValue struct{ Name, Value string }

// runFlags returns the flags that define a run: those that change its
// steps (the model, the data, the batches, the learning rate and the
// randomness) or the figures it logs (-ntest). A resumed run must give
// each the value it had; -epochs, -every, -checkpoint-every and -out may
// change.
func runFlags(o options) []flagValue {
	return []flagValue{
		{"data", o.data},
		{"fashion", strconv.FormatBool(o.fashion)},
		{"ntrain", strconv.Itoa(o.nTrain)},
		{"ntest", strconv.Itoa(o.nTest)},
		{"steps", strconv.Itoa(o.steps)},
		{"hidden", strconv.Itoa(o.hidden)},
		{"blocks", strconv.Itoa(o.blocks)},
		{"f32", strconv.FormatBool(o.f32)},
		{"batch", strconv.Itoa(o.batch)},
		{"lr", strconv.FormatFloat(o.lr, 'g', -1, 64)},
		{"warmup", strconv.Itoa(o.warmup)},
		{"seed", strconv.FormatUint(o.seed, 10)},
	}
}

// saveCheckpoint writes the run's state to dir/checkpoint.gob atomically:
// the file holds the old checkpoint or the whole new one, never a part.
func saveCheckpoint(dir string, o options, p flows.Params, adam *optim.Adam, pr Progress) error {
	st, err := adam.MarshalBinary()
	if err != nil {
		return err
	}
	ck := checkpoint{Version: checkpointVersion, Flags: runFlags(o), Params: p, Adam: st, Progress: pr}
	return atomicfile.Write(filepath.Join(dir, checkpointName), func(w io.Writer) error {
		return gob.NewEncoder(w).Encode(&ck)
	})
}

// loadCheckpoint reads dir/checkpoint.gob into p and adam and returns
// where the run stands. It refuses a checkpoint of another version, of a
// run with other flags (naming the flag) or of another parameter count.
func loadCheckpoint(dir string, o options, p flows.Params, adam *optim.Adam) (Progress, error) {
	path := filepath.Join(dir, checkpointName)
	f, err := os.Open(path)
	if err != nil {
		return Progress{}, fmt.Errorf("resuming: %w", err)
	}
	defer f.Close()
	var ck checkpoint
	if err := gob.NewDecoder(f).Decode(&ck); err != nil {
		return Progress{}, fmt.Errorf("resuming from %s: %w", path, err)
	}
	if ck.Version != checkpointVersion {
		return Progress{}, fmt.Errorf("resuming from %s: checkpoint version %d, want %d", path, ck.Version, checkpointVersion)
	}
	want := runFlags(o)
	if len(ck.Flags) != len(want) {
		return Progress{}, fmt.Errorf("resuming from %s: %d run flags saved, want %d", path, len(ck.Flags), len(want))
	}
	for i, f := range want {
		if ck.Flags[i] != f {
			return Progress{}, fmt.Errorf("resuming from %s: -%s is %q here but %q in the checkpoint (give -%s=%s to continue that run)",
				path, f.Name, f.Value, ck.Flags[i].Value, ck.Flags[i].Name, ck.Flags[i].Value)
		}
	}
	if len(ck.Params) != len(p) {
		return Progress{}, fmt.Errorf("resuming from %s: %d parameters saved, the model has %d", path, len(ck.Params), len(p))
	}
	if err := adam.UnmarshalBinary(ck.Adam); err != nil {
		return Progress{}, fmt.Errorf("resuming from %s: %w", path, err)
	}
	copy(p, ck.Params)
	return ck.Progress, nil
}

// writeProgress writes progress.tsv in dir, atomically: a header line and
// one line per finished epoch, tab-separated.
func writeProgress(dir string, recs []epochRecord) error {
	return atomicfile.Write(filepath.Join(dir, progressName), func(w io.Writer) error {
		if _, err := fmt.Fprintln(w, "epoch\tstep\ttrain_bits_per_dim\ttest_bits_per_dim\tepoch_cpu_s\ttotal_cpu_s\tfinished_utc\tsession\tresumed_at_step"); err != nil {
			return err
		}
		for _, r := range recs {
			if _, err := fmt.Fprintf(w, "%d\t%d\t%.4f\t%.4f\t%.1f\t%.1f\t%s\t%d\t%d\n", r.Epoch, r.Epoch*r.StepsPerEpoch,
				r.Train, r.Test, r.CPU, r.TotalCPU, r.Finished.UTC().Format(time.RFC3339), r.Session, r.Resume); err != nil {
				return err
			}
		}
		return nil
	})
}
