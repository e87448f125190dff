"""What a narrator backend is: something that answers chat conversations with text.

Conversations use one neutral form that every backend translates for its model:
`[{"role": "system" | "user" | "assistant", "content": [{"type": "text", "text": str} |
{"type": "image", "image": PIL.Image}]}]`. The narrator builds them; backends never see prompts logic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

Message = dict[str, Any]
Conversation = list[Message]


@runtime_checkable
class ChatBackend(Protocol):
    """The one thing VisionNarrator needs from a model.

    `cache_id` names the model *and* where it runs (and any setting that changes answers), since it goes into
    every cache key: two servers answering for "default" are two models.
    """

    cache_id: str

    def chat(self, conversation: Conversation, *, json_schema: dict[str, Any] | None = None) -> str:
        """Answer the conversation; `json_schema` asks for structured output where the backend can enforce it."""
        ...

    def chat_batch(self, conversations: list[Conversation], *, json_schema: dict[str, Any] | None = None) -> list[str]:
        """Answer several independent conversations (local models batch them; servers answer one by one)."""
        ...


@runtime_checkable
class NarratingBackend(Protocol):
    """A backend that plays the narrator's three roles itself, with no model to talk to (the SynthWorld world's
    rules): VisionNarrator calls these instead of building conversations and parsing text, and still applies
    its request checks, its cache and its provenance metadata."""

    cache_id: str

    def narrate(self, image: Any, prompt: str, num_frames: int) -> Any:
        """The script (a `Narration`) for a PIL image and a stripped prompt."""
        ...

    def rewrite(self, image: Any, prompt: str) -> str:
        ...

    def caption(self, frames: list[Any]) -> list[str]:
        """One caption per PIL image."""
        ...


class SequentialBatchMixin:
    """`chat_batch` as a loop, for backends whose server does the batching."""

    def chat_batch(self, conversations, *, json_schema=None):
        return [self.chat(c, json_schema=json_schema) for c in conversations]


def translate_parts(message: Message, image_part: Callable[[Any], dict[str, Any]]) -> list[dict[str, Any]]:
    """A message's content in a model's own part format: text parts as they are, images through `image_part`."""
    parts = []
    for part in message["content"]:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image":
            parts.append(image_part(part["image"]))
        else:
            raise ValueError(f"unknown message part type {part['type']!r}")
    return parts


def text_of(message: Message) -> str:
    return "\n".join(part["text"] for part in message["content"] if part["type"] == "text")


def fold_system(conversation: Conversation) -> Conversation:
    """Move a leading system message into the first user turn, for chat templates that reject the system role."""
    if not conversation or conversation[0]["role"] != "system" or len(conversation) < 2:
        return conversation
    system, first, rest = conversation[0], conversation[1], conversation[2:]
    merged = {"role": first["role"], "content": [{"type": "text", "text": text_of(system) + "\n\n"}, *first["content"]]}
    return [merged, *rest]
