// Command flows-beam scores, samples and evaluates the models of the flows
// tool, and sweeps their configurations, on Apache Beam (package
// flowsbeam): in this process on Beam's Prism runner by default, or on
// Flink, Spark or Google Cloud Dataflow.
//
//	flows-beam score model.flow 'data-*.csv' -o scores [--top k [--top-by file|COLUMN]] [--dead-letter bad] [--cpuprofile cpu.prof]
//	flows-beam sample model.flow -n 1000000 --shards 8 -o samples [--seed 0] [--given 1.5]
//	flows-beam evaluate model.flow 'test-*.csv' -o eval.json [--bin-width 0.5]
//	flows-beam sweep 'train-*.csv' --validation 'val-*.csv' -o best.flow [--report trials.csv] [--kind maf,realnvp] [--layers 2,4] ...
//	flows-beam help [command]
//
// The flags of the flows tool keep their meaning (--columns, --context,
// --header, --delimiter, -n, --seed, --names, --given, --top and the fit
// flags); inputs are globs and outputs prefixes of CSV shards
// PREFIX-SSSSS-of-NNNNN.csv, on any file system Beam has (local, gs://,
// s3://). Beam's own flags choose the runner: --runner prism (default),
// universal, flink or spark with --endpoint, dataflow with --project,
// --region, --staging_location and --temp_location; "flows-beam help
// score" lists them.
//
// Errors are those of flows: a bad row fails the run with "data.csv:17:
// column 3 ("price"): "abc" is not a number", unless --dead-letter sends it
// to CSV shards with the reason; a damaged model fails before the pipeline
// runs. The exit status is 0 on success, 1 on an error, 130 when
// interrupted; a failed run leaves no temporary files of its own (on a
// file system that can remove), and earlier outputs as they were.
//
// A runner other than Prism runs the binary itself on its workers: give it
// one built for linux/amd64 with --worker_binary, or Beam compiles this
// package from source.
package main
