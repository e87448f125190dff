"""`reasondiff doctor`: what this installation can do, so a user can self-diagnose before filing an issue.

Every check is read-only and offline: versions come from package metadata, weights from the local Hugging Face
cache (never the network), API keys only as "set" / "not set" (their values are never printed). A check that
finds something that stops ReasonDiff from working is a *problem* and makes the command exit 1; missing
optional extras (Gradio, a GPU, real weights) are *notes*, because the tiny offline model still runs.

`doctor` is a plain function with typer options; the main CLI registers it with `app.command()(doctor)`.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from importlib import metadata

import typer

OK, NOTE, PROBLEM = "ok", "note", "problem"

# Distributions ReasonDiff imports at run time: (distribution, why it matters, required).
PACKAGES = (
    ("torch", "tensors and models", True),
    ("diffusers", "Wan2.1 VAE, DiT and schedulers", True),
    ("transformers", "UMT5 text encoder, CLIP image encoder, local narrators", True),
    ("accelerate", "training and device placement", True),
    ("peft", "LoRA on the DiT", True),
    ("imageio-ffmpeg", "writing .mp4 files", True),
    ("openai", "the openai:MODEL narrator backend", False),
    ("gradio", "`reasondiff demo` (pip install 'reasondiff[demo]')", False),
)
# Hub repos whose weights ReasonDiff can use, looked up in the local cache only.
WEIGHTS = (
    ("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "Wan2.1 I2V 14B 480P (the paper's base model)"),
    ("Wan-AI/Wan2.1-I2V-14B-720P-Diffusers", "Wan2.1 I2V 14B 720P"),
)
SECRETS = ("OPENAI_API_KEY", "HF_TOKEN")
SETTINGS = ("REASONDIFF_NARRATOR", "REASONDIFF_CACHE", "OPENAI_BASE_URL", "HF_HOME", "HF_HUB_OFFLINE")


@dataclass(frozen=True)
class Check:
    section: str
    name: str
    value: str
    status: str = OK  # ok | note | problem
    hint: str = ""


def _package_checks() -> list[Check]:
    checks = []
    for dist, why, required in PACKAGES:
        try:
            checks.append(Check("packages", dist, metadata.version(dist)))
        except metadata.PackageNotFoundError:
            status = PROBLEM if required else NOTE
            checks.append(Check("packages", dist, "not installed", status, f"needed for {why}: pip install {dist}"))
    return checks


def _device_checks() -> list[Check]:
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - a broken torch install is the most common support question
        return [Check("device", "torch", f"cannot import: {err}", PROBLEM, "reinstall torch for your hardware")]
    checks = [Check("device", "torch build", f"{torch.__version__} (CUDA {torch.version.cuda or 'none'})")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            checks.append(Check("device", f"cuda:{i}", f"{props.name}, {props.total_memory / 2**30:.0f} GiB"))
        checks.append(Check("device", "default", "cuda (bfloat16)"))
    else:
        hint = "the default --model mini (and tiny) runs on this CPU; real Wan2.1 weights need a CUDA GPU"
        checks.append(Check("device", "cuda", "not available", NOTE, hint))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            checks.append(Check("device", "mps", "available (pass --device mps)"))
        checks.append(Check("device", "default", f"cpu (float32, {os.cpu_count()} cores)"))
    return checks


def _ffmpeg_check() -> Check:
    try:
        import imageio_ffmpeg

        return Check("video", "ffmpeg", imageio_ffmpeg.get_ffmpeg_exe())
    except Exception as err:  # noqa: BLE001 - any failure to find ffmpeg means no .mp4
        return Check("video", "ffmpeg", f"not found ({err})", PROBLEM, "pip install 'imageio[ffmpeg]' to write .mp4")


def _narrator_checks() -> list[Check]:
    from .narrator.registry import ENV_VAR, available_backends, default_spec

    checks = [Check("narrator", "backends", ", ".join(available_backends()))]
    spec = default_spec()
    source = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "built-in default"
    checks.append(Check("narrator", "default spec", f"{spec} ({source})"))
    if spec.startswith("openai:") and "@" not in spec and not os.environ.get("OPENAI_API_KEY"):
        checks.append(Check(
            "narrator", "ready", "no", NOTE,
            "set OPENAI_API_KEY, or point at a local server: --narrator openai:MODEL@http://localhost:8000/v1, "
            "or a local model: --narrator transformers:PATH; without a narrator, pass --narration FILE.json",
        ))
    return checks


def _secret_checks() -> list[Check]:
    # Only whether a variable is set: printing any part of a key would leak it into bug reports.
    return [Check("keys", name, "set" if os.environ.get(name) else "not set") for name in SECRETS]


def _setting_checks() -> list[Check]:
    return [Check("settings", name, os.environ[name]) for name in SETTINGS if os.environ.get(name)]


def _weight_checks() -> list[Check]:
    checks = []
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return [Check("weights", "huggingface_hub", "not installed", PROBLEM, "pip install huggingface_hub")]
    cache_dir = os.environ.get("HF_HUB_CACHE") or None  # read now: huggingface_hub reads it once, at import
    for repo, what in WEIGHTS:
        found = try_to_load_from_cache(repo, "model_index.json", cache_dir=cache_dir)
        if isinstance(found, str):
            checks.append(Check("weights", repo, f"in the local cache ({what})"))
        else:
            checks.append(Check("weights", repo, "not downloaded", NOTE, f"hf download {repo}"))
    from .pipelines.registry import registered_models
    from .plugins import load_plugins

    for spec in registered_models():  # the models plugins registered, and tiny
        if spec.folder is None:
            checks.append(Check("weights", spec.name, f"built in ({spec.description})"))
        elif (spec.folder() / "model_index.json").is_file():
            size = sum(f.stat().st_size for f in spec.folder().rglob("*") if f.is_file()) / 2**20
            default = ", the default --model" if spec.default else ""
            checks.append(Check("weights", spec.name, f"shipped, {size:.1f} MB ({spec.description}{default})"))
        else:
            checks.append(Check("weights", spec.name, f"missing from {spec.folder()}", PROBLEM, spec.missing))
    for plugin, fault in load_plugins().items():
        if fault is not None:
            checks.append(Check("plugins", plugin, f"did not load: {fault}", PROBLEM, "reinstall reasondiff"))
    return checks


def collect() -> list[Check]:
    """All checks, in the order they are printed."""
    from . import __version__

    checks = [
        Check("reasondiff", "version", __version__),
        Check("reasondiff", "python", f"{platform.python_version()} ({sys.executable})"),
        Check("reasondiff", "platform", platform.platform()),
    ]
    checks += _package_checks() + _device_checks() + [_ffmpeg_check()] + _narrator_checks()
    checks += _secret_checks() + _setting_checks() + _weight_checks()
    return checks


def render(checks: list[Check]) -> str:
    """Sections of `name: value` lines; notes and problems carry their fix on the next line."""
    lines, section = [], None
    width = max(len(c.name) for c in checks)
    marks = {OK: " ", NOTE: "~", PROBLEM: "!"}
    for check in checks:
        if check.section != section:
            section = check.section
            lines.append(f"{'' if not lines else chr(10)}[{section}]")
        lines.append(f"{marks[check.status]} {check.name:<{width}}  {check.value}")
        if check.hint:
            lines.append(f"  {'':<{width}}  -> {check.hint}")
    problems = [c for c in checks if c.status == PROBLEM]
    lines.append("")
    lines.append(f"{len(problems)} problem(s)" + (": " + ", ".join(c.name for c in problems) if problems else ""))
    return "\n".join(lines)


def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print the checks as JSON (for bug reports and scripts)."),
) -> None:
    """Print the environment (versions, device, narrator backends, keys set, weights cached) to self-diagnose.

    Lines marked `~` are notes (optional pieces missing), `!` are problems; the exit code is 1 when there is
    any problem, else 0. Nothing is downloaded and no key is printed.

    Examples:

      reasondiff doctor

      reasondiff doctor --json > doctor.json
    """
    checks = collect()
    if json_output:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        typer.echo(render(checks))
    if any(c.status == PROBLEM for c in checks):
        raise typer.Exit(1)
