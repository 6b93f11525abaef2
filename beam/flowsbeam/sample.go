package flowsbeam

// Sampling.
//
// The rows of a sample are cut into blocks of SampleBlock rows, and block b
// is drawn from NewKey(Seed).Fold(b), as the command line tool (flows
// sample) draws them: the sample is the tool's, bit for bit, row for row.
// Shard s of S holds blocks ⌊s·B/S⌋ to ⌊(s+1)·B/S⌋ − 1 of the B blocks, so
// the key of every row depends only on the seed and the row's index, never
// on the runner, the workers or the number of shards; a shard is drawn by
// whichever worker gets it, one block at a time.

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"gonum.org/v1/gonum/mat"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/model"
)

// SampleBlock is the number of rows drawn from one key: the block of the
// command line tool.
const SampleBlock = 4096

// SampleConfig configures Sample.
type SampleConfig struct {
	// N is the number of rows to draw.
	N int
	// Seed makes the key of the draw, NewKey(Seed).
	Seed uint64
	// Shards is the number of output shards (default 1); it is capped at
	// the number of blocks.
	Shards int
	// Given is the context of every row, for a conditional model (one
	// value per context column); nil for an unconditional one.
	Given []float64
	// Names is the header (default the model's column names, or x0, x1,
	// ... without them, then a mixed table's categorical columns).
	Names []string
}

// SampleBlockRows is one block of a sample.
type SampleBlockRows struct {
	// Shard is the shard it belongs to; Block its index in the sample; its
	// first row is row Block·SampleBlock of the sample.
	Shard, Block int
	// Names names the columns: the numbers', then the categorical
	// columns' of a model of a mixed table.
	Names []string
	// X holds the rows' numbers, row-major.
	X []float64
	// Levels holds the rows' levels, row-major, one per categorical
	// column (the last len(Levels)/rows names); nil for a model of
	// numbers only.
	Levels []string
}

// Shards returns the number of shards of the sample, cfg.Shards capped to
// the number of blocks (at least 1).
func (cfg SampleConfig) shards() int {
	blocks := (cfg.N + SampleBlock - 1) / SampleBlock
	return max(1, min(cfg.Shards, blocks))
}

// Sample draws cfg.N rows from the model of the side input model (a
// one-element PCollection of ModelFile) and returns them as a PCollection
// of SampleBlockRows, one per block. It checks cfg against the model m (the
// model of ReadModelFile) and returns an error before anything runs.
func Sample(s beam.Scope, model beam.PCollection, m *model.Model, cfg SampleConfig) (beam.PCollection, error) {
	s = s.Scope("flowsbeam.Sample")
	if cfg.N < 1 {
		return beam.PCollection{}, fmt.Errorf("flowsbeam: Sample: %d rows, want at least 1", cfg.N)
	}
	switch {
	case m.ContextDim == 0 && cfg.Given != nil:
		return beam.PCollection{}, fmt.Errorf("flowsbeam: Sample: the model is not conditional: it takes no context")
	case m.ContextDim > 0 && len(cfg.Given) != m.ContextDim:
		return beam.PCollection{}, fmt.Errorf("flowsbeam: Sample: %d context values for a model of %d context columns", len(cfg.Given), m.ContextDim)
	}
	names := cfg.Names
	if names == nil {
		names = m.Config.Columns
	}
	if names == nil {
		for j := range m.Dim {
			names = append(names, "x"+strconv.Itoa(j))
		}
	}
	if cfg.Names == nil {
		names = append(slices.Clone(names), m.Categories.ColumnNames()...)
	}
	if want := m.Dim + len(m.Categories.ColumnNames()); len(names) != want {
		return beam.PCollection{}, fmt.Errorf("flowsbeam: Sample: %d names for a model of %d columns", len(names), want)
	}
	shards := cfg.shards()
	ids := make([]int, shards)
	for i := range ids {
		ids[i] = i
	}
	blocks := beam.ParDo(s, &sampleBlocksFn{N: cfg.N, Shards: shards}, beam.CreateList(s, ids))
	// The shuffle spreads the blocks over the workers.
	blocks = beam.Reshuffle(s, blocks)
	return beam.ParDo(s, &sampleFn{N: cfg.N, Seed: cfg.Seed, Given: cfg.Given, Names: names}, blocks, beam.SideInput{Input: model}), nil
}

func init() {
	beam.RegisterType(reflect.TypeOf(SampleBlockRows{}))
	beam.RegisterType(reflect.TypeOf(blockRef{}))
	register.DoFn2x0[int, func(blockRef)](&sampleBlocksFn{})
	register.DoFn4x1[context.Context, blockRef, ModelFile, func(SampleBlockRows), error](&sampleFn{})
	register.Emitter1[blockRef]()
	register.Emitter1[SampleBlockRows]()
}

// blockRef names a block of a shard.
type blockRef struct {
	Shard, Block int
}

// sampleBlocksFn lists the blocks of a shard.
type sampleBlocksFn struct {
	N, Shards int
}

func (f *sampleBlocksFn) ProcessElement(shard int, emit func(blockRef)) {
	blocks := (f.N + SampleBlock - 1) / SampleBlock
	for b := shard * blocks / f.Shards; b < (shard+1)*blocks/f.Shards; b++ {
		emit(blockRef{Shard: shard, Block: b})
	}
}

// sampleFn draws a block.
type sampleFn struct {
	N     int
	Seed  uint64
	Given []float64
	Names []string

	cache modelCache
}

func (f *sampleFn) ProcessElement(ctx context.Context, ref blockRef, mf ModelFile, emit func(SampleBlockRows)) error {
	if _, err := f.cache.get(mf); err != nil {
		return err
	}
	lo := ref.Block * SampleBlock
	n := min(SampleBlock, f.N-lo)
	var c *mat.Dense
	if f.Given != nil {
		c = mat.NewDense(n, len(f.Given), nil)
		for i := range n {
			c.SetRow(i, f.Given)
		}
	}
	// The command line tool's block: the levels, then the numbers given
	// them (for a model of numbers only, the numbers).
	x, levels := f.cache.ev.SampleMixed(flows.NewKey(f.Seed).Fold(uint64(ref.Block)), n, c)
	emit(SampleBlockRows{Shard: ref.Shard, Block: ref.Block, Names: f.Names, X: x.RawMatrix().Data, Levels: levels})
	return nil
}

// WriteSample writes the blocks of a sample as the CSV shards of o, shard s
// of Shards holding its blocks in order, with a header row of the column
// names: the shards, read in order, are the rows of the sample in order.
// Each shard is written whole by one worker after a shuffle by shard.
func WriteSample(s beam.Scope, o Output, cfg SampleConfig, blocks beam.PCollection) beam.PCollection {
	s = s.Scope("flowsbeam.WriteSample")
	keyed := beam.ParDo(s, blockShard, blocks)
	temps := beam.ParDo(s, &writeSampleFn{Out: o}, beam.GroupByKey(s, keyed))
	return finalizeShards(s, o, temps, cfg.shards())
}

func init() {
	register.Function1x2(blockShard)
	register.DoFn4x1[context.Context, int, func(*SampleBlockRows) bool, func(shardFile), error](&writeSampleFn{})
	register.Iter1[SampleBlockRows]()
}

// blockShard keys a block by its shard.
func blockShard(b SampleBlockRows) (int, SampleBlockRows) { return b.Shard, b }

// writeSampleFn writes a shard's blocks, in order, to a temporary file.
type writeSampleFn struct {
	Out Output
}

func (f *writeSampleFn) ProcessElement(ctx context.Context, shard int, iter func(*SampleBlockRows) bool, emit func(shardFile)) error {
	var blocks []SampleBlockRows
	var b SampleBlockRows
	for iter(&b) {
		blocks = append(blocks, b)
	}
	if len(blocks) == 0 {
		return nil
	}
	slices.SortFunc(blocks, func(a, b SampleBlockRows) int { return a.Block - b.Block })
	var w shardWriter
	if err := w.open(ctx, f.Out, blocks[0].Names, "", shard); err != nil {
		return err
	}
	for _, b := range blocks {
		// k categorical columns of the names: rows·k levels and
		// rows·(names−k) numbers.
		k := 0
		if len(b.Levels) > 0 {
			k = len(b.Names) * len(b.Levels) / (len(b.X) + len(b.Levels))
		}
		dim := len(b.Names) - k
		rows := len(b.X) / dim
		for i := range rows {
			w.buf = w.buf[:0]
			for j, v := range b.X[i*dim : (i+1)*dim] {
				if j > 0 {
					w.buf = append(w.buf, ',')
				}
				w.buf = appendFloat(w.buf, v)
			}
			for _, lv := range b.Levels[i*k : (i+1)*k] {
				w.buf = append(append(w.buf, ','), csvField(lv)...)
			}
			w.buf = append(w.buf, '\n')
			if _, err := w.bw.Write(w.buf); err != nil {
				w.abort()
				return err
			}
		}
		w.info.Rows += rows
	}
	sf, _, err := w.close()
	if err != nil {
		return err
	}
	emit(sf)
	return nil
}
