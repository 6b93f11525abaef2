package flowsbeam

// Model files as side inputs.
//
// A model travels as the bytes of its file (a ModelFile), so that workers
// need no access to the path: as a side input (Score, Sample, Evaluate's
// scores), or inside the pipeline with the DoFn (ScoreInline). Each worker process parses a model once: the
// parsed models are kept in a process-wide cache keyed by the SHA-256 of the
// bytes, with each model's prepared evaluator (Model.Prepare), made at its
// first use; both are safe for concurrent use, so the DoFn instances of one
// worker share them, and every scoring and sampling call of the worker
// reuses the one evaluator.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"sync"

	"github.com/gonormflows/flows/model"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem"
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/io/filesystem/local" // local files
)

// ModelFile is a model file's path and contents, the side input of Score,
// Evaluate and Sample.
type ModelFile struct {
	// Path names the file in messages.
	Path string
	// Data holds the file's bytes, as Model.Save wrote them.
	Data []byte
}

func init() {
	beam.RegisterType(reflect.TypeOf(ModelFile{}))
}

// ReadModelFile reads the model file at path through Beam's file systems
// while the pipeline is built, checks it with model.Read, and returns
// it as a one-element PCollection of ModelFile for Score, Evaluate and
// Sample, with the model itself (for its columns and widths). A missing,
// damaged or invalid file is an error before the pipeline runs: the
// library's error (test it with errors.Is against model.ErrChecksum and
// the other Err values of package flows), naming path.
func ReadModelFile(s beam.Scope, path string) (beam.PCollection, *model.Model, error) {
	mf, m, err := LoadModelFile(context.Background(), path)
	if err != nil {
		return beam.PCollection{}, nil, err
	}
	return beam.Create(s.Scope("flowsbeam.ReadModelFile"), mf), m, nil
}

// LoadModelFile reads and checks the model file at path through Beam's
// file systems, as ReadModelFile does, without a pipeline.
func LoadModelFile(ctx context.Context, path string) (ModelFile, *model.Model, error) {
	fs, err := filesystem.New(ctx, path)
	if err != nil {
		return ModelFile{}, nil, err
	}
	defer fs.Close()
	data, err := filesystem.Read(ctx, fs, path)
	if err != nil {
		return ModelFile{}, nil, err
	}
	mf := ModelFile{Path: path, Data: data}
	m, err := mf.Model()
	if err != nil {
		return ModelFile{}, nil, err
	}
	return mf, m, nil
}

// Model parses the file (once per process for the same bytes) and returns
// the model. Its error is the library's, with the file's path.
func (mf ModelFile) Model() (*model.Model, error) {
	pm, err := mf.parsed()
	if err != nil {
		return nil, err
	}
	return pm.m, nil
}

// parsed returns the cache's entry for the file, parsing it (once per
// process for the same bytes).
func (mf ModelFile) parsed() (*parsedModel, error) {
	sum := sha256.Sum256(mf.Data)
	models.Lock()
	defer models.Unlock()
	if pm, ok := models.m[sum]; ok {
		return pm, nil
	}
	m, err := model.Read(bytes.NewReader(mf.Data))
	if err != nil {
		return nil, &modelError{path: mf.Path, err: err}
	}
	if models.m == nil {
		models.m = make(map[[sha256.Size]byte]*parsedModel)
	}
	pm := &parsedModel{m: m, prepared: sync.OnceValue(m.Prepare)}
	models.m[sum] = pm
	return pm, nil
}

// parsedModel is a parsed model file: the model, and its prepared
// evaluator, made once, at the first call of prepared (a pipeline that
// only reads the model's columns never prepares it).
type parsedModel struct {
	m        *model.Model
	prepared func() *model.Prepared
}

// models caches the parsed models of a process by the SHA-256 of their
// files.
var models struct {
	sync.Mutex
	m map[[sha256.Size]byte]*parsedModel
}

// modelError is the library's error about a model file, with its path.
type modelError struct {
	path string
	err  error
}

func (e *modelError) Error() string { return fmt.Sprintf("%s: %v", e.path, e.err) }
func (e *modelError) Unwrap() error { return e.err }

// modelCache holds a DoFn instance's model and its prepared evaluator,
// found at its first element.
type modelCache struct {
	data  []byte // the bytes it was parsed from
	model *model.Model
	ev    *model.Prepared
}

// get returns the model of mf, looking it up only when its bytes differ
// from the last ones; c.ev is then its prepared evaluator.
func (c *modelCache) get(mf ModelFile) (*model.Model, error) {
	if c.model != nil && len(c.data) == len(mf.Data) && (len(mf.Data) == 0 || &c.data[0] == &mf.Data[0]) {
		return c.model, nil
	}
	pm, err := mf.parsed()
	if err != nil {
		return nil, err
	}
	c.data, c.model, c.ev = mf.Data, pm.m, pm.prepared()
	return pm.m, nil
}
