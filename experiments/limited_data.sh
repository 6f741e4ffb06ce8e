#!/usr/bin/env bash
# The limited-data table of experiments/README.md: for each training-set size, the mlp
# (fashion_mnist_limited.flags) as three populations of 5 seeds per setting:
#   plain   r1_gamma x lecam_weight swept (baseline, R1, LeCam, R1 + LeCam),
#   diffaug DiffAugment color,translation,cutout, lecam_weight swept (DiffAugment,
#           DiffAugment + LeCam: the combination LeCam's authors report),
#   sn      spectral norm on every D layer.
# Each run resumes from its workdir, so the script can be stopped and run again.
# Needs the classifier: python -m jaxgan.classifier --data_dir=/usr/share/datasets/fashion-mnist
# Usage: bash experiments/limited_data.sh [RUNS_DIR] [SIZES, default "600 60000 6000"]
set -euo pipefail
runs=${1:-runs/limited}
sizes=${2:-600 60000 6000}
for n in $sizes; do
  subset=()
  if [ "$n" != 60000 ]; then subset=(--train_subset="$n"); fi
  for row in plain diffaug sn; do
    case $row in
      plain) extra=(--sweep=r1_gamma=0,1 --sweep=lecam_weight=0,0.3 --lecam_start=100) ;;
      diffaug) extra=(--diffaugment=color,translation,cutout --sweep=lecam_weight=0,0.3
                     --lecam_start=100) ;;
      sn) extra=(--d_norm=spectral) ;;
    esac
    nice -n 10 python -m jaxgan.main --flagfile=experiments/fashion_mnist_limited.flags \
        "${subset[@]}" "${extra[@]}" --sweep=seed=0,1,2,3,4 --workdir="$runs/n${n}_${row}" 2>&1 \
        | grep -vE "^[IW][0-9]{4} " || true
  done
done
