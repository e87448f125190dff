"""Reading a Narration out of what real MLLMs write.

Models asked for strict JSON still wrap it in code fences or prose, leave trailing commas, use Python's
single quotes, write the position as a string or 0-based, answer in segments ("Frame@1-20") as the paper's
Fig. 6 shows, or miscount the frames. Each of these has exactly one sensible reading, so we repair it and
note the repair in `metadata["warnings"]`; anything else raises `NarrationError` with the raw text, which
the narrator feeds back to the model for another try.

Nothing here raises anything but `NarrationError`, whatever the input (the property tests hold us to it).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pydantic import ValidationError

from .errors import NarrationError
from .schema import Narration

POSITION_KEYS = ("position", "image_position", "anchor_position", "condition_position", "image_frame", "anchor")
DESCRIPTION_KEYS = ("descriptions", "frame_descriptions", "frames", "script", "segments", "narrative", "narratives")
TEXT_KEYS = ("description", "text", "caption", "prompt", "content", "narrative")
MAX_DEPTH = 64
MAX_CANDIDATES = 32

_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\r?\n?(.*?)```", re.DOTALL)
_INT = re.compile(r"-?\d+")
# "Frame@1-20", "frames 21 - 45", "Frame 3", "1-20", "21 to 45": a frame or a run of frames.
_RANGE = re.compile(r"^\s*(?:frames?\s*@?\s*)?(\d+)\s*(?:(?:-|–|—|to|\.\.)\s*(?:frames?\s*@?\s*)?(\d+))?\s*$", re.IGNORECASE)
_LABELLED = re.compile(
    r"^\s*\(?frames?\s*@?\s*(\d+)\s*(?:(?:-|–|—|to|\.\.)\s*(?:frames?\s*@?\s*)?(\d+))?\s*\)?\s*[:.)\-–—]\s*(.*)$",
    re.IGNORECASE | re.DOTALL,
)


# --------------------------------------------------------------------------------------------------------------
# A forgiving JSON reader: JSON plus single quotes, trailing or missing commas, bare keys, comments and Python
# literals. It parses one value from a start index and ignores what follows, so prose after the JSON is harmless.
# --------------------------------------------------------------------------------------------------------------


class _Malformed(Exception):
    pass


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


class _Reader:
    def __init__(self, text: str):
        self.text, self.i = text, 0

    def fail(self, what: str):
        raise _Malformed(f"{what} at character {self.i}")

    def skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c.isspace():
                self.i += 1
            elif text.startswith("//", self.i) or c == "#":
                end = text.find("\n", self.i)
                self.i = n if end < 0 else end + 1
            elif text.startswith("/*", self.i):
                end = text.find("*/", self.i + 2)
                self.i = n if end < 0 else end + 2
            else:
                return

    def value(self, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            self.fail("nesting too deep")
        self.skip()
        if self.i >= len(self.text):
            self.fail("unexpected end of answer")
        c = self.text[self.i]
        if c == "{":
            return self.obj(depth)
        if c == "[":
            return self.arr(depth)
        if c in "\"'“‘":
            return self.string()
        match = _NUMBER.match(self.text, self.i)
        if match:
            self.i = match.end()
            number = float(match.group())
            return int(match.group()) if re.fullmatch(r"-?\d+", match.group()) else number
        match = _BARE.match(self.text, self.i)
        if match and match.group() in _LITERALS:
            self.i = match.end()
            return _LITERALS[match.group()]
        self.fail(f"unexpected {c!r}")

    def obj(self, depth: int) -> dict:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.i >= len(self.text):
                self.fail("unclosed object")
            c = self.text[self.i]
            if c == "}":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                continue
            if c in "\"'“‘":
                key = self.string()
            else:
                match = _NUMBER.match(self.text, self.i) or _BARE.match(self.text, self.i)
                if not match:
                    self.fail(f"expected a key, found {c!r}")
                key, self.i = match.group(), match.end()
            self.skip()
            if self.i >= len(self.text) or self.text[self.i] not in ":=":
                self.fail("expected ':' after a key")
            self.i += 1
            out[str(key)] = self.value(depth + 1)

    def arr(self, depth: int) -> list:
        self.i += 1
        out: list[Any] = []
        while True:
            self.skip()
            if self.i >= len(self.text):
                self.fail("unclosed list")
            c = self.text[self.i]
            if c == "]":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                continue
            if self.text.startswith("...", self.i) or c == "…":
                self.fail("the list is elided with '...' (the answer must spell out every item)")
            out.append(self.value(depth + 1))

    def string(self) -> str:
        quote = self.text[self.i]
        close = {"“": "”", "‘": "’"}.get(quote, quote)
        self.i += 1
        text, n, parts = self.text, len(self.text), []
        while self.i < n:
            c = text[self.i]
            if c == close:
                self.i += 1
                return "".join(parts)
            if c == "\\" and self.i + 1 < n:
                e = text[self.i + 1]
                width = {"u": 4, "x": 2, "U": 8}.get(e)
                if width:
                    digits = text[self.i + 2 : self.i + 2 + width]
                    if len(digits) == width and all(d in "0123456789abcdefABCDEF" for d in digits):
                        code = int(digits, 16)
                        self.i += 2 + width
                        if 0xD800 <= code < 0xDC00 and text.startswith("\\u", self.i):  # a JSON surrogate pair
                            low = text[self.i + 2 : self.i + 6]
                            if len(low) == 4 and all(d in "0123456789abcdefABCDEF" for d in low):
                                low_code = int(low, 16)
                                if 0xDC00 <= low_code < 0xE000:
                                    code = 0x10000 + ((code - 0xD800) << 10) + (low_code - 0xDC00)
                                    self.i += 6
                        parts.append(chr(code) if code <= 0x10FFFF else "\ufffd")
                        continue
                parts.append(_ESCAPES.get(e, e if e in "\"'" else "\\" + e))
                self.i += 2
                continue
            parts.append(c)
            self.i += 1
        self.fail("unclosed string")


def _strict_json(text: str) -> Any:
    return json.loads(text)


def _candidates(text: str):
    """Values that might be the answer: fenced blocks first, then the whole text, then each '{' in it."""
    sources = [m.group(1) for m in _FENCE.finditer(text)]
    if "```" in text and not sources:  # an unclosed fence (the answer was cut off): read past the opening line
        sources.append(text.split("```", 1)[1].split("\n", 1)[-1])
    sources.append(text)
    for source in sources:
        try:
            yield _strict_json(source.strip())
            continue
        except (ValueError, RecursionError):
            pass
        for start in [m.start() for m in re.finditer(r"\{", source)][:MAX_CANDIDATES]:
            reader = _Reader(source)
            reader.i = start
            try:
                yield reader.value()
            except (_Malformed, RecursionError, ValueError, OverflowError):
                continue


def _find_object(text: str) -> dict:
    """The first object in `text` that looks like a narration (a position and some descriptions)."""
    fallback = None
    for value in _candidates(text):
        if isinstance(value, dict):
            keys = {str(k).strip().lower() for k in value}
            if keys & set(DESCRIPTION_KEYS) or keys & set(POSITION_KEYS):
                return value
            fallback = fallback if fallback is not None else value
    if fallback is not None:
        return fallback
    raise NarrationError(
        'no JSON object found in the answer; expected {"position": j, "descriptions": [one string per frame]}', text
    )


# --------------------------------------------------------------------------------------------------------------
# From a loose object to a Narration.
# --------------------------------------------------------------------------------------------------------------


def _get(obj: dict, names: tuple[str, ...]) -> tuple[str | None, Any]:
    lowered = {str(k).strip().lower(): k for k in obj}
    for name in names:
        if name in lowered:
            return lowered[name], obj[lowered[name]]
    return None, None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    if isinstance(value, str):
        found = _INT.findall(value)
        if len(found) == 1:
            return int(found[0])
    return None


def _as_range(value: Any) -> tuple[int, int] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_as_int(v) is not None for v in value):
        return _as_int(value[0]), _as_int(value[1])
    if isinstance(value, str):
        match = _RANGE.match(value)
        if match:
            start = int(match.group(1))
            return start, int(match.group(2)) if match.group(2) else start
    return None


def _text_of(item: dict) -> str | None:
    _, text = _get(item, TEXT_KEYS)
    return text if isinstance(text, str) else None


def _segment_of(item: Any) -> tuple[int, int, str] | None:
    """(start, end, text) if `item` names its own frames, else None."""
    if isinstance(item, str):
        match = _LABELLED.match(item)
        if match:
            start = int(match.group(1))
            return start, int(match.group(2)) if match.group(2) else start, match.group(3).strip()
        return None
    if isinstance(item, dict):
        text = _text_of(item)
        if text is None:
            return None
        _, frames = _get(item, ("frames", "frame", "range", "frame_range", "span"))
        span = _as_range(frames)
        if span is None:
            _, start = _get(item, ("start", "start_frame", "from", "begin"))
            _, end = _get(item, ("end", "end_frame", "to", "until"))
            if _as_int(start) is None:
                return None
            span = _as_int(start), _as_int(end) if _as_int(end) is not None else _as_int(start)
        return span[0], span[1], text
    return None


def _from_segments(segments: list[tuple[int, int, str]], warnings: list[str]) -> tuple[list[str], int]:
    """Spell segments out frame by frame; returns the descriptions and the offset that made them 1-based."""
    offset = 1 if min(s for s, _, _ in segments) == 0 else 0
    if offset:
        warnings.append("frames were numbered from 0; shifted to 1-based")
    spans = sorted((s + offset, e + offset, t) for s, e, t in segments)
    if any(e < s for s, e, _ in spans):
        raise NarrationError(f"a segment ends before it starts: {[(s, e) for s, e, _ in spans if e < s]}")
    last = max(e for _, e, _ in spans)
    if last > 10_000:
        raise NarrationError(f"segments reach frame {last}, beyond any video length")
    covered: list[str | None] = [None] * last
    for s, e, text in spans:
        for frame in range(s, e + 1):
            if covered[frame - 1] is not None and covered[frame - 1] != text:
                warnings.append(f"segments overlap at frame {frame}; the later one wins")
            covered[frame - 1] = text
    holes = [i + 1 for i, t in enumerate(covered) if t is None]
    if holes:
        warnings.append(f"segments leave frames {_runs(holes)} undescribed; each takes its previous frame's text")
        first = next(t for t in covered if t is not None)
        for i, t in enumerate(covered):
            covered[i] = t if t is not None else (covered[i - 1] if i else first)
    return [t for t in covered if t is not None], offset


def _runs(frames: list[int]) -> str:
    out, start = [], frames[0]
    for a, b in zip(frames, frames[1:] + [None]):
        if b != a + 1:
            out.append(f"{start}" if start == a else f"{start}-{a}")
            start = b
    return ", ".join(out)


def _descriptions(value: Any, warnings: list[str]) -> tuple[list[str], int]:
    if isinstance(value, dict):  # {"1-20": "...", "21-45": "..."}
        segments = []
        for key, text in value.items():
            span = _as_range(key)
            if span is None or not isinstance(text, str):
                raise NarrationError(f"descriptions given as a mapping, but {key!r} is not a frame or frame range")
            segments.append((*span, text))
        if not segments:
            raise NarrationError("the descriptions are empty")
        warnings.append("descriptions came as frame ranges; spelled out per frame")
        return _from_segments(segments, warnings)
    if not isinstance(value, list) or not value:
        raise NarrationError(f"descriptions must be a non-empty list of strings, got {type(value).__name__}")
    if all(isinstance(item, str) for item in value) and not all(_LABELLED.match(item) for item in value):
        return list(value), 0
    segments = [_segment_of(item) for item in value]
    if all(s is not None for s in segments):
        if any(s != e for s, e, _ in segments):
            warnings.append("descriptions came as frame ranges; spelled out per frame")
        return _from_segments(segments, warnings)
    texts = [item if isinstance(item, str) else _text_of(item) if isinstance(item, dict) else None for item in value]
    if all(t is not None for t in texts):
        return texts, 0
    bad = next(i for i, t in enumerate(texts) if t is None)
    raise NarrationError(f"description {bad + 1} is not a string: {value[bad]!r}"[:300])


def narration_from_object(obj: Any, num_frames: int, raw: str | None = None) -> Narration:
    """Validate and repair an already-decoded answer into a Narration of exactly `num_frames` frames."""
    if isinstance(obj, list) and len(obj) == 1 and isinstance(obj[0], dict):
        obj = obj[0]
    if not isinstance(obj, dict):
        raise NarrationError('the answer is not a JSON object {"position": j, "descriptions": [...]}', raw)
    warnings: list[str] = []
    try:
        desc_key, value = _get(obj, DESCRIPTION_KEYS)
        if desc_key is None:
            raise NarrationError(f"the answer has no 'descriptions' (keys: {sorted(map(str, obj))})")
        descriptions, offset = _descriptions(value, warnings)
        if any(not d.strip() for d in descriptions):
            empty = [i + 1 for i, d in enumerate(descriptions) if not d.strip()]
            raise NarrationError(f"frames {_runs(empty)} have empty descriptions")
        pos_key, raw_position = _get(obj, POSITION_KEYS)
        if pos_key is None:
            raise NarrationError("the answer has no 'position' (the frame at which the image appears)")
        position = _as_int(raw_position)
        if position is None:
            raise NarrationError(f"position {str(raw_position)[:80]!r} is not a frame number")
        if not isinstance(raw_position, int):
            warnings.append(f"position was given as {raw_position!r}; read as {position}")
        count = len(descriptions)
        if offset or position == 0:  # frames numbered from 0, or a 0-based position: both say "count from 0"
            warnings.append(f"position {position} is 0-based; shifted to {position + 1}")
            position += 1
        if position < 1 or position > count:
            clamped = min(max(position, 1), count)
            warnings.append(f"position {position} is outside frames 1..{count}; clamped to {clamped}")
            position = clamped
        narration = Narration(position=position, descriptions=descriptions)
        if count != num_frames:
            warnings.append(f"the answer described {count} frames instead of {num_frames}; resampled to {num_frames}")
            narration = narration.resample(num_frames)
    except NarrationError as err:
        raise NarrationError(err.reason, raw) from None
    except ValidationError as err:
        problems = "; ".join(e["msg"] for e in err.errors())
        raise NarrationError(f"the answer is not a valid narration: {problems}", raw) from None
    metadata = {"warnings": warnings} if warnings else {}
    return Narration(position=narration.position, descriptions=narration.descriptions, metadata=metadata)


def parse_narration(text: Any, num_frames: int) -> Narration:
    """Read a Narration of exactly `num_frames` frames from a model's answer, or raise NarrationError."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, int) or num_frames < 1:
        raise ValueError(f"num_frames must be a positive int, got {num_frames!r}")
    if not isinstance(text, str):
        raise NarrationError(f"the answer is a {type(text).__name__}, not text", None if text is None else repr(text))
    if not text.strip():
        raise NarrationError("the answer is empty", text)
    try:
        obj = _find_object(text)
    except NarrationError:
        raise
    except Exception as err:  # the contract: nothing but NarrationError escapes, even from a reader bug
        raise NarrationError(f"the answer could not be read ({type(err).__name__}: {err})", text) from None
    try:
        return narration_from_object(obj, num_frames, raw=text)
    except NarrationError:
        raise
    except Exception as err:
        raise NarrationError(f"the answer could not be read ({type(err).__name__}: {err})", text) from None


_LEADS = re.compile(
    r"^\s*(?:(?:here(?:'s| is) )?(?:the |a |an )?(?:rewritten |extended |final )?(?:prompt|caption|answer)\s*:\s*)",
    re.IGNORECASE,
)


def parse_text(text: Any, what: str = "answer") -> str:
    """One plain text (a rewritten prompt, a caption) from a model's answer: no fences, quotes or 'Prompt:' lead."""
    if not isinstance(text, str):
        raise NarrationError(f"the {what} is a {type(text).__name__}, not text")
    body = text.strip()
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1).strip()
    body = _LEADS.sub("", body).strip()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    if not body:
        raise NarrationError(f"the {what} is empty", text)
    return body
