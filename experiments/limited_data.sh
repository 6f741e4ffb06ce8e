#!/usr/bin/env bash
# The limited-data table of experiments/README.md: for each training-set size, the mlp
# (fashion_mnist_limited.flags) as three populations of 5 seeds per setting:
#   plain   r1_gamma x lecam_weight swept (baseline, R1, LeCam, R1 + LeCam),
#   diffaug DiffAugment color,translation,cutout, lecam_weight swept (DiffAugment,
#           DiffAugment + LeCam: the combination LeCam's authors report),
#   sn      spectral norm on every D layer,
#   diffaug_r1  DiffAugment and R1 (gamma 1), lecam_weight swept (DiffAugment + R1, and
#           with LeCam too: R1 is the best single technique here, augmentation + R1 is
#           StyleGAN2-ADA's recipe).
# Each run resumes from its workdir, so the script can be stopped and run again.
# Needs the classifier: python -m jaxgan.classifier --data_dir=/usr/share/datasets/fashion-mnist
# Usage: bash experiments/limited_data.sh [RUNS_DIR] [SIZES, default "600 60000 6000"]
#        [ROWS, default "plain diffaug sn diffaug_r1"]
set -euo pipefail
runs=${1:-runs/limited}
sizes=${2:-600 60000 6000}
rows=${3:-plain diffaug sn diffaug_r1}
for n in $sizes; do
  subset=()
  if [ "$n" != 60000 ]; then subset=(--train_subset="$n"); fi
  for row in $rows; do
    case $row in
      plain) extra=(--sweep=r1_gamma=0,1 --sweep=lecam_weight=0,0.3 --lecam_start=100) ;;
      diffaug) extra=(--diffaugment=color,translation,cutout --sweep=lecam_weight=0,0.3
                     --lecam_start=100) ;;
      sn) extra=(--d_norm=spectral) ;;
      diffaug_r1) extra=(--diffaugment=color,translation,cutout --r1_gamma=1
                         --sweep=lecam_weight=0,0.3 --lecam_start=100) ;;
      *) echo "unknown row $row (expected plain, diffaug, sn, diffaug_r1)" >&2; exit 2 ;;
    esac
    nice -n 10 python -m jaxgan.main --flagfile=experiments/fashion_mnist_limited.flags \
        "${subset[@]}" "${extra[@]}" --sweep=seed=0,1,2,3,4 --workdir="$runs/n${n}_${row}" 2>&1 \
        | grep -vE "^[IW][0-9]{4} " || true
  done
done
