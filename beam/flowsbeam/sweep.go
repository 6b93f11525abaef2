package flowsbeam

// Hyper-parameter sweeps.
//
// Each configuration is an element, fitted by whichever worker gets it
// (after a shuffle): the worker reads the training files whole, as flows
// fit reads one (and keeps the table for the other configurations it
// fits), and fits with Model.Fit, so a configuration gives the model
// flows fit gives for the same data, settings and seed, bit for bit. The
// fitted models, as model-file bytes, are a side input of the validation
// scoring, which scores every chunk of validation rows under every model
// and combines the log densities per configuration with Evaluate's
// combiner (an exact mean). The choice is the highest mean validation
// log-likelihood, ties going to the earlier configuration; a configuration
// whose fit failed (it diverged, say) or whose mean is not a number is not
// chosen.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/gonormflows/flows/model"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/table"
)

// FitSettings are the settings of Model.Fit that a sweep varies; zero
// fields take optim.FitConfig's defaults, as there.
type FitSettings struct {
	Epochs, BatchSize int
	LR, ClipNorm      float64
	ValFraction       float64
	Patience          int
}

// fitConfig returns the settings as an optim.FitConfig.
func (f FitSettings) fitConfig() optim.FitConfig {
	return optim.FitConfig{Epochs: f.Epochs, BatchSize: f.BatchSize, LR: f.LR, ClipNorm: f.ClipNorm,
		ValFraction: f.ValFraction, Patience: f.Patience}
}

// SweepConfig is one configuration of a sweep: a ready-made model and how
// to fit it.
type SweepConfig struct {
	Model model.Config
	Fit   FitSettings
}

// String describes the configuration in one line.
func (c SweepConfig) String() string {
	m := c.Model
	s := fmt.Sprintf("kind %s, %d layers, hidden %v, %v", m.Kind, m.Layers, m.Hidden, m.Activation)
	if m.Bins != 0 {
		s += fmt.Sprintf(", %d bins, bound %g", m.Bins, m.Bound)
	}
	return s + fmt.Sprintf(", seed %d, epochs %d, lr %g", m.Seed, c.Fit.Epochs, c.Fit.LR)
}

// SweepData names the training data of a sweep: files read whole by each
// worker that fits, concatenated in the order of their paths.
type SweepData struct {
	Globs   []string
	Options table.Options
}

// Trial is the outcome of one configuration of a sweep.
type Trial struct {
	// Index is the configuration's index in the list.
	Index  int
	Config SweepConfig
	// Epochs is the number of epochs fitted, BestEpoch the one kept, and
	// TrainNLL its mean training loss.
	Epochs, BestEpoch int
	TrainNLL          float64
	// Validation evaluates the fitted model on the validation rows.
	Validation Evaluation
	// Err says why the fit failed; empty when it did not.
	Err string
}

// SweepResult is the outcome of a sweep.
type SweepResult struct {
	// Trials holds every configuration's outcome, in the list's order.
	Trials []Trial
	// Best is the index of the chosen configuration, or −1 when none could
	// be chosen.
	Best int
	// Model is the chosen model's file.
	Model ModelFile
}

// Sweep fits each of configs to the training data and evaluates it on the
// validation rows (a PCollection of Rows, from ReadCSV with the training
// data's columns), and returns a one-element PCollection of SweepResult:
// every trial and the configuration with the highest mean validation
// log-likelihood, with its model file. A configuration's model records the
// training columns' names. Bad training data fails the pipeline with the
// error flows fit would give.
func Sweep(s beam.Scope, data SweepData, configs []SweepConfig, validation beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.Sweep")
	ids := make([]int, len(configs))
	for i := range ids {
		ids[i] = i
	}
	trials := beam.Reshuffle(s, beam.CreateList(s, ids))
	fitted := beam.ParDo(s, &fitFn{Data: data, Configs: configs}, trials)
	scored := beam.ParDo(s, &scoreAllFn{}, validation, beam.SideInput{Input: fitted})
	evals := beam.CombinePerKey(s, &evaluateFn{BinWidth: DefaultBinWidth}, scored)
	return beam.ParDo(s, &chooseFn{Configs: configs}, beam.Impulse(s),
		beam.SideInput{Input: fitted}, beam.SideInput{Input: evals})
}

// fitted is a configuration's fitted model.
type fitted struct {
	Index             int
	Model             ModelFile // empty when the fit failed
	Epochs, BestEpoch int
	TrainNLL          float64
	Err               string
}

func init() {
	beam.RegisterType(reflect.TypeOf(fitted{}))
	beam.RegisterType(reflect.TypeOf(SweepResult{}))
	beam.RegisterType(reflect.TypeOf(Trial{}))
	register.DoFn3x1[context.Context, int, func(fitted), error](&fitFn{})
	register.DoFn4x1[context.Context, Rows, func(*fitted) bool, func(int, Scored), error](&scoreAllFn{})
	register.DoFn5x1[context.Context, []byte, func(*fitted) bool, func(*int, *Evaluation) bool, func(SweepResult), error](&chooseFn{})
	register.Emitter1[fitted]()
	register.Emitter2[int, Scored]()
	register.Emitter1[SweepResult]()
	register.Iter1[fitted]()
	register.Iter2[int, Evaluation]()
}

// fitFn fits a configuration.
type fitFn struct {
	Data    SweepData
	Configs []SweepConfig
}

func (f *fitFn) ProcessElement(ctx context.Context, i int, emit func(fitted)) error {
	t, err := trainingTable(ctx, f.Data)
	if err != nil {
		return err
	}
	out, err := fitTrial(f.Configs[i], t)
	if err != nil {
		return err
	}
	out.Index = i
	emit(out)
	return nil
}

// fitTrial fits one configuration to the table t and returns the fitted
// model's file; a fit that fails (diverges) is a fitted with Err set, an
// error is about the data or the configuration.
func fitTrial(c SweepConfig, t *table.Table) (fitted, error) {
	cfg := c.Model
	cfg.Columns, cfg.Context = t.Names, t.ContextNames
	m, err := model.New(cfg, t.X, t.C)
	if err != nil {
		return fitted{}, err
	}
	res, err := m.Fit(t.X, t.C, c.Fit.fitConfig())
	out := fitted{Epochs: res.Epochs, BestEpoch: res.BestEpoch, TrainNLL: math.NaN()}
	if res.BestEpoch > 0 {
		out.TrainNLL = res.TrainNLL[res.BestEpoch-1]
	}
	if err != nil {
		out.Err = err.Error()
		return out, nil
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		return fitted{}, err
	}
	out.Model = ModelFile{Data: buf.Bytes()}
	return out, nil
}

// tables caches the training tables a worker has read.
var tables struct {
	sync.Mutex
	m map[string]*table.Table
}

// trainingTable reads the training files of d, once per worker process.
func trainingTable(ctx context.Context, d SweepData) (*table.Table, error) {
	key := fmt.Sprintf("%q %#v", d.Globs, d.Options)
	tables.Lock()
	defer tables.Unlock()
	if t, ok := tables.m[key]; ok {
		return t, nil
	}
	t, err := ReadTable(ctx, d.Globs, d.Options)
	if err != nil {
		return nil, err
	}
	if tables.m == nil {
		tables.m = make(map[string]*table.Table)
	}
	tables.m[key] = t
	return t, nil
}

// ReadTable reads the files the globs match through Beam's file systems,
// each as table.Read reads a file, and returns their rows concatenated in
// the order of the files' paths (a file matched twice is read once). The
// files must have the same column names.
func ReadTable(ctx context.Context, globs []string, opt table.Options) (*table.Table, error) {
	var paths []string
	for _, g := range globs {
		fs, err := filesystem.New(ctx, g)
		if err != nil {
			return nil, err
		}
		files, err := fs.List(ctx, g)
		fs.Close()
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no file matches %s", g)
		}
		paths = append(paths, files...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var all *table.Table
	for _, p := range paths {
		rc, br, empty, err := open(ctx, p)
		if err != nil {
			return nil, err
		}
		if empty {
			rc.Close()
			continue
		}
		t, err := readAll(br, p, opt)
		rc.Close()
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue // a header only: an empty shard
		}
		if all == nil {
			all = t
			continue
		}
		if !slices.Equal(t.Names, all.Names) || !slices.Equal(t.ContextNames, all.ContextNames) {
			return nil, fmt.Errorf("%s: columns %q and context %q, but %s has %q and %q",
				p, t.Names, t.ContextNames, paths[0], all.Names, all.ContextNames)
		}
		all.Lines = append(all.Lines, t.Lines...)
		all.X = appendRows(all.X, t.X)
		if all.C != nil {
			all.C = appendRows(all.C, t.C)
		}
	}
	if all == nil {
		return nil, fmt.Errorf("%s: no data rows", strings.Join(globs, " "))
	}
	return all, nil
}

// readAll reads all the rows of r, or nil for a header without rows.
func readAll(r io.Reader, name string, opt table.Options) (*table.Table, error) {
	rd, err := table.NewReader(r, name, opt)
	if err != nil {
		return nil, err
	}
	t, err := rd.Read(-1)
	if err == io.EOF {
		return nil, nil
	}
	return t, err
}

// scoreAllFn scores validation rows under every fitted model.
type scoreAllFn struct{}

func (f *scoreAllFn) ProcessElement(ctx context.Context, r Rows, models func(*fitted) bool, emit func(int, Scored)) error {
	var ft fitted
	for models(&ft) {
		if ft.Err != "" {
			continue
		}
		ft.Model.Path = fmt.Sprintf("the model of configuration %d", ft.Index)
		pm, err := ft.Model.parsed()
		if err != nil {
			return err
		}
		m := pm.m
		if err := checkWidths(r, m, ft.Model.Path); err != nil {
			return err
		}
		if !slices.Equal(r.Names, m.Config.Columns) || !slices.Equal(r.ContextNames, m.Config.Context) {
			return fmt.Errorf("%s: validation columns %q and context %q, but the training columns are %q and %q",
				r.File, r.Names, r.ContextNames, m.Config.Columns, m.Config.Context)
		}
		if r.Len() > 0 {
			emit(ft.Index, Scored{Rows: r, LogDensity: pm.prepared().LogPDF(r.Data(), r.Context())})
		}
	}
	return nil
}

// chooseFn picks the best configuration.
type chooseFn struct {
	Configs []SweepConfig
}

func (f *chooseFn) ProcessElement(ctx context.Context, _ []byte, models func(*fitted) bool, evals func(*int, *Evaluation) bool, emit func(SweepResult)) error {
	res := SweepResult{Trials: make([]Trial, len(f.Configs)), Best: -1}
	files := make([]ModelFile, len(f.Configs))
	for i, c := range f.Configs {
		res.Trials[i] = Trial{Index: i, Config: c, TrainNLL: math.NaN(), Validation: Evaluation{MeanLogDensity: math.NaN()}}
	}
	var ft fitted
	for models(&ft) {
		t := &res.Trials[ft.Index]
		t.Epochs, t.BestEpoch, t.TrainNLL, t.Err = ft.Epochs, ft.BestEpoch, ft.TrainNLL, ft.Err
		files[ft.Index] = ft.Model
		if ft.Err == "" {
			// The model's configuration, its defaults filled in.
			m, err := ft.Model.Model()
			if err != nil {
				return err
			}
			t.Config.Model = m.Config
		}
	}
	var i int
	var e Evaluation
	for evals(&i, &e) {
		res.Trials[i].Validation = e
	}
	means := make([]float64, len(res.Trials))
	for i, t := range res.Trials {
		means[i] = t.Validation.MeanLogDensity
		if t.Err != "" || t.Validation.Rows == 0 {
			means[i] = math.NaN()
		}
	}
	if res.Best = Choose(means); res.Best >= 0 {
		res.Model = files[res.Best]
		res.Model.Path = ""
	}
	emit(res)
	return nil
}

// Choose returns the index of the configuration a sweep picks from the
// mean validation log-likelihoods (the highest; the first of equals; NaN
// never), or −1: the rule of Sweep, for a loop that fits and evaluates
// configurations one after another.
func Choose(means []float64) int {
	best := -1
	for i, v := range means {
		if !math.IsNaN(v) && (best < 0 || v > means[best]) {
			best = i
		}
	}
	return best
}

// MeanLogDensity returns the exact mean of the log densities, correctly
// rounded, as Evaluate computes it.
func MeanLogDensity(lp []float64) float64 {
	f := evaluateFn{BinWidth: DefaultBinWidth}
	return f.ExtractOutput(f.AddInput(f.CreateAccumulator(), Scored{LogDensity: lp})).MeanLogDensity
}
