#!/usr/bin/env bash
# Every experiment of issue #9 in turn (docs/results.md gives each one's time on two CPU cores);
# each script's output goes to runs/experiments/<script>.log as well as the terminal.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p ../runs/experiments
for script in "${@:-part5 baselines exp1 exp2 exp3 exp4 part6}"; do
  for s in $script; do
    python "$s.py" 2>&1 | tee "../runs/experiments/$s.log"
  done
done
