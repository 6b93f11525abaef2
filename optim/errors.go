package optim

import (
	"errors"
	"fmt"
)

// Errors of NLL, NLLValue, Fit, ReverseKL and FitVI, to test with
// errors.Is: every failure of bad data or of a fit that went wrong wraps one
// of them, with the details (row, column, epoch, step) in its message.
var (
	// ErrNonFinite: the data (or a context, or a target's value) holds a
	// NaN or an Inf. The error is, or wraps, a *NonFiniteError naming the
	// place.
	ErrNonFinite = errors.New("not finite")

	// ErrDiverged: the model produced a non-finite loss, gradient or
	// validation NLL, or a fit's training NLL exploded while its steps
	// could not recover it. The parameters are those of the last good
	// state (see Fit).
	ErrDiverged = errors.New("the fit diverged")

	// ErrTooFewRows: the data has too few rows to hold out the validation
	// fraction and keep a training row.
	ErrTooFewRows = errors.New("too few rows")
)

// NonFiniteError reports the first NaN or Inf in a batch: its row and
// column, counting from 0, what holds it (x, the batch, its context) and its
// value. It wraps ErrNonFinite.
type NonFiniteError struct {
	Row, Column int
	Where       string
	Value       float64
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("row %d, column %d of %s is %v", e.Row, e.Column, e.Where, e.Value)
}

// Unwrap returns ErrNonFinite.
func (e *NonFiniteError) Unwrap() error { return ErrNonFinite }

// divergedError is an error whose message says what diverged and which
// wraps ErrDiverged without saying so.
type divergedError struct{ msg string }

func (e *divergedError) Error() string { return e.msg }
func (e *divergedError) Unwrap() error { return ErrDiverged }

// diverged returns a divergedError with the formatted message; a %w in it
// wraps that error too.
func diverged(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &divergedWrap{divergedError{err.Error()}, errors.Unwrap(err)}
}

// divergedWrap is a divergedError that also wraps the error it was made
// from, so errors.Is finds both ErrDiverged and what caused it.
type divergedWrap struct {
	divergedError
	cause error
}

func (e *divergedWrap) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrDiverged}
	}
	return []error{ErrDiverged, e.cause}
}
