#!/usr/bin/env bash
# ReasonDiff-mini on SynthWorld-Bench v2 (README, docs/mini_results.md): build a split whose scenes no training
# clip shows, generate with the shipped model (ReasonDiff-mini and the plain I2V model it was trained from),
# score those videos, the degenerate baselines (static image, hard cut) and the true clips through the mini VAE
# with the same measures, and write the tables with 95 % intervals and paired differences from plain I2V.
# Rerunning resumes every step; a case's seed depends on its id only.
#   bash scripts/eval_mini.sh                                   # unpaired split, 200 cases, seed 2
#   SPLIT=unseen-pairs CASES=100 bash scripts/eval_mini.sh      # agent-object pairs never seen together
#   SPLIT=counterfactual CASES=100 bash scripts/eval_mini.sh    # one image, four prompts, four agents
#   MODES=reasondiff,wan,rewrite LIMIT=100 bash scripts/eval_mini.sh   # + the rewrite baseline on 100 cases
#   ABLATIONS=outputs/mini LIMIT=100 bash scripts/eval_mini.sh  # + the ablation folders scripts/train_mini.sh assembled
set -euo pipefail
cd "$(dirname "$0")/.."
SPLIT=${SPLIT:-unpaired}
OUT=${OUT:-outputs/bench3}
BENCH=$OUT/$SPLIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
[ -f "$BENCH/benchmark.jsonl" ] || reasondiff eval build-synthworld --split "$SPLIT" --cases "${CASES:-200}" \
  --seed "${SEED:-2}" --out "$BENCH"
GEN="--frames 17 --height 64 --width 64 --steps ${STEPS:-10} --guidance ${GUIDANCE:-1} --fps 8 --narrator synthworld: --metrics sharpness"
reasondiff eval run -m "$BENCH/benchmark.jsonl" $GEN --model mini --modes "${MODES:-reasondiff,wan}" -o "$OUT/runs/$SPLIT" \
  ${LIMIT:+--limit "$LIMIT"}
FOLDERS=()
score() {  # score() LABEL VIDEOS: every measure, on the cases that have a video (a --limit run covers the first N)
  local manifest=$BENCH/benchmark.jsonl n
  n=$(ls "$2" | wc -l)
  if [ "$n" -lt "$(wc -l < "$manifest")" ]; then  # beside the benchmark: its image and truth paths are relative
    manifest=$BENCH/first-$n.jsonl
    head -n "$n" "$BENCH/benchmark.jsonl" > "$manifest"
  fi
  reasondiff eval score -b "$manifest" --videos "$2" -o "$OUT/scores/$SPLIT/$1" --label "$1"
  FOLDERS+=("$OUT/scores/$SPLIT/$1")
}
for mode in reasondiff wan rewrite; do
  if [ -d "$OUT/runs/$SPLIT/videos/$mode" ]; then score "$mode" "$OUT/runs/$SPLIT/videos/$mode"; fi
done
if [ -n "${ABLATIONS:-}" ]; then  # the paper's ablations (its section 4.3), as scripts/train_mini.sh assembles them
  for row in no_aux_loss:no-aux-loss:reasondiff no_enhanced_latents:no-enhanced-latents:no_enhanced_latents \
             no_multi_prompt:no-multi-prompt:no_multi_prompt; do
    IFS=: read -r label folder mode <<< "$row"
    reasondiff eval run -m "$BENCH/benchmark.jsonl" $GEN --model "$ABLATIONS/$folder" --modes "$mode" \
      -o "$OUT/runs/$SPLIT/$label" ${LIMIT:+--limit "$LIMIT"}
    score "$label" "$OUT/runs/$SPLIT/$label/videos/$mode"
  done
fi
for kind in static hard_cut; do  # degenerate baselines: a measure is only as good as the cheapest way to fool it
  [ -d "$OUT/videos/$SPLIT/$kind" ] || python -m reasondiff.mini.degenerate "$BENCH/benchmark.jsonl" "$kind" "$OUT/videos/$SPLIT/$kind"
  score "$kind" "$OUT/videos/$SPLIT/$kind"
done
[ -d "$OUT/videos/$SPLIT/truth_vae" ] || python benchmarks/mini_ceiling.py "$BENCH/benchmark.jsonl" "$OUT/videos/$SPLIT/truth_vae"
score truth_vae "$OUT/videos/$SPLIT/truth_vae"
reasondiff eval report "${FOLDERS[@]}" -o "$OUT/report/$SPLIT" --baseline wan \
  --methods "$(IFS=,; for f in "${FOLDERS[@]}"; do printf '%s,' "$(basename "$f")"; done | sed 's/,$//')"
