"""ThinkDiff (Mi et al., 2025): multimodal in-context reasoning for diffusion models through an aligner
trained against an LLM decoder. See docs/thinkdiff.md.

    aligner.py   Aligner (Eq. 1) with the RMSNorm initialised from the T5 encoder (§3.2)
    masking.py   random masked training splits (§3.3) and caption splits (§3.4)
    features.py  generated-token features of an LVLM, pooled CLIP tokens, sharded safetensors
    training.py  Eq. 2 / Eq. 4 losses and the accelerate trainer
    inference.py aligned tokens into FLUX, CogVideoX and Wan pipelines (Eq. 3, Eq. 5)
    cobsat.py    CoBSAT evaluation (§4.2, Tables 1-2)
    tiny.py      tiny random components for tests
"""

from .._lazy import lazy_exports

# Imported on first use, so `reasondiff --help` does not load torch and diffusers for this subcommand.
_EXPORTS = {
    "Aligner": "aligner",
    "FeatureDataset": "features",
    "TokenFeatures": "features",
    "clip_image_tokens": "features",
    "lvlm_features": "features",
    "COBSAT_INSTRUCTION": "inference",
    "ThinkDiffCLIP": "inference",
    "ThinkDiffLVLM": "inference",
    "render": "inference",
    "TrainConfig": "training",
    "thinkdiff_loss": "training",
    "train": "training",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
