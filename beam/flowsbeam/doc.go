// Package flowsbeam scores, samples, evaluates and sweeps the normalizing
// flows of package flows on Apache Beam, so that a fitted model scores
// billions of rows in sharded files, and a list of configurations is fitted
// in parallel, on any Beam runner: Prism (in-process, Beam's default),
// Flink and Spark (through their job servers), Google Cloud Dataflow. It
// is a module of its own (github.com/gonormflows/flows/beam), so that users
// of the library never download Beam.
//
// # Transforms
//
//	rows, dead := flowsbeam.ReadCSV(s, flowsbeam.ReadConfig{Options: opt, DeadLetter: true}, "gs://bucket/data-*.csv")
//	model, m, err := flowsbeam.ReadModelFile(s, "gs://bucket/model.flow")
//	scored := flowsbeam.Score(s, model, rows, flowsbeam.ScoreConfig{})
//	flowsbeam.WriteScores(s, flowsbeam.NewOutput("gs://bucket/scores"), scored)
//	top := flowsbeam.TopAnomalies(s, 100, scored)
//	eval := flowsbeam.Evaluate(s, scored, flowsbeam.EvaluateConfig{})
//
// ReadCSV reads CSV files matched by globs through Beam's file systems into
// chunks of rows (Rows) that keep each row's file, index and line; Score
// gives each chunk its log densities (Scored) under a model file passed as
// a side input (ModelFile), and ScoreInline the same with the model file
// inside the pipeline (LoadModelFile), for files of at most
// InlineModelMax bytes, which runs faster on Prism; TopAnomalies and TopAnomaliesPerKey keep the
// least likely rows; Evaluate summarises the log densities (count, exact
// mean, histogram); Sample draws rows from a model in shards; Sweep fits a
// list of configurations and keeps the one with the best validation
// log-likelihood. WriteScores, WriteDeadLetters, WriteSample, WriteAnomalies,
// WriteEvaluation and WriteSweep write the results. The command
// flows-beam (cmd/flows-beam) runs them from the command line.
//
// # Same results as the command line tool
//
// Each file is read as flows reads one (package table: its header, columns
// by name, errors naming file, line and column); rows are scored with the
// model's prepared evaluator (Model.Prepare, made once per worker), which
// gives Model.LogPDF's bits, and whose result for a row does not depend on
// the other rows of its batch; Sample draws the blocks flows sample draws from
// the same keys; Sweep fits with Model.Fit, as flows fit does. So a
// pipeline gives, bit for bit, what the tool gives, whatever the runner,
// the number of workers or the bundles: scoring sharded files gives the
// log densities flows score gives for the concatenated file, and the shards
// of a sample, in order, are the rows flows sample writes.
//
// # Bad rows
//
// Without dead letters a bad row fails the pipeline with the tool's error
// (data.csv:17: column 3 ("price"): "abc" is not a number). With
// ReadConfig.DeadLetter it becomes a DeadLetter (file, line, reason) in a
// second output and the rest proceeds. Nothing is dropped silently: the
// good and bad rows and the files are Beam counters (MetricRows,
// MetricBadRows, MetricFiles in MetricNamespace), but a runner may lose
// counter values (Prism does under load), so ReadCSVCounted also counts
// each file's rows as data, and CountRows checks that every row read
// reached the scorer or the dead letters, failing the pipeline with an
// error naming the file if not; flows-beam prints those counts.
//
// # Registration
//
// The package registers its DoFns, coders and types in init functions, as
// Beam requires, and the local file system; a program that reads gs:// or
// s3:// paths imports Beam's gcs or s3 file system package, and a program
// that runs on a runner imports it (flows-beam imports Prism, the
// universal runner, Flink, Spark and Dataflow, and GCS and S3).
package flowsbeam
