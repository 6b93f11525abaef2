#!/usr/bin/env bash
# bench-vs-torch.sh: one side-by-side round of the performance issues'
# grid — training steps (float64 and float32), scoring and sampling 10,000
# rows — for this library (GOMAXPROCS = the torch threads) and the plain
# PyTorch reference in ../shared/bench/torch_reference.py, run one after
# the other on the same machine, the peer with OpenBLAS's kernel named as
# that README says. Results go to the output folder: go.txt (go test
# -bench), torch.txt and torch.json.
#
#	bash scripts/bench-vs-torch.sh [outdir] [threads] [openblas-core]
#
# STEPS (default 5) is the number of timed steps or calls on each side.
#
# Needs Debian's python3-torch and libopenblas0-pthread (torch falls back
# to the reference BLAS without it). Run it on an otherwise idle machine;
# for a comparison, run it twice and take each side's best median.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$(mktemp -d)}
threads=${2:-2}
core=${3:-}
steps=${STEPS:-5}
mkdir -p "$out"
cd "$root"

# Grid matches BenchmarkGrid (float64, prepared) and BenchmarkGridPrec
# (float32 prepared and plain, float64 plain); the table takes the prepared.
echo "== go: training steps in both precisions, scoring and sampling (prepared and plain), GOMAXPROCS=$threads" >&2
GOMAXPROCS=$threads go test -run XXX -bench 'MAFStepPrec|RealNVPStepPrec|NSFCouplingStepPrec|Grid' \
	-benchtime ${steps}x -count 1 -benchmem . | tee "$out/go.txt" >&2

echo "== torch ($threads threads)" >&2
torchenv=(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_WAIT_POLICY=PASSIVE)
if [ -n "$core" ]; then
	torchenv+=(OPENBLAS_CORETYPE="$core")
fi
"${torchenv[@]}" /usr/bin/python3 ../shared/bench/torch_reference.py --threads "$threads" --steps "$steps" --warmup 2 \
	--dtypes float64,float32 --json "$out/torch.json" | tee "$out/torch.txt" >&2
echo "$out"
