"""Outputs as a transaction (issue #33): a command's new set of output files is placed whole, or the previous set
stays whole; every path of the set is refused before any work when it cannot be written; no `.partial-*` or
`.backup-*` file is left after any failure; a failure is one line (exit 2 before the work, 1 during it).

What really stops root, who writes through permission bits: an immutable or append-only file or folder
(`chattr`, skipped where it is missing or the file system has no such flags), a folder where a file should be,
and the file-size limit (RLIMIT_FSIZE: Python gets EFBIG, ffmpeg is killed by SIGXFSZ and leaves a cut file).
Faults are injected into `media.write_together` itself: the k-th write, the k-th rename (os.replace) or the
k-th kill point (`reasondiff.faults.checkpoint`) fails, for every k, and the previous set must come back whole.
"""

import errno
import json
import os
import resource
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from reasondiff import faults, media
from reasondiff.cli import app
from reasondiff.media import OutputError, check_writable, write_together

runner = CliRunner()
TINY = ["--model", "tiny", "--steps", "1", "--frames", "5", "--height", "32", "--width", "32"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def chattr():
    """`chattr(path, "+i")`; skips the test where chattr is missing or the file system refuses the flag. Every
    flag set is taken off at the end, so the temporary folder can be removed."""
    flagged = []

    def set_flag(path, flag="+i"):
        try:
            done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
        except FileNotFoundError:
            pytest.skip("chattr is not installed")
        if done.returncode != 0:
            pytest.skip(f"chattr {flag} is not supported here: {done.stderr.strip()}")
        flagged.append(path)

    yield set_flag
    for path in reversed(flagged):
        subprocess.run(["chattr", "-i", "-a", str(path)], capture_output=True)


@pytest.fixture
def no_model(monkeypatch):
    """Loading a generation model fails the test: a path refused before any work is refused before this."""
    import reasondiff.pipelines.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the output paths were checked")

    monkeypatch.setattr(loading, "load_pipeline", refuse)


@contextmanager
def file_size_limit(limit: int):
    """RLIMIT_FSIZE for this process (and the ffmpeg it starts) while inside; Python ignores SIGXFSZ, so a write
    past the limit raises EFBIG instead of killing the test run."""
    if signal.getsignal(signal.SIGXFSZ) != signal.SIG_IGN:
        pytest.skip("SIGXFSZ is not ignored in this process")
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for pattern in (".partial-*", ".backup-*", "*.tmp")
                  for p in folder.rglob(pattern))


def snapshot(*paths: Path) -> dict[str, bytes | None]:
    """What a reader finds: each file's bytes, or None where it is missing."""
    return {str(p): Path(p).read_bytes() if Path(p).is_file() else None for p in paths}


def one_line(result, code: int, *needles: str) -> str:
    """The command ended with `code` and one `error:` line holding each needle, not a traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


class Faults:
    """Counts the fallible steps of `write_together` (each writer's call, each os.replace in media, each kill point)
    and raises at the k-th step of the kind asked for; later steps (the rollback) run as usual, or, `persistent`,
    fail too."""

    def __init__(self, monkeypatch, kind: str, k: int, error=None, persistent: bool = False):
        self.kind, self.k, self.seen, self.persistent = kind, k, 0, persistent
        self.error = error or (lambda: OSError(errno.ENOSPC, "No space left on device (injected)"))
        real_replace = os.replace

        class FaultyOs:  # media's `os`, with a replace that may fail; nothing else in the process is touched
            def __getattr__(_, name):
                return getattr(os, name)

            @staticmethod
            def replace(src, dst):
                self.step("replace")
                real_replace(src, dst)

        monkeypatch.setattr(media, "os", FaultyOs())
        monkeypatch.setattr(faults, "HOOKS", [lambda: self.step("checkpoint")])

    def step(self, kind: str) -> None:
        if kind == self.kind:
            self.seen += 1
            if self.seen == self.k or (self.persistent and self.seen > self.k):
                raise self.error()

    def writer(self, write):
        def faulty(path):
            self.step("write")
            write(path)
        return faulty

    @property
    def fired(self) -> bool:
        return self.seen >= self.k


# ------------------------------------------------------------------------------------------ the helper itself

def old_set(folder: Path, names: list[str]) -> dict[str, bytes | None]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(f"old {name}".encode())
    return snapshot(*(folder / n for n in ("a.mp4", "a.narration.json", "a.png", "a.stale")))


def new_writers(folder: Path) -> dict[Path, object]:
    return {folder / name: (lambda path, name=name: path.write_bytes(f"new {name}".encode()))
            for name in ("a.mp4", "a.narration.json", "a.png")}


@pytest.mark.parametrize("kind", ["write", "replace", "checkpoint"])
@pytest.mark.parametrize("present", [["a.mp4", "a.narration.json", "a.png", "a.stale"], ["a.mp4", "a.png"], []])
def test_a_failure_at_every_step_leaves_the_previous_set_whole(tmp_path, monkeypatch, kind, present):
    tried = 0
    for k in range(1, 100):
        folder = tmp_path / f"{kind}{k}"
        before = old_set(folder, present)
        injected = Faults(monkeypatch, kind, k)
        writers = {final: injected.writer(write) for final, write in new_writers(folder).items()}
        try:
            write_together(writers, drop=[folder / "a.stale"])
        except OSError as err:
            assert injected.fired and "\n" not in str(err)
            assert snapshot(*before) == before, (kind, k)  # every previous file back, none of the new ones
            assert leftovers(folder) == [], (kind, k)
            tried += 1
            continue
        assert not injected.fired  # past the last step of this kind: the new set is placed whole
        assert snapshot(folder / "a.mp4", folder / "a.narration.json", folder / "a.png") == {
            str(folder / n): f"new {n}".encode() for n in ("a.mp4", "a.narration.json", "a.png")}
        assert not (folder / "a.stale").exists() and leftovers(folder) == []
        break
    steps = {"write": 3, "replace": 3 + len(present), "checkpoint": 3 + len(present) + 3}[kind]
    assert tried == steps  # every step of that kind was made to fail once


def test_ctrl_c_while_placing_also_rolls_back(tmp_path, monkeypatch):
    before = old_set(tmp_path, ["a.mp4", "a.narration.json", "a.png"])
    Faults(monkeypatch, "checkpoint", 5, error=KeyboardInterrupt)  # 3 written, 2 moved aside
    with pytest.raises(KeyboardInterrupt):
        write_together(new_writers(tmp_path))
    assert snapshot(*before) == before and leftovers(tmp_path) == []


def test_a_previous_file_that_cannot_be_put_back_is_named_and_kept(tmp_path, monkeypatch):
    old_set(tmp_path, ["a.mp4", "a.narration.json", "a.png"])
    Faults(monkeypatch, "replace", 2, persistent=True)  # a.mp4 moved aside, then every rename fails
    with pytest.raises(OutputError, match=r"the previous .*a\.mp4 could not be put back: it is kept as "
                                          r".*\.backup-a\.mp4"):
        write_together(new_writers(tmp_path))
    assert (tmp_path / ".backup-a.mp4").read_bytes() == b"old a.mp4"  # the user's file is not lost
    assert not list(tmp_path.glob(".partial-*"))


def test_a_file_cut_at_the_file_size_limit_is_never_placed(tmp_path):
    """ffmpeg under RLIMIT_FSIZE is killed by SIGXFSZ and imageio returns as if the video were whole."""
    before = old_set(tmp_path, ["a.mp4", "a.narration.json", "a.png"])
    frames = np.random.default_rng(0).random((9, 64, 64, 3)).astype(np.float32)
    with file_size_limit(4096), pytest.raises(OutputError, match=r"could not write .*a\.mp4: .*File too large"):
        write_together({tmp_path / "a.mp4": lambda path: media.save_video(frames, path),
                        tmp_path / "a.narration.json": lambda path: path.write_text("{}")})
    assert snapshot(*before) == before and leftovers(tmp_path) == []


def test_paths_that_cannot_be_written_are_refused_by_name(tmp_path, chattr):
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "pipe.png")
    for path, why in [(tmp_path / "folder.png", "it is a folder"), (tmp_path / "file" / "a.png", "is a file"),
                      (tmp_path / "pipe.png", "not a regular file")]:
        with pytest.raises(ValueError, match=why):
            check_writable(path)
    for flag in ("+i", "+a"):
        path = tmp_path / f"flagged{flag[1]}.png"
        path.write_bytes(b"old")
        chattr(path, flag)
        with pytest.raises(ValueError, match=f"cannot write {path}: the existing file may not be replaced"):
            check_writable(path)
        assert path.read_bytes() == b"old"
    locked = tmp_path / "locked"
    locked.mkdir()
    chattr(locked)
    with pytest.raises(ValueError, match="locked is not writable"):
        check_writable(locked / "new" / "a.png")
    check_writable(tmp_path / "a.png")  # what may be written passes


# ------------------------------------------------------------------------------------------------- generate

def generated_set(out: Path) -> list[Path]:
    return [out, out.with_suffix(".narration.json"), out.with_suffix(".png")]


@pytest.mark.parametrize("member", [".png", ".narration.json", ".mp4"])
@pytest.mark.parametrize("blocker", ["folder", "immutable"])
def test_generate_refuses_any_unwritable_member_of_its_set_before_any_work(tmp_path, chattr, no_model, member,
                                                                           blocker):
    out = tmp_path / "a.mp4"
    for path in generated_set(out):
        path.write_bytes(b"old " + path.name.encode())
    blocked = out.with_suffix(member)
    if blocker == "folder":
        blocked.unlink()
        blocked.mkdir()
    else:
        chattr(blocked)
    before = snapshot(*generated_set(out))
    result = runner.invoke(app, ["generate", *TINY, "-o", str(out)])
    one_line(result, 2, f"cannot write {blocked}")
    assert snapshot(*generated_set(out)) == before and leftovers(tmp_path) == []


@pytest.fixture(scope="module")
def previous_generation(tmp_path_factory):
    """A real tiny generation (seed 1): the previous set that a failed run must leave whole."""
    folder = tmp_path_factory.mktemp("previous")
    result = runner.invoke(app, ["-q", "generate", *TINY, "--seed", "1", "-o", str(folder / "a.mp4")])
    assert result.exit_code == 0, result.output
    return snapshot(*generated_set(folder / "a.mp4"))


def place_previous(previous: dict[str, bytes | None], folder: Path) -> Path:
    folder.mkdir()
    for path, data in previous.items():
        (folder / Path(path).name).write_bytes(data)
    return folder / "a.mp4"


@pytest.mark.parametrize("kind, steps", [("write", 3), ("replace", 6)])
def test_generate_failing_at_any_write_or_rename_keeps_the_previous_set(tmp_path, monkeypatch, previous_generation,
                                                                        kind, steps):
    for k in range(1, steps + 1):  # e.g. the 3rd rename: a.png's move aside; the 5th: the new script's rename
        out = place_previous(previous_generation, tmp_path / f"{kind}{k}")
        injected = Faults(monkeypatch, kind, k)
        real_together = media.write_together
        monkeypatch.setattr(media, "write_together", lambda writers, **kw: real_together(
            {final: injected.writer(write) for final, write in writers.items()}, **kw))
        result = runner.invoke(app, ["-q", "generate", *TINY, "--seed", "0", "-o", str(out)])
        one_line(result, 1, "No space left on device", "nothing was replaced")
        assert injected.fired
        assert snapshot(*generated_set(out)) == {str(out.parent / Path(p).name): d
                                                 for p, d in previous_generation.items()}, (kind, k)
        assert leftovers(out.parent) == [], (kind, k)
        monkeypatch.undo()


def test_generate_under_a_file_size_limit_keeps_the_previous_set(tmp_path, previous_generation):
    out = place_previous(previous_generation, tmp_path / "limited")
    before = snapshot(*generated_set(out))
    with file_size_limit(1024):
        result = runner.invoke(app, ["-q", "generate", *TINY, "--seed", "0", "-o", str(out)])
    one_line(result, 1, "File too large", "nothing was replaced")
    assert snapshot(*generated_set(out)) == before and leftovers(out.parent) == []


# -------------------------------------------------------------------------------------------- thinkdiff generate

def thinkdiff(out: Path, *extra: str):
    return runner.invoke(app, ["thinkdiff", "generate", "--steps", "1", *extra, "-o", str(out)])


@pytest.mark.parametrize("blocker", ["read-only folder", "existing folder", "immutable file"])
def test_thinkdiff_generate_refuses_an_unwritable_out_before_any_work(tmp_path, chattr, monkeypatch, blocker):
    import reasondiff.thinkdiff.cli as thinkdiff_cli

    monkeypatch.setattr(thinkdiff_cli, "_load_vlm", lambda *a, **k: pytest.fail("the VLM loaded before the check"))
    out = tmp_path / "next.png"
    if blocker == "read-only folder":
        chattr(tmp_path)
        named = f"{tmp_path} is not writable"
    elif blocker == "existing folder":
        out.mkdir()
        named = "it is a folder"
    else:
        out.write_bytes(b"old picture")
        chattr(out)
        named = "may not be replaced"
    before = snapshot(out)
    one_line(thinkdiff(out), 2, f"cannot write {out}", named)
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_thinkdiff_generate_under_a_file_size_limit_keeps_the_previous_picture(tmp_path):
    out = tmp_path / "next.png"
    assert thinkdiff(out, "--seed", "1").exit_code == 0
    before = snapshot(out)
    assert len(before[str(out)]) > 1024
    with file_size_limit(1024):
        result = thinkdiff(out)
    one_line(result, 1, f"could not write {out}", "File too large")
    assert snapshot(out) == before and leftovers(tmp_path) == []  # no picture cut at 1024 bytes


@pytest.mark.parametrize("kind, steps", [("write", 1), ("replace", 2)])
def test_thinkdiff_generate_failing_at_any_write_or_rename_keeps_the_previous_picture(tmp_path, monkeypatch, kind,
                                                                                     steps):
    out = tmp_path / "next.png"
    assert thinkdiff(out, "--seed", "1").exit_code == 0
    before = snapshot(out)
    for k in range(1, steps + 1):
        injected = Faults(monkeypatch, kind, k)
        real_together = media.write_together
        monkeypatch.setattr(media, "write_together", lambda writers, **kw: real_together(
            {final: injected.writer(write) for final, write in writers.items()}, **kw))
        one_line(thinkdiff(out), 1, f"{out}", "nothing was replaced")
        assert injected.fired and snapshot(out) == before and leftovers(tmp_path) == [], (kind, k)
        monkeypatch.undo()


# ---------------------------------------------------------------------------------------------------- eval

@pytest.fixture
def results(tmp_path):
    """A run folder with two methods over three cases, as `eval run` writes it: what `eval report` reads."""
    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    rows = [{"case_id": f"case{i}", "mode": mode, "method": mode,
             "metrics": {"motion_smoothness": float(rng.random()), "dynamic_degree": float(rng.random() > 0.5)}}
            for i in range(3) for mode in ("wan", "reasondiff")]
    (run / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


def report_files(folder: Path) -> list[Path]:
    return [folder / name for name in ("table.md", "table_ci.md", "table.csv", "differences.md", "ablation.csv",
                                       "ablation.png")]


def test_eval_report_failing_at_any_step_keeps_the_previous_report(tmp_path, monkeypatch, results):
    out = tmp_path / "report"
    assert runner.invoke(app, ["eval", "report", str(results), "-o", str(out)]).exit_code == 0
    before = snapshot(*report_files(out))
    assert all(before.values())
    for kind, steps in (("write", 6), ("replace", 12)):
        for k in range(1, steps + 1):
            injected = Faults(monkeypatch, kind, k)
            real_together = media.write_together
            monkeypatch.setattr(media, "write_together", lambda writers, **kw: real_together(
                {final: injected.writer(write) for final, write in writers.items()}, **kw))
            result = runner.invoke(app, ["eval", "report", str(results), "-o", str(out), "--digits", "5"])
            one_line(result, 1, "nothing was replaced")
            assert injected.fired and snapshot(*report_files(out)) == before, (kind, k)
            assert leftovers(out) == [], (kind, k)
            monkeypatch.undo()


def test_eval_report_refuses_a_folder_in_a_tables_place_and_drops_a_stale_chart(tmp_path, results):
    out = tmp_path / "report"
    assert runner.invoke(app, ["eval", "report", str(results), "-o", str(out)]).exit_code == 0
    (out / "table.csv").unlink()
    (out / "table.csv").mkdir()
    before = snapshot(*report_files(out))
    one_line(runner.invoke(app, ["eval", "report", str(results), "-o", str(out), "--digits", "5"]), 2,
             f"cannot write {out / 'table.csv'}: it is a folder")
    assert snapshot(*report_files(out)) == before  # table.md is not rewritten beside the old chart
    (out / "table.csv").rmdir()
    # a report of the baseline alone has no chart and no differences: the previous ones go with the old tables
    result = runner.invoke(app, ["eval", "report", str(results), "-o", str(out), "--reference", "none",
                                 "--baseline", "none"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["table.csv", "table.md", "table_ci.md"]


@pytest.fixture
def benchmark(tmp_path):
    folder = tmp_path / "bench"
    folder.mkdir()
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / "c.png")
    (folder / "benchmark.jsonl").write_text(json.dumps({"id": "case0", "image": "c.png", "prompt": "a cat"}) + "\n")
    return folder / "benchmark.jsonl"


def eval_run(manifest: Path, out: Path):
    return runner.invoke(app, ["eval", "run", "-m", str(manifest), "-o", str(out), *TINY, "--modes", "wan",
                               "--metrics", "sharpness"])


@pytest.mark.parametrize("blocked", ["results.jsonl", "summary.json", "videos"])
def test_eval_run_refuses_an_unwritable_run_folder_before_any_model_loads(tmp_path, benchmark, chattr, no_model,
                                                                         blocked):
    out = tmp_path / "run"
    out.mkdir()
    if blocked == "summary.json":
        (out / blocked).mkdir()
    elif blocked == "videos":  # a file where the videos' folder goes
        (out / blocked).write_text("")
    else:
        (out / blocked).write_text("")
        chattr(out / blocked)
    one_line(eval_run(benchmark, out), 2, f"cannot write {out / blocked}")


def test_eval_run_never_leaves_a_video_cut_short(tmp_path, benchmark, monkeypatch):
    """A full disk while ffmpeg writes: nothing at videos/wan/case0.mp4 (a rerun makes it), exit 1, one line."""
    real_export = media.export_to_video

    def disk_fills_up(frames, path, **kwargs):
        real_export(frames, path, **kwargs)
        with open(path, "r+b") as handle:
            handle.truncate(100)
        raise OSError(errno.ENOSPC, "No space left on device (injected)")

    monkeypatch.setattr(media, "export_to_video", disk_fills_up)
    out = tmp_path / "run"
    one_line(eval_run(benchmark, out), 1, "No space left on device")
    assert not (out / "videos" / "wan" / "case0.mp4").exists() and leftovers(out) == []
    monkeypatch.undo()
    rerun = eval_run(benchmark, out)
    assert rerun.exit_code == 0 and "generated 1" in rerun.output, rerun.output
    assert (out / "videos" / "wan" / "case0.mp4").stat().st_size > 100


def test_eval_rescore_failing_at_any_rename_keeps_rows_run_and_summary_together(tmp_path, benchmark, monkeypatch):
    out = tmp_path / "run"
    assert eval_run(benchmark, out).exit_code == 0
    files = [out / "results.jsonl", out / "run.json", out / "summary.json"]
    before = snapshot(*files)
    rescore = ["eval", "rescore", str(out), "-m", str(benchmark), "--metrics", "motion_smoothness",
               "--interpolator", "linear"]
    for k in range(1, 7):  # three moved aside, three renamed in
        Faults(monkeypatch, "replace", k)
        one_line(runner.invoke(app, rescore), 1, "nothing was replaced")
        assert snapshot(*files) == before and leftovers(out) == [], k  # no row holding a metric run.json lacks
        monkeypatch.undo()
    assert runner.invoke(app, rescore).exit_code == 0
    assert "motion_smoothness" in json.loads((out / "run.json").read_text())["metrics"]


def build_synthworld(out: Path, seed: int):
    return runner.invoke(app, ["eval", "build-synthworld", "--split", "unpaired", "--cases", "1", "--seed", str(seed),
                               "--train-clips", "8", "-o", str(out)])


def test_build_synthworld_failing_at_any_rename_keeps_the_previous_benchmark(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    assert build_synthworld(out, 1).exit_code == 0
    before = snapshot(out / "benchmark.jsonl", out / "report.json")
    for k in range(1, 6):  # the new true clip's rename, then benchmark.jsonl and report.json: 2 aside, 2 in
        Faults(monkeypatch, "replace", k)
        one_line(build_synthworld(out, 2), 1, "nothing was replaced")
        assert snapshot(*before) == before and leftovers(out) == [], k
        monkeypatch.undo()
    fresh = tmp_path / "fresh"
    (fresh / "report.json").mkdir(parents=True)
    one_line(build_synthworld(fresh, 2), 2, f"cannot write {fresh / 'report.json'}: it is a folder")
    assert sorted(p.name for p in fresh.iterdir()) == ["report.json"]  # refused before drawing anything


def test_eval_score_refuses_an_immutable_summary_before_scoring(tmp_path, benchmark, chattr):
    run = tmp_path / "run"
    assert eval_run(benchmark, run).exit_code == 0
    out = tmp_path / "scores"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    chattr(out / "summary.json")
    result = runner.invoke(app, ["eval", "score", "-b", str(benchmark), "--videos", str(run / "videos" / "wan"),
                                 "-o", str(out), "--metrics", "sharpness"])
    one_line(result, 2, f"cannot write {out / 'summary.json'}")
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]  # nothing scored, nothing appended
