#!/usr/bin/env bash
# The 8-Gaussian ring table of experiments/README.md: vanilla, feature matching and minibatch
# discrimination, 5 seeds each; prints modes covered and % high-quality at the last step
# as mean ± std over seeds. Usage: bash experiments/ring_table.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs/ring_table}
for variant in vanilla feature_matching minibatch_disc; do
  for seed in 0 1 2 3 4; do
    dir=$runs/${variant}_seed$seed
    [ -e "$dir/metrics.jsonl" ] && grep -q '"step": 5000, "modes' "$dir/metrics.jsonl" && continue
    nice -n 10 python -m jaxgan.main --flagfile=experiments/ring_$variant.flags \
        --seed=$seed --workdir=$dir 2>&1 | grep -E "modes covered" | tail -1
  done
done
python -m jaxgan.cli.toy_table "$runs"
