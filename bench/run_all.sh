#!/usr/bin/env bash
# Every CPU benchmark of the README's table, one at a time (they share the box with nothing
# else of ours), each one's output in OUT/NAME.txt; prints the load average before each.
#   bench/run_all.sh [OUT]        (default OUT: bench/out/, gitignored; ~12 min on 2 cores, more the first time:
#                                 the Ego4D-scale tree is written on first use)
# story.py (8-10 min) and gpu_checks.py (a GPU) are left out: run them on their own.
set -u
cd "$(dirname "$0")/.."
out=${1:-bench/out}
mkdir -p "$out"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
py=.venv/bin/python
run() {
    name=$1; shift
    echo "== $name $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
    "$@" > "$out/$name.txt" 2>&1
    echo "   exit $? at $(date +%T): $out/$name.txt"
}
run windows $py bench/bench_windows.py
run generation $py bench/bench_generation.py --checks both --wide
run variants $py bench/bench_variants.py
run generate_screen $py bench/bench_generate_screen.py
run review_300k $py bench/bench_review.py --n 300000 --variants 3
run review_1m $py bench/bench_review.py --n 1000000
run lab $py bench/bench_lab_recompute.py --root .scale
run startup $py bench/bench_tui_startup.py
run train_screen $py bench/bench_train_screen.py
run train_throughput $py bench/bench_train_throughput.py
