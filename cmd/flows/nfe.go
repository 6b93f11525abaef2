package main

// The function evaluations of a cnf model's ODE solves, per training step,
// for fit's epoch lines and summary (from model.Model.Evaluations).

import (
	"fmt"

	"github.com/gonormflows/flows/model"
	"github.com/gonormflows/flows/optim"
)

// nfeMeter measures a cnf model's function evaluations between epochs.
// Its methods run on the fit's Progress goroutine, one at a time.
type nfeMeter struct {
	m        *model.Model
	last     model.Evaluations
	lastStep int
	// steps counts the training steps seen, over all epochs.
	steps int
	// line is the last epoch's part of the epoch line.
	line string
}

// newNFEMeter returns a meter for m, or nil when m solves no ODE.
func newNFEMeter(m *model.Model) *nfeMeter {
	if m.Config.Kind != model.KindCNF {
		return nil
	}
	return &nfeMeter{m: m, last: m.Evaluations()}
}

// update measures the steps since the last call, for epoch and summary;
// fit's Progress calls it first, every epoch.
func (n *nfeMeter) update(p optim.Progress) {
	e := n.m.Evaluations()
	steps := p.Step - n.lastStep
	fwd, back, pen := e.Train-n.last.Train, e.Backward-n.last.Backward, e.Penalty-n.last.Penalty
	n.last, n.lastStep, n.line = e, p.Step, ""
	if steps <= 0 {
		return
	}
	n.steps += steps
	n.line = fmt.Sprintf(", NFE %s per step (%s forward, %s backward)", perStep(fwd+back, steps), perStep(fwd, steps), perStep(back, steps))
	if pen > 0 {
		n.line += fmt.Sprintf(" + %s of the regulariser", perStep(pen, steps))
	}
}

// epoch returns the epoch line's part on the last epoch's steps:
// ", NFE 28.0 per step (14.0 forward, 14.0 backward)"; "" for a nil meter.
func (n *nfeMeter) epoch() string {
	if n == nil {
		return ""
	}
	return n.line
}

// summary returns the fit summary's line on the evaluations, or "".
func (n *nfeMeter) summary() string {
	if n == nil || n.steps == 0 {
		return ""
	}
	e := n.m.Evaluations()
	reg := ""
	if e.Penalty > 0 {
		reg = fmt.Sprintf(" + %s of RNODE's regulariser", perStep(e.Penalty, n.steps))
	}
	return fmt.Sprintf("the ODE solves took %s function evaluations per training step on average (%s forward, %s backward)%s, and %d outside the steps (validation)\n",
		perStep(e.Train+e.Backward, n.steps), perStep(e.Train, n.steps), perStep(e.Backward, n.steps), reg, e.Other)
}

// perStep formats count/steps with one decimal.
func perStep(count int64, steps int) string {
	return fmt.Sprintf("%.1f", float64(count)/float64(steps))
}
