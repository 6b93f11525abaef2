package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/gonormflows/flows/internal/cliflags"
	"github.com/gonormflows/flows/table"
)

// csvFlags are the flags of every command that reads a CSV file.
type csvFlags struct{ cliflags.CSV }

// add defines the flags on fs.
func (c *csvFlags) add(fs *flag.FlagSet) { c.Add(fs, "the first row") }

// options returns the table options of the flags, or a usage error of cmd.
func (c *csvFlags) options(cmd string) (table.Options, error) {
	o, err := c.Options()
	if err != nil {
		return o, usagef(cmd, "%v", err)
	}
	return o, nil
}

// openInput opens the CSV file at path, or standard input for "-", and
// returns its name in messages.
func openInput(e *env, path string) (io.Reader, string, func(), error) {
	if path == "-" {
		return e.stdin, "stdin", func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", nil, err
	}
	return f, path, func() { f.Close() }, nil
}

// readTable reads the whole CSV file at path ("-" for standard input).
func readTable(e *env, path string, opt table.Options) (*table.Table, error) {
	r, name, done, err := openInput(e, path)
	if err != nil {
		return nil, err
	}
	defer done()
	return table.Read(r, name, opt)
}

// plural returns word, with an s unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// joinNames lists names for a message, the first twelve and how many more.
func joinNames(names []string) string {
	const most = 12
	if len(names) <= most {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:most], ", "), len(names)-most)
}
