"""What the narrator says to the MLLM.

The narration instruction is the paper's (§3.2, quoted there as the method's specification), with the frame
count filled in. The paper adds in-context examples "to stabilise the results" without printing them; ours are
our own, short (9 and 13 frames, so they cost few tokens), and show both an image at the end of the story and
an image at its start, so the model does not learn that the image always goes last. The rewrite and caption
instructions are ours.

Change INSTRUCTION_VERSION whenever any text here changes: it is part of every cache key, so old answers to
old instructions are never served for new ones.
"""

from __future__ import annotations

import json
from typing import Any

INSTRUCTION_VERSION = "narrate-v1"

# The three lines quoted in §3.2 of the paper, with f the requested frame count.
NARRATE_INSTRUCTION = (
    "You are given an unpaired image and text prompt. Your task is to infer a coherent scene that logically "
    "connects both inputs, even if they appear unrelated.\n"
    "Estimate the most likely position of the image within an {f}-frame video. Then, generate descriptions with "
    "rich information for each of the {f} frames that together form a consistent video script.\n"
    'Respond strictly in the following format: {{"position": j, "descriptions": [description for frame 1, ..., '
    'description for frame {f}]}}. Do not include any additional explanations, comments, or formatting.'
)

NARRATE_REQUEST = "Text prompt: {prompt}\nNumber of frames: {f}\nThe image is attached."

# The in-context examples cannot carry pixels cheaply, so each describes its image in words.
EXAMPLE_REQUEST = "Text prompt: {prompt}\nNumber of frames: {f}\nThe image (described in words for this example): {image}"

EXAMPLES: list[dict[str, Any]] = [
    {
        "prompt": "A cat plays in the room",
        "image": "a blue vase lies broken in pieces on a wooden floor",
        "position": 9,
        "segments": [
            (1, 2, "An intact blue vase stands on a low table in a quiet, sunlit living room"),
            (3, 5, "A grey cat enters the room and leaps playfully onto the table beside the blue vase"),
            (6, 6, "The cat's tail knocks the blue vase, which tips over the edge of the table"),
            (7, 8, "The vase shatters on the wooden floor as the startled cat runs out of the room"),
            (9, 9, "The blue vase lies broken in pieces on the wooden floor of the empty room"),
        ],
    },
    {
        "prompt": "The kite gets stuck in a tall tree",
        "image": "a child on a grassy hill holds a red kite, ready to launch it",
        "position": 1,
        "segments": [
            (1, 2, "A child stands on a grassy hill holding a red kite, ready to launch it into the wind"),
            (3, 5, "The child runs downhill and the red kite lifts off, climbing into the blue sky"),
            (6, 8, "A gust pushes the kite sideways toward a tall oak tree at the bottom of the hill"),
            (9, 10, "The kite's string catches on the upper branches of the oak tree"),
            (11, 13, "The red kite hangs stuck high in the tree while the child looks up from below"),
        ],
    },
]

REWRITE_INSTRUCTION = (
    "You write prompts for an image-to-video model that starts its video from the given image. You are given the "
    "image and a short text prompt that may describe a different moment than the image shows. Write one detailed "
    "prompt, two to four sentences in the present tense, that describes how the video unfolds from the image so "
    "that it ends up consistent with the text prompt: the subjects, their actions in order, the setting and the "
    "camera. Reply with the prompt only, without quotes, labels or explanations."
)
REWRITE_REQUEST = "Text prompt: {prompt}\nThe image is attached."

CAPTION_INSTRUCTION = (
    "Describe this video frame in one sentence of about 20 words: the main subjects, what they are doing, and the "
    "setting. Reply with the sentence only."
)


def narrate_instruction(num_frames: int) -> str:
    return NARRATE_INSTRUCTION.format(f=num_frames)


def example_answer(example: dict[str, Any]) -> str:
    """The example's answer exactly in the format the instruction asks for: one string per frame."""
    descriptions = [text for start, end, text in example["segments"] for _ in range(start, end + 1)]
    return json.dumps({"position": example["position"], "descriptions": descriptions}, ensure_ascii=False)


def example_frames(example: dict[str, Any]) -> int:
    return example["segments"][-1][1]


def narration_schema() -> dict[str, Any]:
    """JSON schema for servers with structured output (OpenAI json_schema, vLLM/SGLang guided decoding).

    No minItems/maxItems: OpenAI's strict mode rejects them, and the parser resamples a miscounted answer anyway.
    """
    return {
        "type": "object",
        "properties": {
            "position": {"type": "integer", "description": "1-based frame at which the image appears"},
            "descriptions": {"type": "array", "items": {"type": "string"}, "description": "one per frame"},
        },
        "required": ["position", "descriptions"],
        "additionalProperties": False,
    }


def retry_feedback(error: str, num_frames: int) -> str:
    """What the model hears after an unusable answer: the validation error, then the format again."""
    return (
        f"Your answer could not be used: {error}\n"
        f"Answer again with a position between 1 and {num_frames} and exactly {num_frames} descriptions, strictly as "
        '{"position": j, "descriptions": ["...", ...]} and nothing else.'
    )
