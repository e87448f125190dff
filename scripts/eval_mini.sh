#!/usr/bin/env bash
# ReasonDiff-mini on SynthWorld-Bench v2 (README, docs/mini_results.md): build a split whose scenes no training
# clip shows, generate with the shipped model (ReasonDiff-mini and the plain I2V model it was trained from),
# score those videos, the degenerate baselines (static image, hard cut) and the true clips through the mini VAE
# with the same measures, and write the tables with 95 % intervals and paired differences from plain I2V.
# Rerunning resumes every step; a case's seed depends on its id only.
#   bash scripts/eval_mini.sh                                   # unpaired split, 200 cases, seed 1
#   SPLIT=unseen-pairs CASES=100 bash scripts/eval_mini.sh      # agent-object pairs never seen together
#   SPLIT=counterfactual CASES=100 bash scripts/eval_mini.sh    # one image, four prompts, four agents
#   MODES=reasondiff,wan,rewrite LIMIT=100 bash scripts/eval_mini.sh   # + the rewrite baseline on 100 cases
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=${SPLIT:-unpaired}
OUT=${OUT:-outputs/bench2}
BENCH=$OUT/$SPLIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
[ -f "$BENCH/benchmark.jsonl" ] || reasondiff eval build-synthworld --split "$SPLIT" --cases "${CASES:-200}" \
  --seed "${SEED:-1}" --out "$BENCH"
reasondiff eval run -m "$BENCH/benchmark.jsonl" --frames 17 --height 64 --width 64 --steps "${STEPS:-10}" --fps 8 \
  --narrator synthworld: --metrics sharpness --model mini --modes "${MODES:-reasondiff,wan}" -o "$OUT/runs/$SPLIT" \
  ${LIMIT:+--limit "$LIMIT"}
FOLDERS=()
for mode in reasondiff wan rewrite; do  # score the generated videos with every measure
  [ -d "$OUT/runs/$SPLIT/videos/$mode" ] || continue
  if [ "$(ls "$OUT/runs/$SPLIT/videos/$mode" | wc -l)" -lt "$(wc -l < "$BENCH/benchmark.jsonl")" ]; then
    head -n "$(ls "$OUT/runs/$SPLIT/videos/$mode" | wc -l)" "$BENCH/benchmark.jsonl" > "$OUT/runs/$SPLIT/$mode.subset.jsonl"
    MANIFEST=$OUT/runs/$SPLIT/$mode.subset.jsonl
  else
    MANIFEST=$BENCH/benchmark.jsonl
  fi
  reasondiff eval score -b "$MANIFEST" --videos "$OUT/runs/$SPLIT/videos/$mode" -o "$OUT/scores/$SPLIT/$mode" --label "$mode"
  FOLDERS+=("$OUT/scores/$SPLIT/$mode")
done
for kind in static hard_cut; do  # degenerate baselines: a measure is only as good as the cheapest way to fool it
  [ -d "$OUT/videos/$SPLIT/$kind" ] || python -m reasondiff.mini.degenerate "$BENCH/benchmark.jsonl" "$kind" "$OUT/videos/$SPLIT/$kind"
  reasondiff eval score -b "$BENCH/benchmark.jsonl" --videos "$OUT/videos/$SPLIT/$kind" -o "$OUT/scores/$SPLIT/$kind" --label "$kind"
  FOLDERS+=("$OUT/scores/$SPLIT/$kind")
done
[ -d "$OUT/videos/$SPLIT/truth_vae" ] || python benchmarks/mini_ceiling.py "$BENCH/benchmark.jsonl" "$OUT/videos/$SPLIT/truth_vae"
reasondiff eval score -b "$BENCH/benchmark.jsonl" --videos "$OUT/videos/$SPLIT/truth_vae" -o "$OUT/scores/$SPLIT/truth_vae" --label truth_vae
FOLDERS+=("$OUT/scores/$SPLIT/truth_vae")
reasondiff eval report "${FOLDERS[@]}" -o "$OUT/report/$SPLIT" --baseline wan \
  --methods "$(IFS=,; for f in "${FOLDERS[@]}"; do printf '%s,' "$(basename "$f")"; done | sed 's/,$//')"
