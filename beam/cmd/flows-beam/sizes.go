package main

import (
	"errors"
	"strings"

	"github.com/gonormflows/flows/model"
)

// sweepFlags maps a model.SizeError's Config field to sweep's flag.
var sweepFlags = map[string]string{"Layers": "--layers", "Hidden": "--hidden", "Bins": "--bins"}

// sweepSizes checks a configuration's own sizes against model's default
// memory limit on the smallest table (2 columns), before any worker starts
// (New checks again with the data's width), naming the flag.
func sweepSizes(cfg model.Config) error {
	err := model.DefaultLimits().CheckConfig(cfg, 2, 0, 0)
	var se *model.SizeError
	if !errors.As(err, &se) {
		return err
	}
	e := *se
	if f := sweepFlags[e.Field]; f != "" {
		e.Field = f
	}
	if e.Field == "--hidden" {
		e.Value = strings.ReplaceAll(strings.Trim(e.Value, "[]"), " ", ",")
	}
	return usagef("sweep", "%s", strings.TrimPrefix(e.Error(), "flows: "))
}
