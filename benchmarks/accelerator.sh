#!/usr/bin/env bash
# One call on an accelerator machine: what it is, then `python -m jaxgan.bench` there with
# the PyTorch loops on the same device, and population scaling (member-steps/s of 1, 8,
# 64 and 512 mlp members and of 1, 8 and 64 dcgan members, each against its single run,
# measured in the same round). Run from the repository root:
#
#   benchmarks/accelerator.sh            # the full measurement (about 5-8 min on a GPU)
#   benchmarks/accelerator.sh --tiny     # the same stages at toy sizes (a CPU check)
#
# Writes into $OUT (default runs/accelerator): device.txt (devices and versions),
# bench.jsonl (one JSON object per case, jaxgan.benchmark.compare's rows), table.md (the
# table for docs/performance.md), profile/<case>/summary.txt (where a step's time goes:
# the single mlp and 64 members; skipped with --tiny) and, when RING_STEPS is set, the
# ring's vanilla and PacGAN2 populations (experiments/ring_*.flags) at that budget.
# Fashion-MNIST's IDX files are read from $DATA_DIR, else runs/fashion-mnist (copy them
# there and carry that folder to the machine), else /usr/share/datasets/fashion-mnist;
# without them the mlp cases train on synthetic images and the PyTorch mlp loops skip.
# The PyTorch loops need torch in this same interpreter (else they are skipped, noted).
set -uo pipefail
cd "$(dirname "$0")/.."
tiny=0
if [[ ${1:-} == --tiny ]]; then tiny=1; fi
OUT=${OUT:-runs/accelerator}
mkdir -p "$OUT"
data=${DATA_DIR:-}
for candidate in runs/fashion-mnist /usr/share/datasets/fashion-mnist; do
  if [[ -z $data && -d $candidate ]]; then data=$candidate; fi
done

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    || echo "nvidia-smi: none"
  python - <<'EOF'
import jax, flax, optax, orbax.checkpoint as ocp, sys
print(f"python {sys.version.split()[0]}  jax {jax.__version__}  flax {flax.__version__}  "
      f"optax {optax.__version__}  orbax-checkpoint {ocp.__version__}")
print(f"backend {jax.default_backend()}: {jax.devices()}")
try:
  import torch
  print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
        + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
except ImportError as e:
  print(f"torch: not importable ({e})")
EOF
  echo "Fashion-MNIST: ${data:-none (synthetic images)}"
} 2>&1 | tee "$OUT/device.txt"

if (( tiny )); then
  cases=mlp,pop8,dcgan28,dcgan28_pop8
  sizes=(--steps=2 --repeats=1 --batch_size=8)
else
  cases=mlp,dcgan28,dcgan32,pop8,pop64,pop512,dcgan28_pop8,dcgan28_pop64
  sizes=(--repeats=5)
fi
echo "== jaxgan.bench --cases=$cases ${sizes[*]}"
python -m jaxgan.bench --cases="$cases" ${data:+--data_dir="$data"} --torch="$(command -v python)" \
  "${sizes[@]}" --json > "$OUT/bench.jsonl"
echo "bench exit code $?"

python - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(os.path.join(out, "bench.jsonl")) if l.startswith("{")]
lines = ["| case | members | batch | (member-)steps/s | vs single run | PyTorch loop it/s (jaxgan / PyTorch) | matmul share | compile s | peak RSS MB |",
         "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
  if "error" in r:
    lines.append(f"| {r['name']} | error: {r['error']} |||||||| ")
    continue
  vs = r.get("vs_single")
  single = f"{vs['ratio']:.2f}x {vs['case']}" if vs else ""
  torch = "; ".join(f"{k} {v['it_per_s']} ({v['ratio']:.2f}x)" if "ratio" in v
                    else f"{k}: {v.get('error', '?')}" for k, v in r.get("torch", {}).items())
  lines.append(f"| {r['name']} | {r.get('members', 1)} | {r['batch_size']} | "
               f"{r['steps_per_s']} | {single} | {torch} | {r.get('matmul_share', '')} | "
               f"{r.get('compile_s', '')} | {r.get('peak_rss_mb', '')} |")
text = "\n".join(lines) + "\n"
open(os.path.join(out, "table.md"), "w").write(text)
print(text)
EOF

if (( ! tiny )); then
  echo "== profile: mlp, pop64"
  timeout 240 python -m jaxgan.bench --cases=mlp,pop64 --repeats=1 ${data:+--data_dir="$data"} \
    --profile_dir="$OUT/profile" --json > "$OUT/profile.jsonl" || echo "profile: exit $?"
fi

if [[ -n ${RING_STEPS:-} ]]; then
  for flags in ring_vanilla ring_pack2; do
    echo "== $flags at $RING_STEPS steps"
    timeout "${RING_TIMEOUT:-150}" python -m jaxgan.main --flagfile="experiments/$flags.flags" \
      --workdir="$OUT/$flags" --num_steps="$RING_STEPS" --steps_per_call=1000 \
      --log_every="$RING_STEPS" --sample_every="$RING_STEPS" --checkpoint_every="$RING_STEPS" \
      --nosweep_plot 2>&1 | grep -E "Sweep of|mean|modes_covered|high_quality" || echo "$flags: exit $?"
  done
fi
