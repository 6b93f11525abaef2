package flowsbeam

// Single-file outputs: the least likely rows, an evaluation, a sweep's
// report and its model.
//
// Each is written by one step that runs once (an Impulse with the result as
// a side input). A local file is written atomically by the library's
// writer (a synced temporary file renamed over the target); a file on
// another file system is written under a temporary name next to it and
// renamed by Beam's file system (on object stores a copy and a delete; the
// object appears whole).

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/google/uuid"

	"github.com/gonormflows/flows/internal/atomicfile"
	"github.com/gonormflows/flows/table"
)

// WriteFile writes a file through Beam's file systems, atomically for a
// local path (see the file comment).
func WriteFile(ctx context.Context, name string, write func(w io.Writer) error) error {
	if !strings.Contains(name, "://") {
		return atomicfile.Write(name, write)
	}
	fs, err := filesystem.New(ctx, name)
	if err != nil {
		return err
	}
	defer fs.Close()
	dir, base := path.Split(name)
	temp := dir + "." + base + ".tmp-" + uuid.NewString()
	wc, err := fs.OpenWrite(ctx, temp)
	if err != nil {
		return err
	}
	if err := write(wc); err != nil {
		wc.Close()
		removeFile(ctx, fs, temp)
		return err
	}
	if err := wc.Close(); err != nil {
		removeFile(ctx, fs, temp)
		return err
	}
	if err := filesystem.Rename(ctx, fs, temp, name); err != nil {
		removeFile(ctx, fs, temp)
		return fmt.Errorf("%s: %v", name, err)
	}
	return nil
}

// removeFile removes name where the file system can.
func removeFile(ctx context.Context, fs filesystem.Interface, name string) {
	if rm, ok := fs.(filesystem.Remover); ok {
		rm.Remove(ctx, name)
	}
}

func init() {
	register.DoFn3x1[context.Context, []byte, func(*Anomalies) bool, error](&writeAnomaliesFn{})
	register.DoFn3x1[context.Context, []byte, func(*string, *Anomalies) bool, error](&writeAnomaliesPerKeyFn{})
	register.DoFn3x1[context.Context, []byte, func(*Evaluation) bool, error](&writeEvaluationFn{})
	register.DoFn4x1[context.Context, []byte, func(*SweepResult) bool, func(SweepResult), error](&writeSweepFn{})
	register.Iter1[Anomalies]()
	register.Iter2[string, Anomalies]()
	register.Iter1[Evaluation]()
	register.Iter1[SweepResult]()
}

// WriteAnomalies writes the rows of a one-element PCollection of Anomalies
// (from TopAnomalies) to the CSV file name, lowest log density first, in
// the format of WriteScores.
func WriteAnomalies(s beam.Scope, name string, top beam.PCollection) {
	s = s.Scope("flowsbeam.WriteAnomalies")
	beam.ParDo0(s, &writeAnomaliesFn{Name: name}, beam.Impulse(s), beam.SideInput{Input: top})
}

// WriteAnomaliesPerKey writes a PCollection of KV<string, Anomalies> (from
// TopAnomaliesPerKey) to the CSV file name, with a first column "key", the
// keys in increasing order and each key's rows lowest first.
func WriteAnomaliesPerKey(s beam.Scope, name string, top beam.PCollection) {
	s = s.Scope("flowsbeam.WriteAnomaliesPerKey")
	beam.ParDo0(s, &writeAnomaliesPerKeyFn{Name: name}, beam.Impulse(s), beam.SideInput{Input: top})
}

type writeAnomaliesFn struct{ Name string }

func (f *writeAnomaliesFn) ProcessElement(ctx context.Context, _ []byte, iter func(*Anomalies) bool) error {
	var all Anomalies
	var a Anomalies
	for iter(&a) {
		if all.Names == nil {
			all.Names, all.ContextNames, all.CatNames = a.Names, a.ContextNames, a.CatNames
		}
		all.Rows = append(all.Rows, a.Rows...)
	}
	slices.SortFunc(all.Rows, lower)
	return WriteFile(ctx, f.Name, func(w io.Writer) error {
		return writeAnomalies(w, nil, map[string]Anomalies{"": all})
	})
}

type writeAnomaliesPerKeyFn struct{ Name string }

func (f *writeAnomaliesPerKeyFn) ProcessElement(ctx context.Context, _ []byte, iter func(*string, *Anomalies) bool) error {
	byKey := map[string]Anomalies{}
	var keys []string
	var k string
	var a Anomalies
	for iter(&k, &a) {
		keys = append(keys, k)
		byKey[k] = a
	}
	slices.Sort(keys)
	return WriteFile(ctx, f.Name, func(w io.Writer) error { return writeAnomalies(w, keys, byKey) })
}

// writeAnomalies writes the rows of byKey as CSV, with a key column when
// keys is not nil.
func writeAnomalies(w io.Writer, keys []string, byKey map[string]Anomalies) error {
	var names, cnames, catNames []string
	for _, a := range byKey {
		if names == nil {
			names, cnames, catNames = a.Names, a.ContextNames, a.CatNames
		}
	}
	header := append(append(append([]string{"file", "row", "line", "log_density"}, names...), cnames...), catNames...)
	withKey := keys != nil
	if withKey {
		header = append([]string{"key"}, header...)
	} else {
		keys = []string{""}
	}
	cw := csv.NewWriter(w)
	cw.Write(header)
	rec := make([]string, 0, len(header))
	for _, k := range keys {
		for _, r := range byKey[k].Rows {
			rec = rec[:0]
			if withKey {
				rec = append(rec, k)
			}
			rec = append(rec, r.File, strconv.Itoa(r.Row), strconv.Itoa(r.Line), formatFloat(r.LogDensity))
			for _, v := range r.Values {
				rec = append(rec, formatFloat(v))
			}
			rec = append(rec, r.Levels...)
			cw.Write(rec)
		}
	}
	cw.Flush()
	return cw.Error()
}

// formatFloat formats v as the flows tool writes it (table.FormatFloat).
func formatFloat(v float64) string { return table.FormatFloat(v) }

// WriteEvaluation writes a one-element PCollection of Evaluation to the
// JSON file name (see Evaluation.MarshalJSON).
func WriteEvaluation(s beam.Scope, name string, eval beam.PCollection) {
	s = s.Scope("flowsbeam.WriteEvaluation")
	beam.ParDo0(s, &writeEvaluationFn{Name: name}, beam.Impulse(s), beam.SideInput{Input: eval})
}

type writeEvaluationFn struct{ Name string }

func (f *writeEvaluationFn) ProcessElement(ctx context.Context, _ []byte, iter func(*Evaluation) bool) error {
	var e Evaluation
	if !iter(&e) {
		return fmt.Errorf("%s: no evaluation to write", f.Name)
	}
	return WriteFile(ctx, f.Name, func(w io.Writer) error {
		b, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
}

// jsonFloat is a float64 in JSON: a number when finite, else the string
// "NaN", "+Inf" or "-Inf".
type jsonFloat float64

func (v jsonFloat) MarshalJSON() ([]byte, error) {
	f := float64(v)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return json.Marshal(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

func (v *jsonFloat) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		f, err := strconv.ParseFloat(s, 64)
		*v = jsonFloat(f)
		return err
	}
	var f float64
	err := json.Unmarshal(b, &f)
	*v = jsonFloat(f)
	return err
}

// evaluationJSON is the JSON form of an Evaluation.
type evaluationJSON struct {
	Rows           int64     `json:"rows"`
	MeanLogDensity jsonFloat `json:"mean_log_density"`
	Min            jsonFloat `json:"min"`
	Max            jsonFloat `json:"max"`
	NaN            int64     `json:"nan"`
	NegInf         int64     `json:"neg_inf"`
	PosInf         int64     `json:"pos_inf"`
	BinWidth       jsonFloat `json:"bin_width"`
	Bins           []binJSON `json:"bins"`
}

type binJSON struct {
	Lo    jsonFloat `json:"lo"`
	Count int64     `json:"count"`
}

// MarshalJSON writes the evaluation as a JSON object with the fields in
// snake case (rows, mean_log_density, min, max, nan, neg_inf, pos_inf,
// bin_width, bins: [{lo, count}]), each number in the shortest form that
// reads back exactly, and a non-finite one as the string "NaN", "+Inf" or
// "-Inf".
func (e Evaluation) MarshalJSON() ([]byte, error) {
	j := evaluationJSON{Rows: e.Rows, MeanLogDensity: jsonFloat(e.MeanLogDensity), Min: jsonFloat(e.Min), Max: jsonFloat(e.Max),
		NaN: e.NaN, NegInf: e.NegInf, PosInf: e.PosInf, BinWidth: jsonFloat(e.BinWidth), Bins: []binJSON{}}
	for _, b := range e.Bins {
		j.Bins = append(j.Bins, binJSON{Lo: jsonFloat(b.Lo), Count: b.Count})
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes.
func (e *Evaluation) UnmarshalJSON(b []byte) error {
	var j evaluationJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Evaluation{Rows: j.Rows, MeanLogDensity: float64(j.MeanLogDensity), Min: float64(j.Min), Max: float64(j.Max),
		NaN: j.NaN, NegInf: j.NegInf, PosInf: j.PosInf, BinWidth: float64(j.BinWidth)}
	for _, b := range j.Bins {
		e.Bins = append(e.Bins, Bin{Lo: float64(b.Lo), Count: b.Count})
	}
	return nil
}

// WriteSweep writes the chosen model of a one-element PCollection of
// SweepResult to the model file model and, when report is not empty, every
// trial to the CSV file report (see WriteSweepReport); it returns the
// result. No configuration to choose fails the pipeline, after writing the
// report.
func WriteSweep(s beam.Scope, model, report string, result beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.WriteSweep")
	return beam.ParDo(s, &writeSweepFn{Model: model, Report: report}, beam.Impulse(s), beam.SideInput{Input: result})
}

type writeSweepFn struct{ Model, Report string }

func (f *writeSweepFn) ProcessElement(ctx context.Context, _ []byte, iter func(*SweepResult) bool, emit func(SweepResult)) error {
	var r SweepResult
	if !iter(&r) {
		return fmt.Errorf("%s: no sweep result", f.Model)
	}
	if f.Report != "" {
		if err := WriteFile(ctx, f.Report, func(w io.Writer) error { return WriteSweepReport(w, r) }); err != nil {
			return err
		}
	}
	if r.Best < 0 {
		var why []string
		for _, t := range r.Trials {
			if t.Err != "" {
				why = append(why, fmt.Sprintf("configuration %d: %s", t.Index, t.Err))
			}
		}
		return fmt.Errorf("no configuration could be chosen: every fit failed or had no finite validation log-likelihood (%s)", strings.Join(why, "; "))
	}
	if err := WriteFile(ctx, f.Model, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(r.Model.Data))
		return err
	}); err != nil {
		return err
	}
	r.Model.Path = f.Model
	emit(r)
	return nil
}

// WriteSweepReport writes the trials of a sweep as CSV, one row per
// configuration: index, kind, layers, hidden (widths separated by "x"),
// activation, bins, bound, seed, epochs, lr, epochs_run, best_epoch,
// train_nll, val_rows, val_mean_log_density, chosen (1 or 0), error.
func WriteSweepReport(w io.Writer, r SweepResult) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"index", "kind", "layers", "hidden", "activation", "bins", "bound", "seed", "epochs", "lr",
		"epochs_run", "best_epoch", "train_nll", "val_rows", "val_mean_log_density", "chosen", "error"})
	for _, t := range r.Trials {
		m, fit := t.Config.Model, t.Config.Fit
		hidden := make([]string, len(m.Hidden))
		for i, h := range m.Hidden {
			hidden[i] = strconv.Itoa(h)
		}
		chosen := "0"
		if t.Index == r.Best {
			chosen = "1"
		}
		cw.Write([]string{strconv.Itoa(t.Index), string(m.Kind), strconv.Itoa(m.Layers), strings.Join(hidden, "x"),
			strings.ToLower(m.Activation.String()), strconv.Itoa(m.Bins), formatFloat(m.Bound),
			strconv.FormatUint(m.Seed, 10), strconv.Itoa(fit.Epochs), formatFloat(fit.LR),
			strconv.Itoa(t.Epochs), strconv.Itoa(t.BestEpoch), formatFloat(t.TrainNLL),
			strconv.FormatInt(t.Validation.Rows, 10), formatFloat(t.Validation.MeanLogDensity), chosen, t.Err})
	}
	cw.Flush()
	return cw.Error()
}
