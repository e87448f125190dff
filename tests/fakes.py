"""The stand-ins tests share: scripted stories, a narrator, and a chat backend, with no network and no weights.

Import them from here (`from fakes import ...`), not from a conftest: every tests/ folder has a conftest.py, so
`from conftest import X` reads whichever folder's conftest pytest imported last.
"""

from reasondiff import Narration

# A 17-frame story for the pipeline and the CLI (the mini model's length) and a 9-frame one for the narrator's tests.
VASE_STORY = Narration.from_segments(
    17, [(1, 4, "an intact vase"), (5, 10, "a cat enters and knocks the vase"), (11, 17, "broken vase on the floor")]
)
STORY = Narration.from_segments(
    9, [(1, 2, "an intact vase on a table"), (3, 6, "a cat enters and knocks the vase"), (7, 9, "a broken vase on the floor")]
)


class ScriptedNarrator:
    """Answers from a script and records its calls, as a VisionNarrator backend would answer from an MLLM."""

    def __init__(self, narration=VASE_STORY, rewritten="a cat plays in the room and breaks a vase"):
        self.narration, self.rewritten, self.calls = narration, rewritten, []

    def narrate(self, image, prompt, num_frames):
        self.calls.append(("narrate", prompt, num_frames))
        return self.narration

    def rewrite(self, image, prompt):
        self.calls.append(("rewrite", prompt))
        return self.rewritten


class ScriptedChat:
    """A chat backend (a stand-in for an MLLM server): answers from `answers` in turn, or with one text every time,
    and keeps every conversation it was sent."""

    def __init__(self, answers, cache_id="scripted"):
        self.answers = answers if isinstance(answers, str) else list(answers)
        self.cache_id, self.conversations = cache_id, []

    def chat(self, conversation, *, json_schema=None):
        self.conversations.append(conversation)
        return self.answers if isinstance(self.answers, str) else self.answers.pop(0)

    def chat_batch(self, conversations, *, json_schema=None):
        return [self.chat(c) for c in conversations]

    @classmethod
    def plugin(cls, target, answers=()):
        """As a registry factory (`register_backend(name, ScriptedChat.plugin)`): `NAME:TARGET` names the cache."""
        return cls(answers, cache_id=f"scripted:{target}")
