"""ReasonDiff-mini: SynthWorld, a procedural world of causal events, and models trained on it.

Importing the package plugs the SynthWorld judge's measures (`mini.measures`) into `reasondiff.evaluation`
as opt-in metrics: anchor_psnr, text_adherence, causal_order, continuity.
"""

from .world import AGENTS, OBJECTS, ROOMS, EventScript, FrameState, sample_script


def _register_measures() -> None:
    from ..evaluation.metrics import register_metrics

    columns = {"anchor_psnr": "Anchor PSNR", "text_adherence": "Text Adherence", "causal_order": "Causal Order",
               "continuity": "Continuity"}

    def build(names):
        from .measures import build_columns

        return build_columns(names)

    register_metrics(columns, build)


_register_measures()

__all__ = ["AGENTS", "OBJECTS", "ROOMS", "EventScript", "FrameState", "sample_script"]
