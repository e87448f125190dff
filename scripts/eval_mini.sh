#!/usr/bin/env bash
# The ReasonDiff-mini results table (README, docs/mini_results.md): every method on the same 200 held-out
# unpaired SynthWorld cases, same seeds, scored by `reasondiff eval run`. Rerunning resumes where it stopped.
#   bash scripts/eval_mini.sh                 # the shipped model (ReasonDiff-mini, plain I2V, rewrite)
#   MODELS=outputs/mini bash scripts/eval_mini.sh   # also the ablations built by scripts/train_mini.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/mini_eval}
NUM=${NUM:-200}
BENCH=$OUT/bench
[ -f "$BENCH/benchmark.jsonl" ] || python -m reasondiff.mini.build benchmark "$BENCH" --split test --num "$NUM"
COMMON=(-m "$BENCH/benchmark.jsonl" --frames 17 --height 64 --width 64 --steps "${STEPS:-10}" --fps 8
        --narrator synthworld: --metrics motion_smoothness,dynamic_degree,anchor_psnr,text_adherence,causal_order)
reasondiff eval run "${COMMON[@]}" --model mini --modes reasondiff,wan,rewrite -o "$OUT/runs/mini"
RUNS=("$OUT/runs/mini")
if [ -n "${MODELS:-}" ]; then
  reasondiff eval run "${COMMON[@]}" --model "$MODELS/no-aux-loss" --modes reasondiff --label no_aux_loss -o "$OUT/runs/no_aux_loss"
  reasondiff eval run "${COMMON[@]}" --model "$MODELS/no-enhanced-latents" --modes no_enhanced_latents -o "$OUT/runs/no_enhanced_latents"
  reasondiff eval run "${COMMON[@]}" --model "$MODELS/no-multi-prompt" --modes no_multi_prompt -o "$OUT/runs/no_multi_prompt"
  RUNS+=("$OUT/runs/no_aux_loss" "$OUT/runs/no_enhanced_latents" "$OUT/runs/no_multi_prompt")
fi
reasondiff eval report "${RUNS[@]}" -o "$OUT/report"
