// Command flows fits normalizing flows to the rows of a CSV file, draws
// samples from them, scores rows by their log density (for anomaly
// detection), draws corner plots of models and serves models over HTTP. It
// is one static binary:
//
//	go install github.com/gonormflows/flows/cmd/flows@latest
//
// Usage:
//
//	flows fit data.csv -o model.flow [--columns a,b] [--kind maf] [--epochs 100] ...
//	flows sample model.flow [-n 1000] [-o samples.csv] [--seed 0] [--names a,b]
//	flows score model.flow data.csv [--columns a,b] [--top 10] [-o scores.csv]
//	flows plot model.flow [data.csv] -o plot.png [--show a,b,c] [--log-scale] [-n 1000]
//	flows serve model.flow [--addr 127.0.0.1:8080] [--data train.csv] ...
//	flows help [command]
//	flows version
//
// Flags may come before or after the file names, with one dash or two
// (-o and --o are the same flag); "flows help fit" lists a command's flags
// and their defaults.
//
// # Reading CSV
//
// A CSV file holds one example a row. Its first row is a header when one of
// its cells is not a number while the cell below it is (--header yes or no
// overrides this); a UTF-8 byte order mark is ignored, and "-" reads
// standard input. --columns picks the columns to use, by header name or by
// index counting from 0 (names first), in the order given: --columns
// price,size or --columns 0,2. Columns that are not picked may hold
// anything. --delimiter sets another separator, such as ';' or '\t'.
//
// Every picked cell must be a finite number. Errors name the file, the line
// (from 1) and the column (from 0, as --columns counts), for example
//
//	flows fit: data.csv:17: column 3 ("price"): "abc" is not a number
//
// and likewise a NaN or Inf cell, an empty cell, a row with a different
// number of columns than the first, an empty file, a header without data,
// an unknown column name, and a selection that does not have the model's
// number of columns.
//
// # Commands
//
// fit fits a ready-made flow (--kind maf, realnvp, glow, nsf-coupling,
// nsf-autoregressive, naf, bnaf, sos, bernstein or cnf, with --layers, --hidden, --activation, --bins,
// --bound and, for cnf, --trace; see model.Config) with optim.Fit (--epochs, --batch, --lr,
// --val, --patience, --seed; for cnf, RNODE's regularisers --kinetic, --jacobian and
// --penalty-steps, which the model file does not record) and writes it with Model.Save. A progress bar
// with the training and validation negative log-likelihood is drawn on
// standard error when it is a terminal, unless --quiet. The model file
// records the picked columns' names, so that score, sample, plot and serve
// find them in a file by name.
//
// sample writes -n rows drawn from a model as CSV, with a header row (x0,
// x1, ... or --names), to standard output or -o.
//
// score writes, for every data row of a CSV file, "row,line,log_density"
// and the row's picked values: row counts data rows from 0, line is the
// row's line in the file, and log_density is in nats, in the data's units.
// The lower it is, the less likely the row; --top k keeps the k least
// likely rows, lowest first.
//
// plot draws the corner plot of a model of any number of columns: a grid of
// panels with each column's marginal density on the diagonal (the model's
// over the data's histogram), the data and samples from the model below
// it, and the model's density of each pair of columns above it, with a
// colour bar (--log-scale for a log scale); as PNG (or SVG or PDF by the
// name's extension). corner.go draws it, for plot and for the model card
// of serve.
//
// serve answers HTTP requests for a model: serve.go (flags and help),
// serve_run.go (listening, SIGHUP reload, drain), serve_model.go (loading
// and describing the model), serve_admit.go and serve_slow.go (admission:
// places, body budget, slow bodies), serve_batch.go (batching),
// serve_handlers.go (routing and endpoints), serve_errors.go,
// serve_decode.go, serve_json.go and serve_json_values.go (the requests'
// decoders), serve_metrics.go and serve_card.go: POST /v1/score (JSON rows as arrays or
// objects keyed by column name, or CSV with a header; the log densities
// equal score's bit for bit, and the latent coordinates on request), POST
// /v1/sample (sample's rows for the same n and seed), GET /v1/model, the
// model card at / with plot's corner plot, /healthz, /readyz and /metrics
// (Prometheus text). Bad input gets a 4xx and a JSON error naming its kind,
// row and column; --workers, --queue, --queue-wait, --max-body,
// --body-budget, --max-rows and --max-sample bound the work and the memory,
// --min-body-rate and --body-grace keep slow clients from holding them;
// SIGHUP reloads the model file after checking it (and its schema, unless
// --reload-allow-schema-change), SIGTERM drains. "flows
// help serve" documents the requests and answers.
//
// # Outputs and exit status
//
// Outputs are computed in full before anything is written, and files are
// written atomically (a temporary file in the same directory, renamed over
// the target at the end), so a command that fails leaves no output file
// behind and an existing one unchanged. An output may not be one of the
// command's inputs. The exit status is 0 on success and 1 on any error,
// which is printed on standard error.
package main
