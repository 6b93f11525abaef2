package flowsbeam

// Model files as side inputs.
//
// A model travels as the bytes of its file (a ModelFile), so that workers
// need no access to the path. Each worker process parses a model once: the
// parsed models are kept in a process-wide cache keyed by the SHA-256 of the
// bytes, and a Model's methods are safe for concurrent use, so the DoFn
// instances of one worker share it.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"strings"
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
	sum := sha256.Sum256(mf.Data)
	models.Lock()
	defer models.Unlock()
	if m, ok := models.m[sum]; ok {
		return m, nil
	}
	m, err := model.Read(bytes.NewReader(mf.Data))
	if err != nil {
		return nil, &modelError{path: mf.Path, err: err}
	}
	if c := m.Categories; c != nil {
		return nil, &modelError{path: mf.Path, err: fmt.Errorf("a model with categorical columns (%s) is not supported by the pipelines yet: they read rows of numbers; score such rows with flows score",
			strings.Join(c.Names, ", "))}
	}
	if models.m == nil {
		models.m = make(map[[sha256.Size]byte]*model.Model)
	}
	models.m[sum] = m
	return m, nil
}

// models caches the parsed models of a process by the SHA-256 of their
// files.
var models struct {
	sync.Mutex
	m map[[sha256.Size]byte]*model.Model
}

// modelError is the library's error about a model file, with its path.
type modelError struct {
	path string
	err  error
}

func (e *modelError) Error() string { return fmt.Sprintf("%s: %v", e.path, e.err) }
func (e *modelError) Unwrap() error { return e.err }

// modelCache holds a DoFn instance's model, parsed at its first element.
type modelCache struct {
	data  []byte // the bytes it was parsed from
	model *model.Model
}

// get returns the model of mf, parsing it only when its bytes differ from
// the last ones.
func (c *modelCache) get(mf ModelFile) (*model.Model, error) {
	if c.model != nil && len(c.data) == len(mf.Data) && (len(mf.Data) == 0 || &c.data[0] == &mf.Data[0]) {
		return c.model, nil
	}
	m, err := mf.Model()
	if err != nil {
		return nil, err
	}
	c.data, c.model = mf.Data, m
	return m, nil
}
