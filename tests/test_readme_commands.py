"""Every file a README command reads exists in a fresh clone, or an earlier README command writes it.

The README's examples named `frame.png`, `vase.png`, `a.png`, `script.json` that nobody has; a new user copies
the commands verbatim. This reads every ```bash block (and inline `reasondiff ...` spans), follows the commands in
order, and checks each input path against the repository and against what the commands before it write.
"""

import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
INPUTS = {"-i", "--image", "-n", "--narration", "--config", "--config_file", "-m", "--manifest", "-b", "--benchmark",
          "--videos", "--alignformer", "--lora"}
OUTPUTS = {"-o", "--out", "--output"}
FLAGS = {"--help", "--version", "--verbose", "-v", "--quiet", "-q", "--plan"}


def command_lines(text: str) -> list[list[str]]:
    """Each command of the README in order, as shell words (comments dropped, `\\` continuations joined)."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```|`(reasondiff [^`]+)`", text, re.S):
        code = (block[0] or block[1]).replace("\\\n", " ")
        for line in code.splitlines():
            words = shlex.split(line, comments=True)
            while words:  # `a && b` is two commands
                cut = words.index("&&") if "&&" in words else len(words)
                lines.append(words[:cut])
                words = words[cut + 1:]
    return [words for words in lines if words]


def reasondiff_words(words: list[str]) -> list[str] | None:
    """The `reasondiff ...` part of a command (also under `accelerate launch ... -m reasondiff`), or None."""
    if words[0] == "reasondiff":
        return words[1:]
    if words[:2] == ["accelerate", "launch"] and "reasondiff" in words:
        return words[words.index("reasondiff") + 1:]
    return None


def files_read_and_written(words: list[str]) -> tuple[list[str], list[str]]:
    """The local paths one command reads and the paths it writes (outputs, `output_dir=` and a config's output_dir)."""
    read, written = [], []
    if words[0] == "bash":
        return [words[1]], []
    if words[:2] == ["accelerate", "launch"] and "--config_file" in words:
        read.append(words[words.index("--config_file") + 1])
    args = reasondiff_words(words)
    if args is None:
        return read, written
    i = 0
    while i < len(args):
        word = args[i]
        if word in INPUTS or word in OUTPUTS:
            (read if word in INPUTS else written).append(args[i + 1])
            i += 2
            continue
        if word.startswith("output_dir="):
            written.append(word.split("=", 1)[1])
        elif word.startswith("-") and word not in FLAGS and i + 1 < len(args) and not args[i + 1].startswith("-"):
            i += 1  # another option's value (`--model Wan-AI/...`)
        elif not word.startswith("-") and "/" in word and "=" not in word and ":" not in word:
            read.append(word)  # a positional folder, e.g. `eval report runs/eval`
        i += 1
    if "train" in args and "--config" in args:
        config = ROOT / args[args.index("--config") + 1]
        if config.is_file():
            written.append(yaml.safe_load(config.read_text())["output_dir"])
    return read, written


def missing_inputs(text: str) -> list[str]:
    written: list[str] = ["outputs/"]  # `reasondiff generate` with no options, the README's first command, writes here
    missing = []
    for words in command_lines(text):
        read, wrote = files_read_and_written(words)
        for path in read:
            made = any(path.rstrip("/") == w.rstrip("/") or path.startswith(w.rstrip("/") + "/") for w in written)
            if not made and not (ROOT / path).exists():
                missing.append(f"{path} (in: {' '.join(words)})")
        written += wrote
    return missing


def test_the_checker_sees_what_the_readme_used_to_name():
    old = '```bash\nreasondiff generate -i vase.png -p "A cat" -n script.json -o cat.mp4\n```\n' \
          '`reasondiff narrate -i frame.png -p "a dog plays"`\n' \
          '```bash\nreasondiff thinkdiff generate -t "kitchen: " -i a.png -o next.png && bash scripts/nope.sh\n```\n' \
          '```bash\nreasondiff eval build-synthworld --split unpaired -o bench\n' \
          'reasondiff eval run -m bench/benchmark.jsonl -o runs/eval --model Wan-AI/Wan2.1-I2V-14B-480P-Diffusers \\\n' \
          '    --alignformer ckpt/alignformer\nreasondiff eval report runs/eval -o report/\n```\n'
    assert [m.split(" ")[0] for m in missing_inputs(old)] == [
        "vase.png", "script.json", "frame.png", "a.png", "scripts/nope.sh", "ckpt/alignformer"]


def test_every_file_a_readme_command_reads_exists_or_is_written_before():
    commands = command_lines(README.read_text())
    assert sum(reasondiff_words(words) is not None for words in commands) >= 25  # the parser found the commands
    assert missing_inputs(README.read_text()) == []


def test_the_readme_garden_example_tells_a_garden_story():
    """The README's dog example ran on the bundled kitchen picture and told of "a broken vase in the garden"."""
    from PIL import Image

    from reasondiff.mini.narrator import narrate_world

    (words,) = [w for w in command_lines(README.read_text()) if "a dog plays in the garden" in w and "generate" in w]
    image = Image.open(ROOT / words[words.index("-i") + 1]).convert("RGB")
    script = narrate_world(image, "a dog plays in the garden", 17)
    assert all("garden" in d or "dog" in d for d in script.descriptions)
    assert not any("kitchen" in d or "vase" in d for d in script.descriptions)
