#!/usr/bin/env bash
# Reproduces ReasonDiff-mini from nothing on a CPU machine (each step resumes if interrupted: rerun the script).
# Budget on the 2-core development machine: see docs/mini.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=outputs/mini
python -m reasondiff.mini.vae "$OUT/vae" --steps "${VAE_STEPS:-3000}"
python -m reasondiff.mini.build cache "$OUT/cache" --vae "$OUT/vae/checkpoint/vae" --clips "${CLIPS:-4000}"
reasondiff train --config configs/mini_stage0.yaml
reasondiff train --config configs/mini_stage1.yaml
reasondiff train --config configs/mini_stage2.yaml
# ablations, on the same data and budget (the paper's §4.3)
reasondiff train --config configs/mini_stage1.yaml conditioning=no_enhanced_latents output_dir=$OUT/ablation_no_enhanced_latents
reasondiff train --config configs/mini_stage1.yaml conditioning=no_multi_prompt output_dir=$OUT/ablation_no_multi_prompt_s1
reasondiff train --config configs/mini_stage2.yaml conditioning=no_multi_prompt init_from=$OUT/ablation_no_multi_prompt_s1/export output_dir=$OUT/ablation_no_multi_prompt
python -m reasondiff.mini.build assemble "$OUT/reasondiff-mini" --vae "$OUT/vae/checkpoint/vae" \
    --base "$OUT/stage0/export" --reasondiff "$OUT/stage2/export"
python -m reasondiff.mini.build assemble "$OUT/plain-i2v" --vae "$OUT/vae/checkpoint/vae" --base "$OUT/stage0/export"
