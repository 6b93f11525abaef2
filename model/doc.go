// Package model is the ready-made normalizing flow of package flows: a
// Model is a Standardize layer fixed from the training data, Config.Layers
// blocks of one architecture (a Kind: RealNVP, Glow, MAF, neural spline,
// NAF, BNAF, SOS, Bernstein) and a standard normal prior, optionally
// conditional on context columns, with bounded and integer (dequantised)
// columns. Make one with New, train it with its method Fit (optim.Fit with
// the command line's key and defaults), keep it with Save and read it back
// with Load or Read: model files are pinned bit for bit (testdata/models),
// and files written before the model left the root package load unchanged.
//
//	m, err := model.New(model.Config{Kind: model.KindMAF, Layers: 4}, x, nil)
//	if err != nil { ... }
//	res, err := m.Fit(x, nil, optim.FitConfig{Epochs: 50})
//	if err != nil { ... }
//	err = m.Save("model.flow")
//
// For scoring and sampling at fixed parameters, Model.Prepare returns a
// Prepared evaluator: the Model's LogPDF, Sample, Latent and their mixed
// forms, bit for bit, with whatever depends on the parameters alone (a
// MADE's masked, packed weights, the layers' set-up) computed once. It
// snapshots the parameters, is safe for concurrent use, and is what the
// command line, the server and the Beam pipelines score and sample with;
// training keeps the Model's methods, which read Params on every call.
// Config.Precision chooses float32 products for the conditioner nets.
//
// The package is built only on the exported API of package flows (the
// layers, Flow, Serial, Standardize, Normal, keys) and of package optim;
// data preparation (audit, standardisation statistics, the Gaussian
// baseline) is package prep's, shared with the command line, the server
// and the Beam pipelines. Kinds lists the architectures, and Kind.Info
// describes one; each kind is declared once, in the kinds table of
// kinds.go.
package model
