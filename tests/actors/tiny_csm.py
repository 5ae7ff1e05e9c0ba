"""A tiny, randomly initialised Sesame CSM with its processor, saved as a real model directory.

Same architecture as CSM-1B (Llama backbone, depth decoder, Mimi codec with the
real strides, so 80 ms frames at 24 kHz), with every width and depth cut down:
~140k parameters, fast on a CPU. Its audio is noise; what it exercises is the
loading, prompting, streaming and cancellation code that the real model runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>", "<|AUDIO|>", "<|audio_eos|>", "<pad>"]
WORDS = "[ 0 ] hello there how can I help you today we open at noon every day kitchen closes ten"


def save_tiny_csm(path: Path) -> Path:
    import torch
    import transformers
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    hf: Any = transformers
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=[*SPECIAL, "[UNK]"])
    tokenizer.train_from_iterator([WORDS], trainer)
    fast = hf.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        pad_token="<pad>",
        unk_token="[UNK]",
    )
    ids = {token: fast.convert_tokens_to_ids(token) for token in SPECIAL}
    codec = hf.MimiConfig(
        hidden_size=16,
        num_filters=4,
        num_residual_layers=1,
        codebook_size=64,
        codebook_dim=16,
        vector_quantization_hidden_dimension=16,
        num_quantizers=4,
        num_semantic_quantizers=1,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=32,
        sliding_window=16,
        upsample_groups=16,
    )
    depth = hf.CsmDepthDecoderConfig(
        num_codebooks=4,
        backbone_hidden_size=32,
        vocab_size=67,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=5,
    )
    config = hf.CsmConfig(
        num_codebooks=4,
        vocab_size=67,
        text_vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        pad_token_id=ids["<pad>"],
        codebook_pad_token_id=66,
        codebook_eos_token_id=0,
        bos_token_id=ids["<|begin_of_text|>"],
        audio_token_id=ids["<|AUDIO|>"],
        audio_eos_token_id=ids["<|audio_eos|>"],
        depth_decoder_config=depth.to_dict(),
        codec_config=codec.to_dict(),
    )
    torch.manual_seed(0)
    hf.CsmForConditionalGeneration(config).save_pretrained(path)
    feature_extractor = hf.EncodecFeatureExtractor(feature_size=1, sampling_rate=24000)
    hf.CsmProcessor(feature_extractor, fast).save_pretrained(path)
    return path
