"""Tiny random-weight open-vocabulary detectors, built from their transformers configs, saved as real folders.

Each ``save_tiny_*(folder, seed)`` writes what a hub repository holds — ``config.json``, safetensors weights,
the image processor's and tokenizer's files (with a small vocabulary written here) — so SegFill loads it
through exactly the code that loads ``IDEA-Research/grounding-dino-tiny`` or ``google/owlvit-base-patch32``.
Weights are seeded: the same seed gives the same boxes.

- GroundingDINO (transformers >= 4.40): a 1-stage Swin backbone of width 8, a 1-layer BERT, 6 queries.
- OWL-ViT (any transformers SegFill supports, 4.30.2 included) and OWLv2 (>= 4.35): 1-layer CLIP towers.
"""

from __future__ import annotations

import json
from pathlib import Path

WORDS = ("a", "an", "the", "red", "blue", "ball", "dog", "cat", "person", "cup", "sky", "tree", "car")


def _seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def _bert_vocab(folder: Path) -> Path:
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", *WORDS, *"abcdefghijklmnopqrstuvwxyz"]
    tokens += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    path = folder / "vocab-source.txt"
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n", encoding="utf-8")
    return path


def _clip_vocab(folder: Path) -> tuple[Path, Path]:
    """A byte-level BPE vocabulary in CLIP's format: single letters, letters ending a word, whole words."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["!", ".", ","] + list(letters) + [c + "</w>" for c in letters] + [".</w>", ",</w>"]
    merges = []
    for word in WORDS:  # merge each word letter by letter, so whole words become one token
        current = word[0]
        for index, char in enumerate(word[1:], start=1):
            last = index == len(word) - 1
            right = char + "</w>" if last else char
            merges.append(f"{current} {right}")
            current = current + right
            tokens.append(current)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    vocab_path = folder / "vocab-source.json"
    merges_path = folder / "merges-source.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_path, merges_path


def _finish(folder: Path, model, processor) -> Path:
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    for leftover in folder.glob("*-source.*"):
        leftover.unlink()
    return folder


def save_tiny_grounding_dino(folder: str | Path, seed: int = 0, num_queries: int = 6) -> Path:
    from transformers import (
        BertTokenizerFast,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = GroundingDinoConfig(
        backbone_config={"model_type": "swin", "embed_dim": 8, "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
                         "window_size": 2, "image_size": 64, "out_indices": [2, 3, 4]},
        text_config={"model_type": "bert", "vocab_size": 64, "hidden_size": 16, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64},
        num_queries=num_queries, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, d_model=32, encoder_n_points=1, decoder_n_points=1,
        max_text_len=64, disable_custom_kernels=True,
    )
    _seeded(seed)
    model = GroundingDinoForObjectDetection(config)
    tokenizer = BertTokenizerFast(vocab_file=str(_bert_vocab(folder)), model_max_length=64)
    # large enough that the smallest feature map (the extra level) keeps more than one pixel on square images
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 96, "longest_edge": 128})
    return _finish(folder, model, GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer))


def _clip_parts(folder: Path):
    from transformers import CLIPTokenizer

    vocab, merges = _clip_vocab(folder)
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=16)
    text = {"vocab_size": len(tokenizer), "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id}
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 32, "patch_size": 8}
    return tokenizer, text, vision


def save_tiny_owlvit(folder: str | Path, seed: int = 0) -> Path:
    from transformers import OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, text, vision = _clip_parts(folder)
    config = OwlViTConfig(text_config=text, vision_config=vision, projection_dim=16)
    _seeded(seed)
    model = OwlViTForObjectDetection(config)
    image_processor = OwlViTImageProcessor(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
    return _finish(folder, model, OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer))


def save_tiny_owlv2(folder: str | Path, seed: int = 0) -> Path:
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer, text, vision = _clip_parts(folder)
    config = Owlv2Config(text_config=text, vision_config=vision, projection_dim=16)
    _seeded(seed)
    model = Owlv2ForObjectDetection(config)
    image_processor = Owlv2ImageProcessor(size={"height": 32, "width": 32})
    return _finish(folder, model, Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer))
