"""Random splits for ThinkDiff's training targets.

ThinkDiff-LVLM (§3.3, Eq. 2, "random masked training"): the LVLM's generated tokens {y_i} and their
features {x_i} correspond one to one, so an aligner trained to decode x_i back into y_i can learn a
trivial token-by-token mapping ("shortcut mapping"). Splitting the sequence at a random point and
asking the decoder to predict the *second* part from the *first* part's features breaks that
correspondence: no token is ever both input and target.

ThinkDiff-CLIP (§3.4, Eq. 4): the caption is split at a random word; the first part goes through the
T5 encoder next to the aligned image tokens, the decoder predicts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TokenSplit:
    """Input positions [0, k) and target positions [k, n) of an n-token generated sequence."""

    k: int
    n: int

    @property
    def input_positions(self) -> range:
        return range(self.k)

    @property
    def target_positions(self) -> range:
        return range(self.k, self.n)


def split_tokens(n: int, generator: torch.Generator) -> TokenSplit:
    """A uniformly random split point k in [1, n-1]: at least one input feature and one target token."""
    if n < 2:
        raise ValueError(f"a sequence of {n} token(s) cannot be split into input and target")
    k = int(torch.randint(1, n, (1,), generator=generator))
    return TokenSplit(k=k, n=n)


def split_caption(caption: str, generator: torch.Generator) -> tuple[str, str]:
    """Split a caption at a uniformly random word boundary j in [0, W-1]: (words[:j], words[j:]).

    The prefix may be empty (the decoder then predicts the whole caption from the image alone, which
    is how ThinkDiff-CLIP is used with an image and no text); the target never is.
    """
    words = caption.split()
    if not words:
        raise ValueError("cannot split an empty caption")
    j = int(torch.randint(0, len(words), (1,), generator=generator))
    return " ".join(words[:j]), " ".join(words[j:])
