"""SQLite storage of a ranking study: questions, each participant's randomised order, and answers.

Tables:
    questions(id, case_id, prompt, image, videos)   videos: JSON {method: absolute path}
    participants(id, created_at)
    assignments(participant_id, position, question_id, display_order)
        the questions a participant sees, in their order, and the order of the methods on each page
        (JSON list, left to right, shown as Video A, B, ...): randomised per participant and recorded
        before the page is shown, so the analysis can check for position bias.
    answers(participant_id, position, question_id, display_order, ranks, submitted_at)
        ranks: JSON {method: rank}, 1 = best; one row per answered page (a resubmission replaces it).
"""

from __future__ import annotations

import json
import random
import secrets
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS questions(
    id INTEGER PRIMARY KEY, case_id TEXT NOT NULL UNIQUE, prompt TEXT NOT NULL, image TEXT NOT NULL,
    videos TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants(id TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS assignments(
    participant_id TEXT NOT NULL REFERENCES participants(id), position INTEGER NOT NULL,
    question_id INTEGER NOT NULL REFERENCES questions(id), display_order TEXT NOT NULL,
    PRIMARY KEY(participant_id, position));
CREATE TABLE IF NOT EXISTS answers(
    participant_id TEXT NOT NULL, position INTEGER NOT NULL, question_id INTEGER NOT NULL,
    display_order TEXT NOT NULL, ranks TEXT NOT NULL, submitted_at REAL NOT NULL,
    PRIMARY KEY(participant_id, position));
"""


def _connect(path: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), timeout=30)
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def create_study(db_path: str | Path, run_dirs: Sequence[str | Path], methods: Sequence[str] | None = None,
                 questions_per_participant: int = 10) -> int:
    """Fill a new study database from `eval run` folders: one question per case that has a video for every
    method. Returns the number of questions. `methods`: the models to compare (default: every mode found; the
    paper shows 5)."""
    from ..runner import read_results

    rows = [(Path(d), row) for d in run_dirs for row in read_results(d)]
    found = list(dict.fromkeys(row["method"] for _, row in rows))
    methods = list(methods) if methods else found
    missing = [m for m in methods if m not in found]
    if missing:
        raise ValueError(f"no videos for method(s) {', '.join(missing)}; the runs have {', '.join(found)}")
    if len(methods) < 2:
        raise ValueError("a ranking study needs at least two methods")
    cases: dict[str, dict] = {}
    for folder, row in rows:
        if row["method"] in methods:
            case = cases.setdefault(row["case_id"], {"prompt": row["prompt"], "image": row["image"], "videos": {}})
            case["videos"][row["method"]] = str((folder / row["video"]).resolve())
    complete = {cid: c for cid, c in cases.items() if set(c["videos"]) == set(methods)}
    if not complete:
        raise ValueError(f"no case has a video for every one of {', '.join(methods)}")
    if questions_per_participant < 1:
        raise ValueError(f"questions per participant must be at least 1, got {questions_per_participant}")
    if Path(db_path).exists():
        raise ValueError(f"{db_path} already exists; a study database is created once (serve it again to continue)")
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    with _connect(db_path) as db:
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("methods", json.dumps(methods)), ("questions_per_participant", str(questions_per_participant))])
        db.executemany("INSERT INTO questions(case_id, prompt, image, videos) VALUES (?, ?, ?, ?)", [
            (cid, c["prompt"], c["image"], json.dumps({m: c["videos"][m] for m in methods}))
            for cid, c in complete.items()])
    return len(complete)


class StudyStore:
    """Reads and writes one study database; every call opens its own connection (safe across server threads)."""

    def __init__(self, db_path: str | Path, rng: random.Random | None = None):
        self.path = Path(db_path)
        if not self.path.is_file():
            raise ValueError(f"study database not found: {self.path} (create it with `reasondiff eval study`)")
        self.rng = rng or random.SystemRandom()
        with _connect(self.path) as db:
            meta = dict(db.execute("SELECT key, value FROM meta"))
        self.methods = json.loads(meta["methods"])
        self.questions_per_participant = int(meta["questions_per_participant"])

    def new_participant(self) -> str:
        """Register a participant and record their random questions (order included) and video orders."""
        participant = secrets.token_urlsafe(8)
        with _connect(self.path) as db:
            ids = [r[0] for r in db.execute("SELECT id FROM questions ORDER BY id")]
            chosen = self.rng.sample(ids, min(self.questions_per_participant, len(ids)))
            db.execute("INSERT INTO participants VALUES (?, ?)", (participant, time.time()))
            for position, question in enumerate(chosen):
                order = list(self.methods)
                self.rng.shuffle(order)
                db.execute("INSERT INTO assignments VALUES (?, ?, ?, ?)",
                           (participant, position, question, json.dumps(order)))
        return participant

    def num_assigned(self, participant: str) -> int:
        with _connect(self.path) as db:
            return db.execute("SELECT COUNT(*) FROM assignments WHERE participant_id = ?", (participant,)).fetchone()[0]

    def page(self, participant: str, position: int) -> dict | None:
        """The question at `position` for `participant`: prompt, image, and videos in that participant's order."""
        with _connect(self.path) as db:
            row = db.execute(
                "SELECT q.id, q.case_id, q.prompt, q.image, q.videos, a.display_order FROM assignments a "
                "JOIN questions q ON q.id = a.question_id WHERE a.participant_id = ? AND a.position = ?",
                (participant, position)).fetchone()
        if row is None:
            return None
        question, case_id, prompt, image, videos, order = row
        videos, order = json.loads(videos), json.loads(order)
        return {"question_id": question, "case_id": case_id, "prompt": prompt, "image": image,
                "order": order, "videos": [videos[m] for m in order]}

    def answer(self, participant: str, position: int, ranks_by_slot: Sequence[int]) -> None:
        """Store ranks given to the videos as shown (slot 0 = Video A); they must be a permutation of 1..n."""
        page = self.page(participant, position)
        if page is None:
            raise ValueError(f"participant {participant!r} has no question {position + 1}")
        n = len(page["order"])
        if sorted(ranks_by_slot) != list(range(1, n + 1)):
            raise ValueError(f"give each of the {n} videos a different rank from 1 to {n}")
        ranks = {method: int(rank) for method, rank in zip(page["order"], ranks_by_slot)}
        with _connect(self.path) as db:
            db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                       (participant, position, page["question_id"], json.dumps(page["order"]), json.dumps(ranks),
                        time.time()))

    def answers(self) -> list[dict]:
        with _connect(self.path) as db:
            rows = db.execute("SELECT participant_id, position, question_id, display_order, ranks FROM answers "
                              "ORDER BY participant_id, position").fetchall()
        return [{"participant": p, "position": pos, "question_id": q, "order": json.loads(o), "ranks": json.loads(r)}
                for p, pos, q, o, r in rows]


def aggregate(db_path: str | Path) -> dict[str, dict[str, float]]:
    """User Rank: per method, mean ± std (population) of its rank over all answered questions, and n."""
    store = StudyStore(db_path)
    ranks: dict[str, list[int]] = {m: [] for m in store.methods}
    for answer in store.answers():
        for method, rank in answer["ranks"].items():
            ranks.setdefault(method, []).append(rank)
    return {m: {"mean": float(np.mean(r)) if r else float("nan"), "std": float(np.std(r)) if r else float("nan"),
                "n": len(r)} for m, r in ranks.items()}
