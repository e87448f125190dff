import json

import imageio.v3 as iio
import PIL.Image
import pytest
import thinkdiff_toy as toy
from typer.testing import CliRunner

from reasondiff.thinkdiff import FeatureDataset, tiny
from reasondiff.thinkdiff.cli import app

runner = CliRunner()


@pytest.fixture
def toy_data(tmp_path):
    rows = []
    for i, caption in enumerate(toy.toy_captions(6, seed=9)):
        toy.toy_image(caption, 56).save(tmp_path / f"{i}.png")
        rows.append({"image": f"{i}.png", "caption": caption})
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.mark.parametrize("variant", ["lvlm", "clip"])
def test_extract_then_train_then_generate(toy_data, variant):
    feats, run = toy_data / f"feats-{variant}", toy_data / f"run-{variant}"
    out = invoke("extract", "--data", toy_data / "data.jsonl", "--out", feats, "--variant", variant,
                 "--max-new-tokens", 5, "--shard-size", 4, "--dtype", "float32")
    assert "RANDOM" in out.output and "6/6 samples" in out.output
    ds = FeatureDataset(feats)
    assert len(ds) == 6 and ds.metadata["variant"] == variant
    if variant == "clip":
        assert ds[0].features.shape == (5, tiny.CLIP_DIM) and ds[0].text == toy.toy_captions(6, seed=9)[0]
    else:
        assert all(ds[i].token_aligned and 1 <= len(ds[i].features) <= 5 for i in range(6))
    out = invoke("train", "--features", feats, "--out", run, "--steps", 4, "--batch-size", 2, "--checkpoint-every", 2)
    assert "loss" in out.output and (run / "aligner" / "diffusion_pytorch_model.safetensors").is_file()
    assert len(json.loads((run / "losses.json").read_text())) == 4
    image = toy_data / "0.png"
    invoke("generate", "--model", "tiny", "-i", image, "-p", "Describe the image.", "--variant", variant,
           "--aligner", run / "aligner", "-o", toy_data / "out.png")
    assert PIL.Image.open(toy_data / "out.png").size == (32, 32)


@pytest.mark.parametrize("decoder,suffix,shape", [("cogvideox", ".gif", (9, 16, 16, 3)), ("wan", ".mp4", None)])
def test_generate_video_decoders(toy_data, decoder, suffix, shape):
    out = toy_data / f"clip{suffix}"
    result = invoke("generate", "--model", "tiny", "-i", toy_data / "0.png", "--decoder", decoder, "--variant", "clip", "-o", out,
                    "--max-new-tokens", 4)
    assert "wrote" in result.output
    frames = iio.imread(out, index=None) if suffix == ".gif" else iio.imread(out)
    assert frames.shape[0] == (shape[0] if shape else 5)


def test_errors_are_reported_without_a_traceback(toy_data):
    result = runner.invoke(app, ["generate", "--model", "tiny", "--decoder", "flux", "-o", str(toy_data / "x.mp4"),
                                 "-p", "a cat"])
    assert result.exit_code == 2 and ".png" in result.output
    result = runner.invoke(app, ["train", "--features", str(toy_data / "none"), "--out", str(toy_data / "r")])
    assert result.exit_code == 2 and "index.json" in result.output
    result = runner.invoke(app, ["generate", "-p", "x", "--model", "org/flux", "-o", str(toy_data / "x.png")])
    assert result.exit_code == 2 and "--aligner is required" in result.output  # refused before any download


def test_cobsat_command_prints_the_ten_task_table(tmp_path, monkeypatch):
    from reasondiff.thinkdiff import cobsat

    for detail, obj in [("color", "object"), ("background", "animal"), ("style", "object"), ("action", "animal"),
                        ("texture", "object")]:
        for obj_value in cobsat.ITEMS[obj]:
            folder = tmp_path / "datasets" / f"{detail}_{obj_value}"
            folder.mkdir(parents=True, exist_ok=True)
            for detail_value in cobsat.ITEMS[detail]:
                PIL.Image.new("RGB", (8, 8), (40, 80, 120)).save(folder / f"{detail_value}_{obj_value}.jpg")
    (tmp_path / "load_datasets").mkdir()
    (tmp_path / "load_datasets" / "prompts_list.json").write_text(
        json.dumps([{"x_list": [0, 1, 2, 3, 4], "theta_list": [0, 1, 2, 3, 4, 5]}]))
    asked = []

    class Judge:  # stands in for the chat-completions server: object question right, detail question wrong
        def __init__(self, model, base_url=None, **kwargs):
            asked.append((model, base_url))

        def answer(self, images, question):
            assert images[0].size == (32, 32)  # the generated FLUX image is what gets judged
            return "4" if question.startswith("What is the main") else "0"

    monkeypatch.setattr(cobsat, "OpenAIJudge", Judge)
    result = invoke("cobsat", "--root", tmp_path, "--shot", 2, "--judge-model", "judge", "--judge-url", "http://x/v1",
                    "--out", tmp_path / "out")
    lines = [x.strip() for x in result.stdout.replace("\r", "\n").splitlines()]
    i = next(i for i, x in enumerate(lines) if x.startswith("Color-I"))
    header, row = lines[i], lines[i + 1]
    assert header.split()[0] == "Color-I" and len(header.split()) == 11
    assert row.split()[-11:] == ["0.000"] * 11 and asked == [("judge", "http://x/v1")]
    lines = (tmp_path / "out" / "shot_2" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 10 and all(json.loads(x)["correct"] is False for x in lines)
