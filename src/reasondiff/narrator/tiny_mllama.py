"""A tiny, randomly initialised LLaMA-3.2-Vision (Mllama) with a locally built processor, for offline tests.

It runs the transformers backend's real path (AutoProcessor, chat template, image tiles, cross-attention,
`generate`) in well under a second, and answers noise: it is untrained. Mllama rather than Qwen2-VL because
Qwen2-VL's processor requires a video processor, which needs torchvision; Mllama's needs only PIL. It is also
the architecture the paper captions its training data with.
"""

from __future__ import annotations

import torch

SPECIAL_TOKENS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|image|>",
    "<|python_tag|>", "<|finetune_right_pad_id|>",
]
# Llama 3.2 Vision's turn layout, without the date header of the real template.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|image|>{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CORPUS = [
    "You are given an unpaired image and text prompt. Infer a coherent scene that connects both inputs.",
    '{"position": 81, "descriptions": ["An intact vase stands on the floor", "A cat enters the room"]}',
    "Describe this video frame in one sentence.",
]


def vlm_processor():
    """A byte-level BPE tokenizer trained on a few lines (no download) inside Mllama's processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import MllamaProcessor, PreTrainedTokenizerFast
    from transformers.models.mllama import MllamaImageProcessorPil

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>"
    )
    image_processor = MllamaImageProcessorPil(size={"height": 28, "width": 28}, max_image_tiles=4)
    return MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)


def vlm(seed: int = 0):
    """(model, processor): a 2-layer Mllama (one cross-attention layer), 28-pixel tiles, ~0.1 M parameters."""
    from transformers import MllamaConfig, MllamaForConditionalGeneration

    processor = vlm_processor()
    ids = processor.tokenizer.convert_tokens_to_ids
    config = MllamaConfig(
        vision_config=dict(
            hidden_size=32, num_hidden_layers=2, num_global_layers=1, attention_heads=2, intermediate_size=64,
            vision_output_dim=64, image_size=28, patch_size=14, max_num_tiles=4, intermediate_layers_indices=[0],
        ),
        text_config=dict(
            vocab_size=len(processor.tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=1, intermediate_size=64, cross_attention_layers=[1], max_position_embeddings=4096,
            bos_token_id=ids("<|begin_of_text|>"), eos_token_id=ids("<|eot_id|>"),
            pad_token_id=ids("<|finetune_right_pad_id|>"),
        ),
        image_token_index=ids("<|image|>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MllamaForConditionalGeneration(config).eval()
    return model, processor
