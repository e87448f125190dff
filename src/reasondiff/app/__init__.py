"""The ReasonDiff studio (Gradio) and its `reasondiff demo` command.

`demo` imports without Gradio installed (it says how to install it when run); `build_app` and `launch` need
the demo extra: pip install 'reasondiff[demo]'.
"""

from .command import demo

__all__ = ["build_app", "demo", "launch"]


def __getattr__(name: str):
    if name in ("build_app", "launch", "Studio"):
        from . import studio

        return getattr(studio, name)
    raise AttributeError(f"module 'reasondiff.app' has no attribute {name!r}")
