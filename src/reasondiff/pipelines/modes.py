"""The paper's modes: the method, its baselines and its ablations, as `reasondiff.generate` runs them."""

MODES = ("reasondiff", "wan", "rewrite", "no_enhanced_latents", "no_multi_prompt")
NARRATED_MODES = ("reasondiff", "no_enhanced_latents", "no_multi_prompt")  # render a frame-wise script
MODE_HELP = {
    "reasondiff": "full method",
    "wan": "plain Wan2.1 I2V",
    "rewrite": "the narrator rewrites the prompt for plain Wan",
    "no_enhanced_latents": "ablation: no c*",
    "no_multi_prompt": "ablation: one prompt for every frame",
}
MODES_HELP = " | ".join(f"{mode} ({what})" for mode, what in MODE_HELP.items()) + "."
# The DiT reads the user's prompt in these modes, so `prompt_embeds` (e.g. ThinkDiff's aligned tokens) can stand for it.
PROMPT_MODES = ("wan", "no_multi_prompt")
# What a keyframe backend (pipelines/backends: VACE, LTX-Video) renders without ReasonDiff weights ("zero" mode).
ZERO_MODES = ("reasondiff", "wan")
