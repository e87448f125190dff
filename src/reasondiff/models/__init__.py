from .alignformer import AlignFormer

__all__ = ["AlignFormer"]
