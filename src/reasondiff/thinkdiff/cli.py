"""`reasondiff thinkdiff {extract,train,generate,cobsat,convert}`: ThinkDiff from the command line.

Register with:  app.add_typer(thinkdiff_app, name="thinkdiff")  (from reasondiff.thinkdiff.cli import app)
`--model tiny` / `--vlm tiny` / `--t5 tiny` build randomly initialised components offline: a smoke test, not a model.
"""

from __future__ import annotations

from pathlib import Path

import typer
from typer.core import TyperCommand

from ..console import fail as _fail
from ..device import DEVICE_HELP, resolve_device

app = typer.Typer(name="thinkdiff", help="ThinkDiff: VLM -> aligner -> T5-space prompts for FLUX / CogVideoX / Wan.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

TINY_NOTICE = "NOTICE: 'tiny' components have RANDOM weights: this checks the plumbing, the outputs are noise."
DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


VISION_TOWERS = ("clip", "eva")


def _device(device: str) -> str:
    """The device to run on, or one line for one this machine does not have (`device.check_device`)."""
    try:
        return resolve_device(device)[0]
    except ValueError as err:
        _fail(str(err))


def _sampling(sample: bool | None, vlm: str) -> dict | None:
    """generate() options for the VLM's answers: the authors' sampling for a real VLM unless --greedy."""
    from .features import AUTHORS_SAMPLING

    return AUTHORS_SAMPLING if (vlm != "tiny" if sample is None else sample) else None


def _dtype(name: str):
    import torch

    if name not in DTYPES:
        _fail(f"dtype must be one of {', '.join(DTYPES)}")
    return getattr(torch, name)


def _read_jsonl(path: Path) -> list[dict]:
    from ..data.jsonl import read_jsonl

    if not path.is_file():
        _fail(f"data file not found: {path}")
    try:
        rows = read_jsonl(path)
    except ValueError as err:
        _fail(str(err))
    if not rows:
        _fail(f"{path} holds no records")
    return rows


def _load_vlm(variant: str, vlm: str, device: str, tower: str = "clip"):
    """(model, processor): Qwen2-VL for lvlm; for clip, a CLIP vision tower or BLIP-2's EVA ViT-g (tower="eva")."""
    from . import tiny

    if tower not in VISION_TOWERS:
        _fail(f"--vision-tower must be one of {', '.join(VISION_TOWERS)}")
    if vlm == "tiny":
        typer.echo(TINY_NOTICE)
        if variant == "lvlm":
            processor = tiny.qwen2vl_processor()
            return tiny.qwen2vl(0, processor), processor
        return (tiny.eva_vision(0) if tower == "eva" else tiny.clip_vision(0)), tiny.clip_image_processor()
    if variant == "lvlm":
        from .vlm_folders import VLM_FOLDER_LOADERS

        for is_folder, load in VLM_FOLDER_LOADERS:  # e.g. the mini VLM, whose processor is rebuilt from its parts
            if is_folder(vlm):
                model, processor = load(vlm)
                return model.to(device), processor
        from transformers import AutoModelForImageTextToText, AutoProcessor

        return AutoModelForImageTextToText.from_pretrained(vlm).to(device).eval(), AutoProcessor.from_pretrained(vlm)
    from transformers import AutoImageProcessor, Blip2VisionModel, CLIPVisionModel

    cls = Blip2VisionModel if tower == "eva" else CLIPVisionModel
    return cls.from_pretrained(vlm).to(device).eval(), AutoImageProcessor.from_pretrained(vlm)


@app.command()
def extract(
    data: Path = typer.Option(..., help='JSONL: {"image": path, "caption": text} per line ("caption" for clip; '
                                        'lvlm may give "prompt", else one of the paper\'s 16 is drawn).'),
    out: Path = typer.Option(..., help="Feature folder (sharded safetensors + index.json); re-running resumes."),
    variant: str = typer.Option("lvlm", help="lvlm (generated-token features) or clip (pooled vision tokens)."),
    vlm: str = typer.Option("tiny", help="'tiny', a Qwen2-VL id/folder or the mini VLM's folder (lvlm) / CLIP vision "
                                         "id/folder (clip)."),
    max_new_tokens: int = typer.Option(64, help="Tokens the LVLM generates per image (64 in the paper)."),
    source: str = typer.Option("generated", help="generated (the paper) or input (Table 3 ablation)."),
    shard_size: int = typer.Option(1000),
    dtype: str = typer.Option("float16", help="Storage dtype of the features."),
    seed: int = typer.Option(0, help="Seeds the choice of describe-prompt per image."),
    limit: int = typer.Option(None, help="Stop after this many new samples (resume later)."),
    vision_tower: str = typer.Option("clip", help="clip (CLIP vision, layer -2) or eva (BLIP-2's EVA ViT-g, "
                                                  "the authors': last layer after its post-LayerNorm)."),
    sample: bool = typer.Option(None, "--sample/--greedy", help="LVLM answers sampled as the authors did "
                                "(temperature 0.6, top-p 0.9; the default for a real --vlm) or greedy (tiny)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Extract VLM features for training into sharded safetensors (resumable)."""
    import torch

    from ..media import load_image
    from .features import DESCRIBE_PROMPTS, VISION_LAYERS, TokenFeatures, clip_image_tokens, lvlm_features

    if variant not in ("lvlm", "clip"):
        _fail("--variant must be lvlm or clip")
    rows = _read_jsonl(data)
    device = _device(device)
    model, processor = _load_vlm(variant, vlm, device, vision_tower)
    sampling = _sampling(sample, vlm) or {}

    def compute(i: int, row: dict) -> TokenFeatures:
        image = load_image(Path(data).parent / row["image"])
        if variant == "clip":
            tokens = clip_image_tokens(model, processor, [image], layer=VISION_LAYERS[vision_tower])
            return TokenFeatures(features=tokens[0].float().cpu(), text=row["caption"])
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        prompt = row.get("prompt") or DESCRIBE_PROMPTS[int(torch.randint(len(DESCRIBE_PROMPTS), (1,), generator=g))]
        torch.manual_seed(seed * 1_000_003 + i)  # a sampled answer depends on the sample only: resumes repeat it
        return lvlm_features(model, processor, [image, prompt], max_new_tokens, source=source, **sampling)

    from .features import extract_to_shards

    done = extract_to_shards(rows, compute, out, shard_size, _dtype(dtype),
                             metadata={"variant": variant, "vlm": vlm, "source": source,
                                       "vision_tower": vision_tower if variant == "clip" else None,
                                       "sampling": sampling or None}, limit=limit)
    typer.echo(f"{done}/{len(rows)} samples in {out}")


def _load_t5(t5: str):
    from . import tiny

    if t5 == "tiny":
        typer.echo(TINY_NOTICE)
        return tiny.t5(0), tiny.t5_tokenizer()
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    return AutoModelForSeq2SeqLM.from_pretrained(t5), AutoTokenizer.from_pretrained(t5)


def _schedule(t5: str, lr_warmup_steps: int | None, min_lr: float | None, weight_decay: float | None) -> dict:
    """The options given, the authors' values for the rest with a real T5, none of them for tiny."""
    from .training import AUTHORS_SCHEDULE

    base = AUTHORS_SCHEDULE if t5 != "tiny" else {"lr_warmup_steps": 0, "min_lr": None, "weight_decay": 0.0}
    given = {"lr_warmup_steps": lr_warmup_steps, "min_lr": min_lr, "weight_decay": weight_decay}
    return {k: base[k] if v is None else v for k, v in given.items()}


TRAIN_DEFAULTS = {"learning_rate": 1e-4, "checkpoint_every": 500}


def _renamed_train_options(**options) -> dict:
    """`train`'s options under their names (settings_names), the old flags (--lr, --warmup-steps, --save-every;
    hidden) read with a warning; None: not given."""
    from ..settings_names import renamed_options

    try:
        given = renamed_options(options, "thinkdiff train")
    except ValueError as err:
        _fail(str(err))
    return {**TRAIN_DEFAULTS, "lr_warmup_steps": None, **given}


@app.command()
def train(
    features: Path = typer.Option(..., help="Folder written by `extract`."),
    out: Path = typer.Option(..., help="Checkpoints, losses.json and the final aligner/ go here."),
    variant: str = typer.Option(None, help="lvlm or clip; default: the one the features were extracted for."),
    t5: str = typer.Option("tiny", help="The encoder-decoder whose decoder to align to: 'tiny', google/t5-v1_1-xxl "
                                        "(FLUX, CogVideoX) or google/umt5-xxl (Wan)."),
    steps: int = typer.Option(1000),
    batch_size: int = typer.Option(8),
    learning_rate: float = typer.Option(None, show_default=str(TRAIN_DEFAULTS["learning_rate"]),
                                        help="AdamW's (peak) learning rate."),
    lr_warmup_steps: int = typer.Option(None, help="Linear warm-up steps (default: the authors' 2000 for a real "
                                                   "--t5, 0 for tiny)."),
    min_lr: float = typer.Option(None, help="Cosine decay to this rate after the warm-up (default: the authors' "
                                            "8e-5 for a real --t5; none, a constant rate, for tiny)."),
    weight_decay: float = typer.Option(None, help="AdamW weight decay (default: the authors' 0.05 for a real "
                                                  "--t5, 0 for tiny)."),
    init: str = typer.Option("t5", help="RMSNorm init: t5 (the paper), default (ones) or none (no RMSNorm)."),
    mask: bool = typer.Option(True, "--mask/--no-mask", help="Random masked training (lvlm; §3.3)."),
    encoder_weight: float = typer.Option(0.0, help="Add this times the distance of each aligned token to the T5 "
                                         "encoder's state of the same token of the text (lvlm; not in the paper; "
                                         "needs a VLM that writes in the T5's tokens, as ThinkDiff-mini's)."),
    checkpoint_every: int = typer.Option(None, show_default=str(TRAIN_DEFAULTS["checkpoint_every"]),
                                         help="Steps between checkpoints (a rerun resumes from the last)."),
    seed: int = typer.Option(0),
    resume: bool = typer.Option(True, "--resume/--no-resume"),
    lr: float = typer.Option(None, "--lr", hidden=True),  # the old names of three options above
    warmup_steps: int = typer.Option(None, "--warmup-steps", hidden=True),
    save_every: int = typer.Option(None, "--save-every", hidden=True),
) -> None:
    """Train the aligner against a frozen T5 decoder (run under `accelerate launch` for many GPUs)."""
    from pydantic import ValidationError

    from .aligner import Aligner
    from .features import FeatureDataset
    from .training import TrainConfig
    from .training import train as run

    named = _renamed_train_options(learning_rate=learning_rate, lr=lr, lr_warmup_steps=lr_warmup_steps,
                                   warmup_steps=warmup_steps, checkpoint_every=checkpoint_every, save_every=save_every)
    try:
        dataset = FeatureDataset(features)
    except ValueError as err:
        _fail(str(err))
    variant = variant or dataset.metadata.get("variant", "lvlm")
    if init not in ("t5", "default", "none"):
        _fail("--init must be t5, default or none")
    model, tokenizer = _load_t5(t5)
    in_dim = dataset[0].features.shape[-1]
    aligner = Aligner(in_dim=in_dim, out_dim=model.config.d_model, norm_type="none" if init == "none" else "rms")
    if init == "t5":
        aligner.init_norm_from(model)
    schedule = _schedule(t5, named["lr_warmup_steps"], min_lr, weight_decay)
    if schedule["min_lr"] is not None and schedule["min_lr"] > named["learning_rate"]:
        _fail(f"--min-lr {schedule['min_lr']} is above --learning-rate {named['learning_rate']}")
    try:
        config = TrainConfig(variant=variant, steps=steps, batch_size=batch_size, learning_rate=named["learning_rate"],
                             masked=mask, encoder_weight=encoder_weight, checkpoint_every=named["checkpoint_every"],
                             seed=seed, **schedule)
    except ValidationError as err:
        _fail("; ".join(e["msg"] for e in err.errors()))
    result = run(config, aligner, model, tokenizer, dataset, out, resume=resume)
    first, last = result.losses[: max(1, steps // 10)], result.losses[-max(1, steps // 10):]
    typer.echo(f"loss {sum(first) / len(first):.4f} -> {sum(last) / len(last):.4f}; aligner in {result.aligner_dir}")


def _load_pipeline(decoder: str, model: str, device: str):
    import torch

    from . import tiny

    if model == "tiny":
        typer.echo(TINY_NOTICE)
        if decoder == "flux":
            from diffusers import FluxPipeline

            pipe = FluxPipeline(**tiny.flux_components(0))
        elif decoder == "cogvideox":
            from diffusers import CogVideoXPipeline

            pipe = CogVideoXPipeline(**tiny.cogvideox_components(0))
        else:
            from diffusers import WanImageToVideoPipeline

            pipe = WanImageToVideoPipeline(**tiny.wan_components(0))
    else:
        from diffusers import DiffusionPipeline

        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype)
    return pipe.to(device)


def _text_encoder(pipe):
    return (pipe.text_encoder_2, pipe.tokenizer_2) if hasattr(pipe, "text_encoder_2") else (pipe.text_encoder,
                                                                                           pipe.tokenizer)


class _InterleavedCommand(TyperCommand):
    """Keeps the order in which `--image` and `--text` were given (`ctx.meta["items"]`): click hands each repeated
    option its own list, but its parser records every occurrence in order, which an episode needs."""

    def make_parser(self, ctx):
        parser = super().make_parser(ctx)
        parse = parser.parse_args

        def parse_in_order(args):
            opts, rest, order = parse(args)
            ctx.meta["items"] = [p.name for p in order if p.name in ("image", "text")]
            return opts, rest, order

        parser.parse_args = parse_in_order
        return parser


def _interleave(order: list[str], images: list, texts: list[str]) -> list:
    """The images and texts in the order the command line gave them."""
    queues = {"image": iter(images), "text": iter(texts)}
    return [next(queues[kind]) for kind in order]


def _offline_model(model: str):
    """The registered offline system called `model` (e.g. "mini"), or None for 'tiny' and diffusers ids/folders."""
    from .offline import OFFLINE_MODELS

    return OFFLINE_MODELS[model]() if model in OFFLINE_MODELS else None


def _episode(ctx: typer.Context, image: list[Path], text: list[str], prompt: str | None, offline) -> list:
    """The VLM's input: the images and texts in command-line order (the offline model's bundled episode if none
    is given), then the instruction (`--prompt`, else the offline model's)."""
    items = _interleave(ctx.meta.get("items", []), _load_images(image), list(text))
    if not items and offline is not None and prompt is None:
        items = offline.example()
        texts = sum(isinstance(i, str) for i in items)
        typer.echo(f"no --image/--text: the bundled episode ({texts} texts, {len(items) - texts} images)")
    instruction = prompt if prompt is not None else (offline.instruction if offline is not None else "")
    return [*items, instruction] if instruction else items


def _save(result, out: Path, video: bool) -> None:
    """Write OUT through `media.write_together`: the new picture is placed whole or the old one stays, never a
    file cut short (a full disk, a file-size limit); a failure is one line with exit code 1."""
    from diffusers.utils import export_to_gif, export_to_video

    from ..console import EXIT_FAILED
    from ..media import write_together

    def write(path: Path) -> None:
        if video:
            (export_to_gif if out.suffix.lower() == ".gif" else export_to_video)(result.frames[0], str(path))
        elif hasattr(result, "frames"):  # a one-frame video pipeline (the mini's Wan T2V decoder): its frame
            result.frames[0][0].save(path)
        else:
            result.images[0].save(path)

    try:
        write_together({out: write})
    except OSError as err:
        _fail(str(err), EXIT_FAILED)


@app.command(cls=_InterleavedCommand)
def generate(
    ctx: typer.Context,
    image: list[Path] = typer.Option([], "--image", "-i", help="An input image; repeat it, and --text, in the "
                                                              "episode's order."),
    text: list[str] = typer.Option([], "--text", "-t", help="An input text, in order with the --image options."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="The LVLM's instruction after the images and texts "
                               "(mini: 'what comes next?'); for --variant clip, text composed with the images."),
    out: Path = typer.Option(Path("outputs/thinkdiff.png"), "--out", "-o", help=".png (mini, flux) or .mp4/.gif "
                                                                                "(cogvideox, wan)."),
    model: str = typer.Option("mini", help="'mini' (ThinkDiff-mini, shipped: runs offline), 'tiny' (random, a "
                                           "plumbing check) or a diffusers id/folder (FLUX.1-dev, CogVideoX, Wan2.1)."),
    variant: str = typer.Option("lvlm", help="lvlm or clip."),
    decoder: str = typer.Option(None, help="flux (default), cogvideox or wan; for --model tiny or a real model."),
    vlm: str = typer.Option(None, help="The VLM the aligner was trained on (default: the mini's; with other "
                                       "models 'tiny')."),
    aligner: Path = typer.Option(None, help="Trained aligner folder (default: the mini's). Required with a real "
                                            "--model."),
    steps: int = typer.Option(None, help="Denoising steps (mini 20, tiny 2; the pipeline's default otherwise)."),
    guidance: float = typer.Option(None, help="Classifier-free guidance (mini 3; the pipeline's default otherwise)."),
    height: int = typer.Option(None),
    width: int = typer.Option(None),
    frames: int = typer.Option(None, help="Video frames (cogvideox: 8k+1, wan: 4k+1)."),
    seed: int = typer.Option(0),
    max_new_tokens: int = typer.Option(None, help="Tokens the LVLM may write (mini 32, otherwise 64)."),
    vision_tower: str = typer.Option("clip", help="clip or eva (BLIP-2's EVA ViT-g; --variant clip)."),
    sample: bool = typer.Option(None, "--sample/--greedy", help="LVLM answer sampled as the authors did "
                                "(temperature 0.6, top-p 0.9; the default for a real --vlm) or greedy (mini, tiny)."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Generate an image (mini, FLUX) or a video (CogVideoX, Wan) from interleaved images and texts through ThinkDiff.

    With no options it runs the shipped ThinkDiff-mini on a bundled in-context episode, offline:

      reasondiff thinkdiff generate
      reasondiff thinkdiff generate -t "kitchen: " -i a.png -t "kitchen: " -i b.png -t "garden: " -o next.png
    """
    import torch

    from .inference import ThinkDiffCLIP, ThinkDiffLVLM, render

    offline = _offline_model(model)
    decoder, video = _checked_options(model, offline, decoder, variant, out, aligner, vlm, text)
    _checked_numbers(steps, guidance, height, width, frames, seed, max_new_tokens, device)
    items = _episode(ctx, image, text, prompt, offline) if variant == "lvlm" else None
    images = [i for i in items if not isinstance(i, str)] if items is not None else _load_images(image)
    if not images and not (items or prompt):
        _fail("give at least one --image, --text or --prompt")
    if decoder == "wan" and not images:
        _fail("Wan2.1 I2V needs an --image (its first frame)")
    device = _device(device)
    pipe = offline.pipeline().to(device) if offline is not None else _load_pipeline(decoder, model, device)
    vlm = vlm or (str(offline.vlm) if offline is not None else "tiny")
    vision, processor = _load_vlm(variant, vlm, device, vision_tower)
    text_encoder, tokenizer = _text_encoder(pipe)
    align = _aligner(aligner or (offline.aligner if offline is not None else None), variant, vision, text_encoder)
    align = align.to(device).eval()

    if variant == "lvlm":
        torch.manual_seed(seed)
        own_vlm = offline is not None and vlm == str(offline.vlm)
        sampling = _sampling(sample if sample is not None else (offline.sampled if own_vlm else None), vlm)
        if max_new_tokens is None:
            max_new_tokens = offline.max_new_tokens if offline is not None else 64
        tokens, said = ThinkDiffLVLM(vision, processor, align, max_new_tokens, sampling).encode(items)
        typer.echo(f"LVLM: {said!r}")
    else:
        from .features import VISION_LAYERS

        tokens = ThinkDiffCLIP(vision, processor, align, tokenizer, text_encoder,
                               layer=VISION_LAYERS[vision_tower]).encode(images, prompt or None)
    kwargs = _call_settings(decoder, model, offline, steps, guidance, height, width, frames)
    kwargs.update(generator=torch.Generator().manual_seed(seed), output_type="pil")
    if decoder == "wan":
        kwargs["image"] = images[0]
    _save(render(pipe, tokens, **kwargs), out, video)  # the text is already in the tokens (LVLM answer / Eq. 5)
    typer.echo(f"wrote {out}")


def _checked_options(model: str, offline, decoder, variant: str, out: Path, aligner, vlm, text) -> tuple[str, bool]:
    """(decoder, whether it makes a video), or a one-line error for options that cannot go together or an --out
    that cannot be written."""
    from ..media import check_writable

    if offline is not None and (decoder is not None or variant != "lvlm"):
        _fail(f"--model {model} is a whole system (an LVLM and its own decoder): --decoder and --variant do not apply")
    if offline is not None and vlm is not None and aligner is None:
        _fail(f"--vlm with --model {model} needs the --aligner trained on that VLM (its own aligner reads its own VLM)")
    decoder = decoder or ("flux" if offline is None else "mini")
    if variant not in ("lvlm", "clip") or decoder not in ("flux", "cogvideox", "wan") + (("mini",) if offline else ()):
        _fail("--variant must be lvlm|clip and --decoder flux|cogvideox|wan")
    video = decoder in ("cogvideox", "wan")
    if out.suffix.lower() not in ((".mp4", ".gif") if video else (".png", ".jpg")):
        _fail(f"--out {out} must be {'.mp4/.gif' if video else '.png/.jpg'} for --decoder {decoder}")
    try:
        check_writable(out)  # a folder, an immutable file or an unwritable folder: refused before any model loads
    except ValueError as err:
        _fail(str(err))
    if aligner is None and offline is None and model != "tiny":
        _fail("--aligner is required with a real --model (train one with `reasondiff thinkdiff train`)")
    if variant == "clip" and text:
        _fail("--variant clip composes images with one --prompt; --text is for the LVLM's episodes")
    return decoder, video


def _checked_numbers(steps, guidance, height, width, frames, seed, max_new_tokens, device: str) -> None:
    """One line for a number no decoder can use, before any model loads (the checks of `reasondiff generate`
    where they apply): a seed torch cannot take and --steps 0 failed inside the pipeline, NaN guidance drew
    a picture anyway, a height of 2 failed in the decoder after the VLM had answered; --device too."""
    from ..pipelines.settings import MAX_STEPS
    from ..pipelines.settings import check_numbers

    try:
        check_numbers(guidance=guidance, seed=seed)
    except ValueError as err:
        _fail(str(err))
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        _fail(f"--steps must be within 1..{MAX_STEPS} (the schedulers' timesteps), got {steps}")
    for name, side in (("--height", height), ("--width", width)):
        if side is not None and (side < 16 or side % 16):
            _fail(f"{name} must be a positive multiple of 16 (the decoders' patches), got {side}")
    if frames is not None and frames < 1:
        _fail(f"--frames must be at least 1, got {frames}")
    if max_new_tokens is not None and max_new_tokens < 0:
        _fail(f"--max-new-tokens must be 0 or more, got {max_new_tokens}")
    _device(device)


def _load_images(paths: list[Path]) -> list:
    """The images, or a one-line error naming the file that is missing or not an image."""
    from ..media import load_image

    try:
        return [load_image(p) for p in paths]
    except ValueError as err:
        _fail(str(err))


def _aligner(path: Path | None, variant: str, vision, text_encoder):
    """The trained aligner, or (tiny smoke test) an untrained one with the paper's RMSNorm init."""
    from .aligner import Aligner

    if path is not None:
        return Aligner.from_pretrained(path)
    in_dim = vision.config.get_text_config().hidden_size if variant == "lvlm" else vision.config.hidden_size
    return Aligner.from_text_encoder(text_encoder, in_dim=in_dim)


def _call_settings(decoder: str, model: str, offline, steps, guidance, height, width, frames) -> dict:
    """The pipeline call's settings: the offline model's (or tiny's) defaults, overridden by the options given."""
    if offline is not None:
        defaults = dict(offline.call)
    elif model == "tiny":
        size = {"flux": (32, 32, None), "cogvideox": (16, 16, 9), "wan": (64, 64, 5)}[decoder]
        defaults = dict(height=size[0], width=size[1], num_frames=size[2], num_inference_steps=2)
    else:
        defaults = {}
    given = dict(num_inference_steps=steps, guidance_scale=guidance, height=height, width=width, num_frames=frames)
    settings = {**defaults, **{k: v for k, v in given.items() if v is not None}}
    return {k: v for k, v in settings.items() if v is not None}


@app.command()
def cobsat(
    root: Path = typer.Option(..., help="CoBSAT clone (or its datasets/ folder)."),
    permutations: Path = typer.Option(None, help="Permutation file; default ROOT/load_datasets/"
                                                 "prompts_list_default.json (older clones: prompts_list.json)."),
    shot: int = typer.Option(2, help="2 or 4 (Tables 1 and 2)."),
    num_prompts: int = typer.Option(None, help="First N prompts per task (CoBSAT uses all 1000)."),
    judge_model: str = typer.Option(..., help="Judge model name on an OpenAI-compatible server."),
    judge_url: str = typer.Option(None, help="Base URL of that server (e.g. http://localhost:8000/v1)."),
    model: str = typer.Option("tiny"), vlm: str = typer.Option("tiny"),
    aligner: Path = typer.Option(None, help="Trained aligner folder; required unless --model and --vlm are tiny."),
    steps: int = typer.Option(2), height: int = typer.Option(None), width: int = typer.Option(None),
    sample: bool = typer.Option(None, "--sample/--greedy", help="VLM answers: sampled as the authors did "
                                "(temperature 0.6, top-p 0.9; the default for a real --vlm) or greedy (tiny)."),
    out: Path = typer.Option(Path("outputs/cobsat")), device: str = typer.Option("auto", help=DEVICE_HELP),
) -> None:
    """Run ThinkDiff-LVLM + FLUX on CoBSAT, judge with a VLM server, print the 10-task accuracy table."""
    import torch

    from .aligner import Aligner
    from .cobsat import OpenAIJudge, default_permutations, evaluate, format_table, load_permutations
    from .inference import COBSAT_INSTRUCTION, ThinkDiffLVLM, render

    if aligner is None and (model != "tiny" or vlm != "tiny"):
        _fail("--aligner is required with a real --model or --vlm: an untrained aligner would be scored")
    try:
        perms = load_permutations(permutations or default_permutations(root))
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    device = _device(device)
    pipe = _load_pipeline("flux", model, device)
    pipe.set_progress_bar_config(disable=True)
    size = {k: v for k, v in (("height", height or (32 if model == "tiny" else None)),
                              ("width", width or (32 if model == "tiny" else None))) if v}
    vision, processor = _load_vlm("lvlm", vlm, device)
    align = Aligner.from_pretrained(aligner) if aligner else Aligner.from_text_encoder(
        pipe.text_encoder_2, in_dim=vision.config.get_text_config().hidden_size)
    lvlm = ThinkDiffLVLM(vision, processor, align.to(device).eval(), sampling=_sampling(sample, vlm))

    def gen(prompt):
        torch.manual_seed(prompt.index)  # sampled answers: the same per prompt on every run
        tokens, _ = lvlm.encode(prompt.items(COBSAT_INSTRUCTION))
        return render(pipe, tokens, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                      **size).images[0]

    results = evaluate(root, perms, gen, OpenAIJudge(judge_model, base_url=judge_url), shot=shot,
                       num_prompts=num_prompts, out_dir=out)
    typer.echo(format_table(results, f"ThinkDiff {shot}-shot"))


@app.command()
def convert(
    checkpoint: Path = typer.Argument(..., help="The authors' released aligner (.pth/.bin/.safetensors, "
                                                "mm_projector.* keys)."),
    out: Path = typer.Argument(..., help="Folder for our Aligner (config.json + safetensors)."),
    eps: float = typer.Option(1e-6, help="RMSNorm epsilon (T5's is 1e-6)."),
) -> None:
    """Convert an authors' ThinkDiff aligner checkpoint into an --aligner folder."""
    from .convert import convert_checkpoint

    try:
        aligner = convert_checkpoint(checkpoint, out, eps)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    typer.echo(f"aligner {aligner.config.in_dim} -> {aligner.config.out_dim} written to {out}")
