#!/usr/bin/env bash
# Sampler benchmark against the peers of ../shared/design/benchmarks.md, interleaved.
#
#   bash bench/run_sampler_bench.sh            # N = 64 256 784, 3 repetitions
#   REPS=5 SIZES="64 256" READS=100 SWEEPS=1000 bash bench/run_sampler_bench.sh
#
# Creates (once) a git-ignored venv .venv at the repository root with dwave-samplers, openjij and
# numpy; builds the bench binary once (never compiles while measuring); writes each instance to a
# JSON file that both sides read (fixed seeds); then for every repetition runs, in turn, ours on
# one thread, ours on two threads, and the peers, for fixed-T Metropolis and Gibbs (T = 1),
# annealing (dwave's default β range, geometric) and quench (vs SteepestDescentSolver).
# Prints median and best of each contender and the ratio of the medians measured in this run.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
SIZES=${SIZES:-"64 256 784"}
READS=${READS:-100}
SWEEPS=${SWEEPS:-1000}
WORKLOADS=${WORKLOADS:-"metropolis gibbs anneal quench"}
OUT=${OUT:-target/sampler-bench}
mkdir -p "$OUT"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c "import dwave.samplers, openjij, numpy" 2>/dev/null; then
  .venv/bin/pip install -q dwave-samplers openjij numpy
fi
PY=.venv/bin/python

BIN=$(cargo bench --bench sampler --no-run --message-format=json 2>/dev/null |
  $PY -c 'import sys, json
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "sampler":
        print(m["executable"])')
[ -x "$BIN" ] || { echo "bench binary not built" >&2; exit 1; }

for n in $SIZES; do
  [ -f "$OUT/n$n.json" ] || $PY bench/sampler_peers.py instance --n "$n" --seed "$n" --out "$OUT/n$n.json"
done

RESULTS="$OUT/results-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
echo "machine: $(lscpu | grep -m1 'Model name' | sed 's/Model name: *//'), $(nproc) CPUs; results in $RESULTS" >&2
for rep in $(seq 1 "$REPS"); do
  for n in $SIZES; do
    for w in $WORKLOADS; do
      echo "rep $rep N=$n $w" >&2
      for threads in 1 2; do
        "$BIN" --instance "$OUT/n$n.json" --workload "$w" --threads "$threads" \
          --chains "$READS" --sweeps "$SWEEPS" --seed "$rep" >>"$RESULTS"
      done
      $PY bench/sampler_peers.py run --instance "$OUT/n$n.json" --workload "$w" \
        --reads "$READS" --sweeps "$SWEEPS" --seed "$rep" >>"$RESULTS"
    done
  done
done
$PY bench/sampler_peers.py summary "$RESULTS"
