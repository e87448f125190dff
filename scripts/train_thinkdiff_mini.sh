#!/usr/bin/env bash
# Reproduces ThinkDiff-mini (issue #19) from nothing on a CPU machine; every step resumes: rerun the script.
# What each step gave and took on the 2-core development machine: docs/thinkdiff.md, "ThinkDiff-mini".
#   VAE=...  the mini VAE the text-to-image decoder is trained on (default: the shipped mini's, VAE v2)
#   JUDGE=...  the SceneJudge folder of the judge check and the bench (default: the shipped one, trained on VAE v2's decodes)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-outputs/thinkdiff-mini}
VAE=${VAE:-src/reasondiff/mini/weights/reasondiff-mini/vae}
PY="python -m reasondiff.mini.thinkdiff"
# 1. the T5 decoder around the mini's frozen UMT5 encoder (world captions; ~6 min)
[ -f "$OUT/t5/result.json" ] || $PY.t5 "$OUT/t5" --steps 3000
# 2. the mini VLM: captioning, attribute questions and in-context episodes on training scenes (~25 min)
[ -f "$OUT/vlm/result.json" ] || $PY.vlm "$OUT/vlm" --config configs/thinkdiff_mini_vlm.yaml
# 3. the aligner, trained ONLY on captioning: the VLM describes training-scene stills (one of the paper's 16
#    prompts each), its generated-token features are aligned to the T5 decoder, masked split as in the paper
$PY.alignment data "$OUT/captions" --count 2000
reasondiff thinkdiff extract --data "$OUT/captions/data.jsonl" --out "$OUT/features" --vlm "$OUT/vlm/vlm" --greedy
reasondiff thinkdiff extract --data "$OUT/captions/data.jsonl" --out "$OUT/features_input" --vlm "$OUT/vlm/vlm" \
  --greedy --source input
ALIGN="--t5 $OUT/t5/t5 --steps 2000 --batch-size 32 --learning-rate 1e-3 --lr-warmup-steps 100 --min-lr 1e-4"
ALIGN="$ALIGN --weight-decay 0.05"
reasondiff thinkdiff train --features "$OUT/features" --out "$OUT/aligner" $ALIGN
#    the two Table 3 ablations: no masked training; input-token features
reasondiff thinkdiff train --features "$OUT/features" --out "$OUT/aligner_no_mask" $ALIGN --no-mask
reasondiff thinkdiff train --features "$OUT/features_input" --out "$OUT/aligner_input" $ALIGN
#    not in the paper: no masking, plus the distance of each aligned token to the T5 encoder's state of the same
#    token, so the diffusion decoder (trained on that encoder's states) can read them (docs/thinkdiff.md)
reasondiff thinkdiff train --features "$OUT/features" --out "$OUT/aligner_encoder" $ALIGN --no-mask --encoder-weight 1
#    what the T5 decoder reads back from the aligned tokens (held-out stills and bench episodes)
for A in aligner aligner_no_mask; do
  [ -f "$OUT/readback_$A.json" ] || $PY.alignment readback --vlm "$OUT/vlm/vlm" --aligner "$OUT/$A/aligner" \
    --t5 "$OUT/t5/t5" --out "$OUT/readback_$A.json"
done
[ -f "$OUT/readback_aligner_input.json" ] || $PY.alignment readback --vlm "$OUT/vlm/vlm" --source input \
  --aligner "$OUT/aligner_input/aligner" --t5 "$OUT/t5/t5" --out "$OUT/readback_aligner_input.json"
# 4. the text-to-image decoder on the mini VAE (one-frame Wan T2V): 15 000 steps at a constant rate, then 3 000
#    cooling down (~1.5 h)
$PY.decoder_training "$OUT/decoder" --vae "$VAE" \
  --config configs/thinkdiff_mini_decoder.yaml
#    can the judge read what the decoder draws? (clean stills, VAE round trips, the decoder's images of captions)
[ -f "$OUT/judge_check.json" ] || python benchmarks/thinkdiff_judge_check.py "$OUT/judge_check.json" \
  --decoder "$OUT/decoder/decoder" --vae "$VAE" ${JUDGE:+--judge "$JUDGE"}
# 5. SynthWorld-CoBSAT: every method's image per episode, judged (resumes from cases.jsonl). The system that ships
#    (anchored aligner) with all six methods; the paper's masked aligner as one more `thinkdiff` row.
for K in ${SHOTS:-1 2 4}; do
  reasondiff thinkdiff bench --shots "$K" --cases "${CASES:-100}" --seed 1 --out "$OUT/bench_${K}shot_anchored" \
    --vlm "$OUT/vlm/vlm" --aligner "$OUT/aligner_encoder/aligner" --decoder "$OUT/decoder/decoder" ${JUDGE:+--judge "$JUDGE"}
  reasondiff thinkdiff bench --shots "$K" --cases "${CASES:-100}" --seed 1 --out "$OUT/bench_${K}shot_paper" \
    --vlm "$OUT/vlm/vlm" --aligner "$OUT/aligner/aligner" --decoder "$OUT/decoder/decoder" \
    --methods thinkdiff ${JUDGE:+--judge "$JUDGE"}
done
# 6. What ships in src/reasondiff/mini/weights/thinkdiff (SHIP=1 copies it there)
if [ "${SHIP:-0}" = 1 ]; then
  W=src/reasondiff/mini/weights/thinkdiff
  rm -rf "$W" && mkdir -p "$W/decoder"
  cp -r "$OUT/vlm/vlm" "$W/vlm" && cp -r "$OUT/t5/t5" "$W/t5" && cp -r "$OUT/aligner_encoder/aligner" "$W/aligner"
  cp -r "$OUT/decoder/decoder/transformer" "$W/decoder/transformer"  # its VAE is the mini's: not copied
fi
