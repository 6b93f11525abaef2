package main

// The model card of flows serve: a plain HTML page, no scripts, at /.

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gonormflows/flows"
)

// cardTemplate is the model card. It uses no script and no style sheet
// but its own few lines of CSS.
var cardTemplate = template.Must(template.New("card").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.File}}: flows model card</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 76em; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.sub { color: #555; margin-top: 0; }
table { border-collapse: collapse; }
th, td { padding: 0.25em 0.9em 0.25em 0; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { border-bottom: 1px solid #bbb; }
code { background: #f4f4f4; padding: 0 0.2em; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
.note { color: #555; max-width: 60em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
</style>
</head>
<body>
<h1>{{.File}}</h1>
<p class="sub">A <b>{{.Kind}}</b> normalizing flow ({{.Summary}}) of {{.Dim}} {{if eq .Dim 1}}column{{else}}columns{{end}}{{if .ContextDim}}, conditional on {{.ContextDim}} context {{if eq .ContextDim 1}}column{{else}}columns{{end}}{{end}}, served by flows {{.Version}}.</p>

<h2>Columns</h2>
<p class="note">In the order of an array row. Mean and scale are the model's standardisation, fitted to its training data: its first layer maps each column to (value − mean) / scale.{{if not .Named}} The model file records no column names: rows as objects use the names below.{{end}}</p>
<table>
<thead><tr><th>#</th><th>column</th><th>mean</th><th>scale</th></tr></thead>
<tbody>
{{range .Columns}}<tr><td class="num">{{.Index}}</td><td><code>{{.Name}}</code></td><td class="num">{{.Mean}}</td><td class="num">{{.Scale}}</td></tr>
{{end}}</tbody>
</table>
{{if .Context}}
<h3>Context columns</h3>
<table>
<thead><tr><th>#</th><th>context column</th><th>mean</th><th>scale</th></tr></thead>
<tbody>
{{range .Context}}<tr><td class="num">{{.Index}}</td><td><code>{{.Name}}</code></td><td class="num">{{.Mean}}</td><td class="num">{{.Scale}}</td></tr>
{{end}}</tbody>
</table>
{{end}}
{{if .Categories}}
<h3>Categorical columns</h3>
<p class="note">After the columns in an array row (or by name in an object row), each as one of its levels, a JSON string. The model's density of a row is the categories' probability times the density of the numbers given them: log densities are in nats of the numbers' units plus the categories' log probability. A level not in the list is an error (unknown_level) naming the row and column.</p>
<table>
<thead><tr><th>#</th><th>categorical column</th><th>levels</th></tr></thead>
<tbody>
{{range .Categories}}<tr><td class="num">{{.Index}}</td><td><code>{{.Name}}</code></td><td>{{range $i, $l := .Levels}}{{if $i}}, {{end}}<code>{{$l}}</code>{{end}}</td></tr>
{{end}}</tbody>
</table>
{{end}}

<h2>Configuration</h2>
<table>
{{range .Config}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>

<h2>Training</h2>
{{if .Training}}<table>
{{range .Training}}<tr><th>{{.Name}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
<p class="note">Negative log-likelihoods in nats per row, in the data's units, at the epoch kept; lower is better. The Gaussian is a full-covariance Gaussian fitted to the same training rows: the baseline a flow should beat.</p>
{{else}}<p class="note">Training and validation NLL: <b>not recorded</b>. The model was not fitted by <code>flows fit</code> (or <code>Model.Fit</code>), or its file was written before model files kept a training summary.</p>
{{end}}

<h2>Corner plot</h2>
{{if .ContextDim}}<p class="note">A conditional model has no corner plot without a context.</p>
{{else}}<p class="note">The picture <code>flows plot {{.PlotArgs}}</code> draws. On the diagonal, each column's marginal density: the model's (blue){{if .Data}} over the data's histogram (grey){{end}}. Below it, {{if .Data}}the data rows (dark) over {{end}}samples from the model (orange). Above it, the model's density of each pair of columns{{if eq .Dim 2}}{{else}}, estimated from samples, relative to each panel's peak{{end}}.</p>
<p><img src="corner.png?sha256={{.ShortSHA}}" alt="The corner plot of {{.File}}: marginal densities on the diagonal, samples below it and pairwise densities above it."></p>
{{end}}

<h2>File</h2>
<table>
<tr><th>path</th><td><code>{{.Path}}</code></td></tr>
<tr><th>size</th><td>{{.Size}} bytes</td></tr>
<tr><th>modified</th><td>{{.Modified}}</td></tr>
<tr><th>SHA-256</th><td><code>{{.SHA}}</code></td></tr>
<tr><th>loaded</th><td>{{.Loaded}} (SIGHUP reloads it)</td></tr>
</table>

<h2>Endpoints</h2>
<pre>curl -s {{.Host}}/v1/score -H 'Content-Type: application/json' -d '{"rows": [{{.Example}}]}'
curl -s {{.Host}}/v1/sample -H 'Content-Type: application/json' -d '{"n": 3, "seed": 1{{.SampleContext}}}'
curl -s {{.Host}}/v1/model
curl -s {{.Host}}/metrics</pre>
<p class="note">POST /v1/score also takes rows as objects keyed by column name, CSV with a header (<code>Content-Type: text/csv</code>), and <code>?latent=true</code>; <code>flows help serve</code> says more.</p>
</body>
</html>
`))

// cardColumn is one row of the card's columns table.
type cardColumn struct {
	Index       int
	Name        string
	Mean, Scale string
}

// cardField is one row of the card's configuration table.
type cardField struct{ Name, Value string }

// card renders the model card of st.
func (s *server) card(st *modelState, host string) ([]byte, error) {
	m := st.m
	cols := func(names []string, mean, scale []float64) []cardColumn {
		var out []cardColumn
		for j, n := range names {
			out = append(out, cardColumn{Index: j, Name: n, Mean: fmtNum(mean[j]), Scale: fmtNum(scale[j])})
		}
		return out
	}
	cfg := m.Config
	hidden := make([]string, len(cfg.Hidden))
	for i, h := range cfg.Hidden {
		hidden[i] = strconv.Itoa(h)
	}
	fields := []cardField{
		{"kind", string(cfg.Kind)},
		{"layers (blocks)", strconv.Itoa(cfg.Layers)},
		{"hidden widths", strings.Join(hidden, ", ")},
		{"activation", cfg.Activation.String()},
	}
	if cfg.Bins > 0 {
		fields = append(fields, cardField{"spline bins", strconv.Itoa(cfg.Bins)}, cardField{"spline bound", fmtNum(cfg.Bound)})
	}
	if cfg.Precision != flows.Float64 {
		fields = append(fields, cardField{"precision of the products", cfg.Precision.String()})
	}
	fields = append(fields, cardField{"seed", strconv.FormatUint(cfg.Seed, 10)}, cardField{"parameters", strconv.Itoa(len(m.Params))})
	info, _ := cfg.Kind.Info()
	summary := info.Summary
	example := make([]string, st.schema.dim)
	for j := range example {
		example[j] = fmtNum(m.Mean[j])
	}
	for _, c := range categoryDocs(m) {
		example = append(example, string(appendJSONString(nil, c.Levels[0])))
	}
	ex := "[" + strings.Join(example, ", ") + "]"
	sampleCtx := ""
	if m.ContextDim > 0 {
		ctx := make([]string, m.ContextDim)
		for j := range ctx {
			ctx[j] = fmtNum(m.ContextMean[j])
		}
		ex = `], "context": [[` + strings.Join(ctx, ", ") + "]"
		ex = "[" + strings.Join(example, ", ") + ex
		sampleCtx = `, "context": [` + strings.Join(ctx, ", ") + "]"
	}
	plotArgs := filepath.Base(s.path)
	if st.dataPath != "" {
		plotArgs += " " + filepath.Base(st.dataPath)
	}
	var training []cardField
	if t := m.Training; t != nil {
		nll := func(v float64) string {
			if math.IsNaN(v) {
				return "—"
			}
			return strconv.FormatFloat(v, 'f', 4, 64)
		}
		epochs := fmt.Sprintf("%d, kept epoch %d", t.Epochs, t.BestEpoch)
		if t.Stopped {
			epochs += " (stopped early)"
		}
		training = []cardField{
			{"rows", fmt.Sprintf("%d training, %d validation", t.Rows, t.ValidationRows)},
			{"epochs", epochs},
			{"training NLL", nll(t.TrainNLL)},
			{"validation NLL", nll(t.ValNLL)},
			{"a Gaussian's validation NLL", nll(t.GaussianValNLL)},
		}
		if t.Recoveries > 0 {
			training = append(training, cardField{"recoveries from blow-ups", strconv.Itoa(t.Recoveries)})
		}
	}
	data := map[string]any{
		"File": filepath.Base(s.path), "Path": s.path, "Kind": string(cfg.Kind), "Summary": summary,
		"Dim": m.Dim, "ContextDim": m.ContextDim, "Named": st.named, "Version": version(),
		"Columns": cols(st.schema.names, m.Mean, m.Scale), "Context": cols(st.schema.ctxNames, m.ContextMean, m.ContextScale),
		"Config": fields, "Data": st.data != nil, "PlotArgs": plotArgs, "ShortSHA": st.sha[:16],
		"Size": st.size, "Modified": st.modTime.UTC().Format("2006-01-02 15:04:05 MST"), "SHA": st.sha,
		"Loaded": st.loaded.UTC().Format("2006-01-02 15:04:05 MST"), "Host": "http://" + host,
		"Example": ex, "SampleContext": sampleCtx, "Training": training, "Categories": categoryDocs(m),
	}
	var b bytes.Buffer
	err := cardTemplate.Execute(&b, data)
	return b.Bytes(), err
}

// fmtNum formats v for the card: up to 6 significant digits.
func fmtNum(v float64) string {
	return strconv.FormatFloat(v, 'g', 6, 64)
}
