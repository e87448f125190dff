"""ReasonDiff-mini: SynthWorld, a procedural world of causal events, and models trained on it.

The world plugs into the layers below it instead of being imported by them: `register` is a `reasondiff.plugins`
entry point (pyproject.toml), called once by `import reasondiff`. It registers `--model mini` (the shipped
pipeline), the `synthworld:` narrator backend, the judge's measures (anchor_psnr, text_adherence, causal_order,
continuity) as opt-in metrics, and ThinkDiff-mini.
"""

from .world import AGENTS, OBJECTS, ROOMS, EventScript, FrameState, sample_script


def register() -> None:
    from ..evaluation.metrics import register_metrics
    from ..narrator.registry import register_backend
    from ..pipelines.registry import register_model
    from ..plugins import register_command
    from .pretrained import model_spec

    def synthworld(target, **options):  # the world's rule-based stand-in for GPT-4o
        from .narrator import backend_factory

        return backend_factory(target, **options)

    register_model(model_spec(), replace_existing=True)
    register_command("eval", "build-synthworld", "reasondiff.mini.cli:build_synthworld")
    register_command("thinkdiff", "bench", "reasondiff.mini.thinkdiff.cli:bench")
    register_backend("synthworld", synthworld, replace=True, num_frames=17)

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


__all__ = ["AGENTS", "OBJECTS", "ROOMS", "EventScript", "FrameState", "sample_script"]
