#!/usr/bin/env bash
# The remedy table of experiments/README.md: PacGAN's toy protocol on the ring and the
# grid, each variant one command training its 10 seeds as one population; then each
# row's modes covered, % high-quality and reverse KL, mean ± s.e. over the seeds.
# Usage: bash experiments/remedy_table.sh [RUNS_DIR] [extra flags, e.g. --num_steps=N]
set -euo pipefail
runs=${1:-runs/remedies}
shift || true
for ds in ring grid; do
  for variant in vanilla feature_matching minibatch_disc pack2 pack3 pack4 unrolled5; do
    nice -n 19 python -m jaxgan.main --flagfile=experiments/${ds}_${variant}.flags \
        --workdir="$runs/${ds}_${variant}" "$@" 2>&1 | grep -E "^jaxgan|Sweep of" || true
  done
done
python -m jaxgan.cli.toy_table "$runs"
