#!/usr/bin/env bash
# PBT against the same population with no exchange (random search over the same grid):
# equal compute (same members, steps and evaluations), 3 seeds each, one process at a
# time. Usage: experiments/pbt_vs_random.sh FLAGFILE RUNS_DIR [extra flags...]
# e.g. experiments/pbt_vs_random.sh experiments/ring_pbt.flags runs/ring_pbt
# Each workdir resumes if interrupted; then the table: python experiments/pbt_table.py RUNS_DIR
set -euo pipefail
flagfile=$1; out=$2; shift 2
for seed in 0 1 2; do
  for arm in pbt random; do
    extra=()
    if [[ $arm == random ]]; then extra=(--pbt_interval=0); fi
    python -m jaxgan.main --flagfile="$flagfile" --workdir="$out/${arm}_seed$seed" \
      --seed="$seed" --nosweep_plot "${extra[@]}" "$@"
  done
done
python experiments/pbt_table.py "$out"
