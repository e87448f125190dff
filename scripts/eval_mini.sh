#!/usr/bin/env bash
# The ReasonDiff-mini results table (README, docs/mini_results.md): every method on the same 200 held-out
# unpaired SynthWorld cases (test split), the same seeds per case, scored by `reasondiff eval run`. Rerunning
# resumes where it stopped; a case's seed depends on its id only, so the rows do not depend on run order.
#   bash scripts/eval_mini.sh                    # the shipped model: ReasonDiff-mini, plain I2V, rewrite
#   MODELS=outputs/mini bash scripts/eval_mini.sh    # + every ablation scripts/train_mini.sh has assembled
#   SPLIT=compositional bash scripts/eval_mini.sh    # agent-object pairs never seen together in training
#   SPLIT=customisation bash scripts/eval_mini.sh    # one aftermath image, each agent in turn in the prompt
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=${SPLIT:-test}
OUT=${OUT:-outputs/mini_eval}
[ "$SPLIT" = test ] || OUT=$OUT/$SPLIT
BENCH=$OUT/bench
[ -f "$BENCH/benchmark.jsonl" ] || python -m reasondiff.mini.build benchmark "$BENCH" --split "$SPLIT" --num "${NUM:-200}"
COMMON=(-m "$BENCH/benchmark.jsonl" --frames 17 --height 64 --width 64 --steps "${STEPS:-10}" --fps 8
        --narrator synthworld: --metrics sharpness,motion_smoothness,dynamic_degree,anchor_psnr,text_adherence,causal_order)
reasondiff eval run "${COMMON[@]}" --model mini --modes reasondiff,wan,rewrite -o "$OUT/runs/mini"
RUNS=("$OUT/runs/mini")
if [ -n "${MODELS:-}" ]; then
  # name in scripts/train_mini.sh -> the mode it runs in and the label of its row
  for spec in no-aux-loss:reasondiff:no_aux_loss no-enhanced-latents:no_enhanced_latents: no-multi-prompt:no_multi_prompt:; do
    IFS=: read -r name mode label <<< "$spec"
    [ -d "$MODELS/$name" ] || { echo "skipping $name: $MODELS/$name not built"; continue; }
    reasondiff eval run "${COMMON[@]}" --model "$MODELS/$name" --modes "$mode" ${label:+--label "$label"} -o "$OUT/runs/$name"
    RUNS+=("$OUT/runs/$name")
  done
fi
reasondiff eval report "${RUNS[@]}" -o "$OUT/report"
