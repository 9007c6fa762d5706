"""Tiny random-weight models for tests: the real architectures, shrunk until they run in milliseconds on CPU.

No test downloads weights. Tests build these models, save them to a temporary file and go through SegFill's
real loading code (``segfill.sam.loading.load_sam``), which derives the architecture from the state dict's
shapes, so the tiny SAM loads through exactly the same path as an official vit_b/vit_l/vit_h file.

Public helpers:

- ``build_tiny_sam(seed=0, img_size=TINY_SAM_IMG_SIZE) -> segment_anything.modeling.Sam`` (eval mode, CPU)
- ``save_tiny_sam(path, seed=0, img_size=TINY_SAM_IMG_SIZE) -> pathlib.Path`` (a plain state dict, torch.save)
- ``official_shaped_state_dict(arch) -> dict`` a state dict holding only the tensors that identification reads,
  with the SHAPES of an official "vit_b" / "vit_l" / "vit_h" file but (almost) no data: every tensor is a
  zero-stride view of a single element, so a saved file is a few kilobytes.
- ``save_official_shaped(path, arch) -> pathlib.Path``
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

TINY_SAM_IMG_SIZE = 128
TINY_SAM_PATCH_SIZE = 16
TINY_SAM_EMBED_DIM = 32
TINY_SAM_DEPTH = 2
TINY_SAM_NUM_HEADS = 2
TINY_SAM_WINDOW_SIZE = 4
TINY_SAM_GLOBAL_ATTN_INDEXES = (1,)
TINY_SAM_PROMPT_DIM = 32
# SAM's mask-decoder head count cannot be read from weight shapes; SegFill's loader assumes SAM's fixed 8.
TINY_SAM_DECODER_HEADS = 8


def build_tiny_sam(seed: int = 0, img_size: int = TINY_SAM_IMG_SIZE):
    """A segment-anything ``Sam`` with random weights: 2 encoder blocks (one windowed, one global), width 32.

    It works with ``SamPredictor`` and ``SamAutomaticMaskGenerator`` like an official model; its masks are
    meaningless but deterministic for a given ``seed``.
    """
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    embedding_size = img_size // TINY_SAM_PATCH_SIZE
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=TINY_SAM_DEPTH,
                embed_dim=TINY_SAM_EMBED_DIM,
                img_size=img_size,
                mlp_ratio=4,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=TINY_SAM_NUM_HEADS,
                patch_size=TINY_SAM_PATCH_SIZE,
                qkv_bias=True,
                use_rel_pos=True,
                global_attn_indexes=TINY_SAM_GLOBAL_ATTN_INDEXES,
                window_size=TINY_SAM_WINDOW_SIZE,
                out_chans=TINY_SAM_PROMPT_DIM,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=TINY_SAM_PROMPT_DIM,
                image_embedding_size=(embedding_size, embedding_size),
                input_image_size=(img_size, img_size),
                mask_in_chans=16,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=1,
                    embedding_dim=TINY_SAM_PROMPT_DIM,
                    mlp_dim=64,
                    num_heads=TINY_SAM_DECODER_HEADS,
                ),
                transformer_dim=TINY_SAM_PROMPT_DIM,
                iou_head_depth=3,
                iou_head_hidden_dim=32,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
        # SAM zero-initialises the relative position tables; random ones make the test model less degenerate
        # and prove that loading really copies them.
        with torch.no_grad():
            for name, param in sam.named_parameters():
                if "rel_pos" in name:
                    param.normal_(0.0, 0.02)
    finally:
        torch.random.set_rng_state(generator_state)
    sam.eval()
    return sam


def save_tiny_sam(path: str | Path, seed: int = 0, img_size: int = TINY_SAM_IMG_SIZE) -> Path:
    """Save ``build_tiny_sam(seed, img_size)`` as a plain state dict (the format of the official .pth files)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(build_tiny_sam(seed=seed, img_size=img_size).state_dict(), path)
    return path


# encoder width, depth, heads, global attention blocks of the official SAM image encoders
OFFICIAL_SAM_SHAPES = {
    "vit_b": (768, 12, 12, (2, 5, 8, 11)),
    "vit_l": (1024, 24, 16, (5, 11, 17, 23)),
    "vit_h": (1280, 32, 16, (7, 15, 23, 31)),
}


def official_shaped_state_dict(arch: str) -> dict:
    """Shape-only stand-in for an official SAM checkpoint: the encoder keys identification looks at.

    Each tensor is ``torch.zeros(1).expand(shape)``: it has the official shape, but torch.save stores one
    element for it, so the file stays tiny. It is NOT loadable into a model (keys are missing on purpose).
    """
    import torch

    embed_dim, depth, num_heads, global_indexes = OFFICIAL_SAM_SHAPES[arch]
    head_dim = embed_dim // num_heads
    grid = 1024 // 16

    def shaped(*shape: int):
        return torch.zeros(1).expand(*shape)

    state = {
        "image_encoder.pos_embed": shaped(1, grid, grid, embed_dim),
        "image_encoder.patch_embed.proj.weight": shaped(embed_dim, 3, 16, 16),
        "image_encoder.patch_embed.proj.bias": shaped(embed_dim),
        "image_encoder.neck.0.weight": shaped(256, embed_dim, 1, 1),
        "prompt_encoder.no_mask_embed.weight": shaped(1, 256),
        "mask_decoder.iou_token.weight": shaped(1, 256),
    }
    for index in range(depth):
        rel = 2 * grid - 1 if index in global_indexes else 2 * 14 - 1
        state[f"image_encoder.blocks.{index}.attn.qkv.weight"] = shaped(3 * embed_dim, embed_dim)
        state[f"image_encoder.blocks.{index}.attn.rel_pos_h"] = shaped(rel, head_dim)
        state[f"image_encoder.blocks.{index}.attn.rel_pos_w"] = shaped(rel, head_dim)
    return state


def save_official_shaped(path: str | Path, arch: str) -> Path:
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(official_shaped_state_dict(arch), path)
    return path


def zero_state_dict_like(state_dict: dict) -> dict:
    """The same keys, shapes and dtypes, all zeros, stored as one element each (``expand``): a full-size
    architecture (an official vit_b, a SAM-HQ model) saved in a few kilobytes, loadable with strict checks."""
    import torch

    zeros = {}
    for key, value in state_dict.items():
        scalar = torch.zeros((), dtype=value.dtype)
        zeros[key] = scalar.expand(value.shape) if len(value.shape) else scalar.clone()
    return zeros
