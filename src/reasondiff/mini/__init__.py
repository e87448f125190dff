"""ReasonDiff-mini: SynthWorld, a procedural world of causal events, and models trained on it.

The world plugs into the layers below it instead of being imported by them; `import reasondiff` imports this
package, which registers `--model mini` (the shipped pipeline), the `synthworld:` narrator backend, and the
judge's measures (anchor_psnr, text_adherence, causal_order, continuity) as opt-in metrics.
"""

from .world import AGENTS, OBJECTS, ROOMS, EventScript, FrameState, sample_script


def _register() -> None:
    from ..evaluation.metrics import register_metrics
    from ..narrator.registry import register_backend
    from ..pipelines.loading import register_model

    def shipped():
        from .pretrained import shipped_path

        return shipped_path()

    def synthworld(target, **options):  # the world's rule-based stand-in for GPT-4o
        from .narrator import backend_factory

        return backend_factory(target, **options)

    register_model("mini", shipped, missing="reinstall reasondiff, or build it with scripts/train_mini.sh")
    register_backend("synthworld", synthworld, replace=True)

    columns = {"anchor_psnr": "Anchor PSNR", "text_adherence": "Text Adherence", "causal_order": "Causal Order",
               "continuity": "Continuity"}

    def build(names):
        from .measures import build_columns

        return build_columns(names)

    register_metrics(columns, build)

    from ..thinkdiff.vlm_folders import VLM_FOLDER_LOADERS

    def is_mini_vlm(path):
        from .thinkdiff import vlm

        return vlm.is_folder(path)

    def load_mini_vlm(path):
        from .thinkdiff import vlm

        return vlm.load(path)

    VLM_FOLDER_LOADERS.append((is_mini_vlm, load_mini_vlm))

    from ..thinkdiff.offline import OFFLINE_MODELS

    def thinkdiff_mini():
        from .thinkdiff.loading import offline_model

        return offline_model()

    OFFLINE_MODELS["mini"] = thinkdiff_mini


_register()

__all__ = ["AGENTS", "OBJECTS", "ROOMS", "EventScript", "FrameState", "sample_script"]
