// Package enum gives the small integer enums of flows (Activation, Init,
// LinearInit, the model's Scaling) their String, MarshalText and
// UnmarshalText from one table of names, so that each is written once.
//
// An enum type declares its table and delegates:
//
//	var activationNames = enum.Names[Activation]{Type: "Activation", What: "activation", List: []string{"ReLU", "Tanh"}, Fold: true}
//
//	func (a Activation) String() string                 { return activationNames.String(a) }
//	func (a Activation) MarshalText() ([]byte, error)   { return activationNames.MarshalText(a) }
//	func (a *Activation) UnmarshalText(b []byte) error  { return activationNames.UnmarshalText(a, b) }
package enum

import (
	"fmt"
	"strings"
)

// Names names the values 0, 1, … of an enum E. A value named "default"
// (a setting not yet resolved) is listed last in errors.
type Names[E ~int] struct {
	// Type is the Go type's name: String of an undeclared value 7 is
	// "Type(7)".
	Type string
	// What says what a value is, in errors: "flows: unknown What …".
	What string
	// List holds the names, List[v] the name of value v.
	List []string
	// Fold makes UnmarshalText ignore case.
	Fold bool
}

// Valid reports whether e is one of the declared values.
func (n Names[E]) Valid(e E) bool { return e >= 0 && int(e) < len(n.List) }

// String returns e's name, or "Type(e)" for an undeclared value.
func (n Names[E]) String(e E) string {
	if !n.Valid(e) {
		return fmt.Sprintf("%s(%d)", n.Type, int(e))
	}
	return n.List[e]
}

// MarshalText returns e's name, or an error for an undeclared value.
func (n Names[E]) MarshalText(e E) ([]byte, error) {
	if !n.Valid(e) {
		return nil, fmt.Errorf("flows: unknown %s %d", n.What, int(e))
	}
	return []byte(n.List[e]), nil
}

// UnmarshalText sets *e to the value named text (in any case with Fold),
// or returns an error that lists the names.
func (n Names[E]) UnmarshalText(e *E, text []byte) error {
	for v, name := range n.List {
		if name == string(text) || n.Fold && strings.EqualFold(name, string(text)) {
			*e = E(v)
			return nil
		}
	}
	return fmt.Errorf("flows: unknown %s %q; want %s", n.What, text, n.want())
}

// want lists the names for an error: "one of a, b, c", or "a, b or
// default" when the first value is "default".
func (n Names[E]) want() string {
	if len(n.List) > 1 && n.List[0] == "default" {
		return strings.Join(n.List[1:], ", ") + " or default"
	}
	return "one of " + strings.Join(n.List, ", ")
}
