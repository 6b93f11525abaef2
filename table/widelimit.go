package table

// Options.MaxColumns: a line's fields are counted as the bytes stream in,
// before encoding/csv builds the record, so that a line of a million cells
// is refused after reading MaxColumns of them, not after allocating
// strings for all (the record of a 1.1M-cell line costs csv.Reader about
// 230 MB). Quotes are followed as RFC 4180 has them: a separator or
// newline inside a quoted field does not count.

import (
	"fmt"
	"io"
)

// columnLimit is an io.Reader that fails once a line has more than max
// fields.
type columnLimit struct {
	r       io.Reader
	why     string
	comma   byte
	max     int
	fields  int // fields of the current line so far, counting the one being read
	line    int // 1-based line of the input, counted at each newline
	inQuote bool
	err     error // sticky: bufio.Reader hands a read error on only once
}

func (c *columnLimit) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			c.line++ // a physical line, as the errors of encoding/csv count
		}
		switch {
		case b == '"':
			c.inQuote = !c.inQuote // "" inside quotes toggles twice
		case c.inQuote:
		case b == c.comma:
			if c.fields++; c.fields > c.max {
				c.err = fmt.Errorf("line %d: more than %d columns%s", c.line, c.max, c.why)
				return 0, c.err
			}
		case b == '\n':
			c.fields = 1
		}
	}
	return n, err
}
