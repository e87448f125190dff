"""Narrator backends: an OpenAI-compatible server, a local transformers VLM, or your own via the registry."""

from .base import ChatBackend, Conversation, Message

__all__ = ["ChatBackend", "Conversation", "Message"]
