"""Two-stage training: stage 1 LoRA + AlignFormer (Eq. 1), stage 2 AlignFormer with reconstruction (Eq. 6)."""

from .config import TrainConfig, load_config
from .trainer import Trainer

__all__ = ["TrainConfig", "Trainer", "load_config"]
