"""A tiny, seeded, randomly initialised CLIP (transformers' `CLIPModel` + `CLIPProcessor`), built offline.

It runs the real code path of openai/clip-vit-large-patch14 (same classes, processor, tokenizer type,
77-token limit) at toy sizes, for tests and for `reasondiff eval run --clip tiny`. Its scores are those of an
untrained model: finite cosines, not a judgement of the video.
"""

from __future__ import annotations

import importlib.util

import torch

from ..models.tiny_wan import VOCABULARY

IMAGE_SIZE = 32


def clip_tokenizer():
    """A CLIP BPE tokenizer (`CLIPTokenizer`, byte-level, `</w>` word ends, 77 tokens) whose merges are learnt
    from our small vocabulary, so common words are single tokens and any other text falls back to bytes."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    vocab.update({c + "</w>": len(alphabet) + i for i, c in enumerate(alphabet)})
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    base = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    corpus = [" ".join(VOCABULARY)] * 4 + VOCABULARY
    tok = base.train_new_from_iterator(corpus, vocab_size=len(vocab) + 600)
    tok.model_max_length = 77
    return tok


def image_processor():
    """CLIP preprocessing to 32x32 (resize shortest side, centre crop, CLIP's mean/std); the PIL class when
    torchvision is missing, as in `reasondiff.models.tiny_wan`."""
    if importlib.util.find_spec("torchvision") is None:
        try:
            from transformers import CLIPImageProcessorPil as processor_class
        except ImportError:  # transformers 4
            from transformers import CLIPImageProcessor as processor_class
    else:
        from transformers import CLIPImageProcessor as processor_class
    return processor_class(size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})


def clip_processor():
    from transformers import CLIPProcessor

    return CLIPProcessor(image_processor=image_processor(), tokenizer=clip_tokenizer())


def clip(seed: int = 0):
    """(CLIPModel, CLIPProcessor): 2-layer text and vision towers, width 32, projection 16, 8x8 patches."""
    from transformers import CLIPConfig, CLIPModel

    processor = clip_processor()
    tok = processor.tokenizer
    config = CLIPConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=77,
                         bos_token_id=tok.convert_tokens_to_ids("<|startoftext|>"),
                         eos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                         pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>")),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=IMAGE_SIZE, patch_size=8),
        projection_dim=16,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config).eval()
    return model, processor


def clip_score(seed: int = 0, **kwargs):
    """A `CLIPScore` over the tiny CLIP."""
    from .clip_score import CLIPScore

    model, processor = clip(seed)
    return CLIPScore(model, processor, **kwargs)
