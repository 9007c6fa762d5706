"""Load a Segment Anything checkpoint safely and build the matching model.

Files are read by SegFill's restricted reader (:mod:`segfill.sam.safe_load`), never by ``torch.load`` or
``torch.jit.load``: TorchScript archives and pickled objects are refused before anything in them runs, and
the family packages (SAM-HQ, MobileSAM, SAM 2) only ever receive tensors, never a file path. The original
SAM architecture is derived from the tensor shapes (:func:`derive_sam_config`): the official vit_b / vit_l /
vit_h configurations come out exactly, and any other SAM-style ViT (for example the tiny test models) loads
through the same code. SAM-HQ, MobileSAM and SAM 2 use their own pip packages, imported lazily.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from segfill.errors import MissingDependencyError, ModelError
from segfill.progress import ProgressCallback, ShouldStop, check, report
from segfill.sam.precision import check_precision
from segfill.sam.registry import (
    CUSTOM_ARCH,
    FAMILY_PACKAGES,
    SAM_VIT_SHAPES,
    Identification,
    ModelSpec,
    classify_shapes,
    family_arch_label,
    family_install_hint,
    file_fingerprint,
    parse_model_type,
    read_state_dict,
    spec_by_filename,
    tensor_shapes,
    unwrap_state_dict,
)

# SAM's mask-decoder transformer splits its width into 8 heads in every released model; the head count leaves
# no trace in the weight shapes, so it is the one number the shape-derived config assumes.
SAM_DECODER_HEADS = 8
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass
class LoadedSam:
    """A model ready for prediction.

    ``model`` implements segment-anything's ``Sam`` interface for the families "sam", "sam_hq" and
    "mobile_sam"; for "sam2" it is a ``sam2.modeling.sam2_base.SAM2Base`` (use ``sam2.SAM2ImagePredictor``).
    ``model_key`` is a stable id of the file's content, for embedding cache keys.
    """

    model: Any = field(repr=False)
    arch: str
    family: str
    path: Path
    model_key: str
    device: str = "cpu"
    spec: ModelSpec | None = None
    identified_by: str = "shapes"
    image_size: int = 1024
    #: encoder precision setting ("auto", "fp32", "bf16"); segfill.sam.precision.model_precision resolves it
    precision: str = "auto"

    @property
    def label(self) -> str:
        return family_arch_label(self.family, self.arch)

    @property
    def embedding_key(self) -> str:
        """``model_key`` plus the encoder precision in force (bf16 embeddings differ slightly from fp32)."""
        from segfill.sam.precision import model_precision

        resolved = model_precision(self)
        return self.model_key if resolved == "fp32" else f"{self.model_key}@{resolved}"

    def to(self, device: str) -> LoadedSam:
        self.model.to(device)
        self.device = device
        return self


@dataclass(frozen=True)
class SamConfig:
    """Everything ``segment_anything.modeling`` needs to build a Sam; derived from a state dict's shapes."""

    img_size: int
    patch_size: int
    in_chans: int
    embed_dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    qkv_bias: bool
    use_abs_pos: bool
    use_rel_pos: bool
    window_size: int
    global_attn_indexes: tuple[int, ...]
    out_chans: int
    prompt_embed_dim: int
    mask_in_chans: int
    decoder_depth: int
    decoder_mlp_dim: int
    decoder_heads: int
    attention_downsample_rate: int
    num_multimask_outputs: int
    iou_head_depth: int
    iou_head_hidden_dim: int
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def arch(self) -> str:
        if (self.img_size, self.patch_size, self.window_size) != (1024, 16, 14):
            return CUSTOM_ARCH
        return SAM_VIT_SHAPES.get((self.embed_dim, self.depth), CUSTOM_ARCH)


def _need(shapes: Mapping[str, tuple[int, ...]], key: str, source: str) -> tuple[int, ...]:
    shape = shapes.get(key)
    if shape is None:
        raise ModelError(f"{source} is not a complete SAM checkpoint: the tensor '{key}' is missing.")
    return shape


def _indexes(shapes: Mapping[str, tuple[int, ...]], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for key in shapes if (m := pattern.match(key))})


def derive_sam_config(shapes: Mapping[str, tuple[int, ...]], source: str = "the file") -> SamConfig:
    """Read a SAM ViT configuration off the tensor shapes (the ViT-Det style encoder of segment-anything).

    The encoder's head count comes from the relative-position tables (``rel_pos_h`` is ``(2·n - 1, head_dim)``
    with n = the window size, or the token grid size for global-attention blocks).
    """
    patch = _need(shapes, "image_encoder.patch_embed.proj.weight", source)
    embed_dim, in_chans, patch_size = patch[0], patch[1], patch[2]
    pos = shapes.get("image_encoder.pos_embed")
    blocks = _indexes(shapes, "image_encoder.blocks.")
    if not blocks:
        raise ModelError(f"{source} is not a complete SAM checkpoint: it has no image encoder blocks.")
    depth = len(blocks)
    if pos is not None:
        grid = pos[1]
    else:  # without absolute positions the global blocks' tables still tell the token grid
        grid = max((_need(shapes, f"image_encoder.blocks.{i}.attn.rel_pos_h", source)[0] + 1) // 2 for i in blocks)
    img_size = grid * patch_size
    rel0 = shapes.get("image_encoder.blocks.0.attn.rel_pos_h")
    use_rel_pos = rel0 is not None
    if not use_rel_pos:
        raise ModelError(f"{source} has no relative position tables, so its attention head count cannot be "
                         "derived; pass a model type for an official SAM model.")
    head_dim = rel0[1]
    if head_dim <= 0 or embed_dim % head_dim:
        raise ModelError(f"{source} has inconsistent attention shapes (width {embed_dim}, head size {head_dim}).")
    global_indexes, window_sizes = [], set()
    for index in blocks:
        span = (_need(shapes, f"image_encoder.blocks.{index}.attn.rel_pos_h", source)[0] + 1) // 2
        if span == grid:
            global_indexes.append(index)
        else:
            window_sizes.add(span)
    if len(window_sizes) > 1:
        raise ModelError(f"{source} mixes several attention window sizes ({sorted(window_sizes)}).")
    window_size = window_sizes.pop() if window_sizes else 0
    if window_size == 0:
        global_indexes = []  # window_size 0 already means global attention in every block
    lin1 = _need(shapes, f"image_encoder.blocks.{blocks[0]}.mlp.lin1.weight", source)
    out_chans = _need(shapes, "image_encoder.neck.0.weight", source)[0]

    prompt_dim = _need(shapes, "prompt_encoder.no_mask_embed.weight", source)[1]
    mask_in_chans = _need(shapes, "prompt_encoder.mask_downscaling.3.weight", source)[0]

    transformer_dim = _need(shapes, "mask_decoder.iou_token.weight", source)[1]
    decoder_layers = _indexes(shapes, "mask_decoder.transformer.layers.")
    if not decoder_layers:
        raise ModelError(f"{source} is not a complete SAM checkpoint: its mask decoder has no layers.")
    decoder_mlp = _need(shapes, "mask_decoder.transformer.layers.0.mlp.lin1.weight", source)[0]
    cross_q = _need(shapes, "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight", source)[0]
    iou_layers = _indexes(shapes, "mask_decoder.iou_prediction_head.layers.")
    iou_hidden = _need(shapes, "mask_decoder.iou_prediction_head.layers.0.weight", source)[0]
    mask_tokens = _need(shapes, "mask_decoder.mask_tokens.weight", source)[0]
    return SamConfig(
        img_size=img_size,
        patch_size=patch_size,
        in_chans=in_chans,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // head_dim,
        mlp_ratio=lin1[0] / embed_dim,
        qkv_bias=f"image_encoder.blocks.{blocks[0]}.attn.qkv.bias" in shapes,
        use_abs_pos=pos is not None,
        use_rel_pos=use_rel_pos,
        window_size=window_size,
        global_attn_indexes=tuple(global_indexes),
        out_chans=out_chans,
        prompt_embed_dim=prompt_dim,
        mask_in_chans=mask_in_chans,
        decoder_depth=len(decoder_layers),
        decoder_mlp_dim=decoder_mlp,
        decoder_heads=SAM_DECODER_HEADS,
        attention_downsample_rate=max(1, transformer_dim // cross_q),
        num_multimask_outputs=mask_tokens - 1,
        iou_head_depth=len(iou_layers),
        iou_head_hidden_dim=iou_hidden,
    )


def build_sam_from_config(config: SamConfig):
    """A randomly initialised ``segment_anything.modeling.Sam`` with this configuration (eval mode).

    Works under ``with torch.device("meta")``: :func:`load_sam` builds that way and skips the initialisation.
    """
    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    grid = config.img_size // config.patch_size
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=config.img_size,
            patch_size=config.patch_size,
            in_chans=config.in_chans,
            embed_dim=config.embed_dim,
            depth=config.depth,
            num_heads=config.num_heads,
            mlp_ratio=config.mlp_ratio,
            out_chans=config.out_chans,
            qkv_bias=config.qkv_bias,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_abs_pos=config.use_abs_pos,
            use_rel_pos=config.use_rel_pos,
            window_size=config.window_size,
            global_attn_indexes=config.global_attn_indexes,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=config.prompt_embed_dim,
            image_embedding_size=(grid, grid),
            input_image_size=(config.img_size, config.img_size),
            mask_in_chans=config.mask_in_chans,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=config.num_multimask_outputs,
            transformer=TwoWayTransformer(
                depth=config.decoder_depth,
                embedding_dim=config.prompt_embed_dim,
                mlp_dim=config.decoder_mlp_dim,
                num_heads=config.decoder_heads,
                attention_downsample_rate=config.attention_downsample_rate,
            ),
            transformer_dim=config.prompt_embed_dim,
            iou_head_depth=config.iou_head_depth,
            iou_head_hidden_dim=config.iou_head_hidden_dim,
        ),
        pixel_mean=list(SAM_PIXEL_MEAN),
        pixel_std=list(SAM_PIXEL_STD),
    )
    return sam.eval()


def _reset_pixel_stats(sam) -> None:
    import torch

    sam.register_buffer("pixel_mean", torch.tensor(SAM_PIXEL_MEAN).view(-1, 1, 1), False)
    sam.register_buffer("pixel_std", torch.tensor(SAM_PIXEL_STD).view(-1, 1, 1), False)


def _key_list(keys: list[str], limit: int = 3) -> str:
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def _load_weights(model, weights: Mapping[str, Any], path: Path, expected: str,
                  allow_unexpected: bool = False) -> None:
    """Copy every weight into ``model``; a missing weight (or, unless allowed, an extra one) is an error."""
    try:
        result = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        detail = lines[0] if lines else str(exc).splitlines()[0]
        raise ModelError(f"{path.name} is not a {expected} checkpoint: {detail}") from exc
    problems = []
    if result.missing_keys:
        problems.append(f"missing keys {_key_list(list(result.missing_keys))}")
    if result.unexpected_keys and not allow_unexpected:
        problems.append(f"unexpected keys {_key_list(list(result.unexpected_keys))}")
    if problems:
        raise ModelError(f"{path.name} is not a {expected} checkpoint: {'; '.join(problems)}.")


def _construct_for_loading(builder: Callable[[], Any]):
    """Build a model whose every persistent tensor is about to be overwritten, skipping random init.

    Built on the meta device and given uninitialised CPU memory when its only non-persistent buffers are
    SAM's pixel statistics (set again after loading); otherwise (or if the meta build fails) built normally.
    """
    import torch

    try:
        with torch.device("meta"):
            model = builder()
    except Exception:  # some architectures compute on tensors while being built (e.g. TinyViT)
        return builder(), False
    non_persistent = set(dict(model.named_buffers())) - set(model.state_dict())
    if not non_persistent <= {"pixel_mean", "pixel_std"}:
        return builder(), False
    return model.to_empty(device="cpu"), True


def _import_family(family: str):
    package, module = FAMILY_PACKAGES[family]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        feature = f"Loading a {family_arch_label(family, '').strip()} model"
        if exc.name and exc.name.split(".")[0] != module:  # the package is there but needs another one
            raise MissingDependencyError(exc.name.split(".")[0], feature) from exc
        raise MissingDependencyError(package, feature, family_install_hint(family)) from exc
    except Exception as exc:  # e.g. a package written for a newer torch failing at import time
        raise ModelError(f"The installed '{package}' package does not work here ({type(exc).__name__}: {exc}); "
                         f"{family_arch_label(family, '').strip()} models are unavailable.") from exc


def _build_family_model(family: str, arch: str, weights: dict[str, Any], path: Path, spec: ModelSpec | None):
    """(model, image_size) for the families whose architecture comes from another pip package."""
    expected = family_arch_label(family, arch)
    if family in ("sam_hq", "mobile_sam"):
        module = _import_family(family)
        key = "vit_t" if family == "mobile_sam" else arch
        model, empty = _construct_for_loading(module.sam_model_registry[key])
        # SAM-HQ's own loader is not strict; tolerate extra tensors there, never missing ones
        _load_weights(model, weights, path, expected, allow_unexpected=family == "sam_hq")
        if empty:
            _reset_pixel_stats(model)
        return model.eval(), model.image_encoder.img_size
    if family == "sam2":
        _import_family(family)
        from sam2.build_sam import build_sam2

        config = spec.sam2_config if spec and spec.sam2_config else _sam2_config_for(arch)
        model = build_sam2(config, ckpt_path=None, device="cpu", mode="eval")
        _load_weights(model, weights, path, expected)
        return model.eval(), int(getattr(model, "image_size", 1024))
    raise ModelError(f"{path.name}: unknown model family '{family}'.")


def _sam2_config_for(arch: str) -> str:
    suffix = {"hiera_t": "t", "hiera_s": "s", "hiera_b+": "b+", "hiera_l": "l"}[arch]
    return f"configs/sam2.1/sam2.1_hiera_{suffix}.yaml"


LOAD_STEPS = 4  # reading the file, building the model, copying the weights, moving it to the device


def load_sam(path: str | os.PathLike, model_type: str | None = None, device: str = "cpu",
             precision: str = "auto", progress: ProgressCallback | None = None,
             should_stop: ShouldStop | None = None) -> LoadedSam:
    """Load a SAM checkpoint file and return a model on ``device`` in eval mode.

    ``progress(done, LOAD_STEPS, message)`` is told about each step and ``should_stop()`` checked between
    them (:class:`~segfill.errors.Cancelled`; nothing is kept).

    ``precision`` is the encoder's number format setting (``segfill.sam.precision``: "auto" = bf16 autocast
    where the device has native bf16 and the family matches fp32 within tolerance).

    ``model_type`` (e.g. "vit_b", "sam_hq:vit_l", "hiera_t") overrides identification; a file whose tensors
    contradict it is refused with an error naming the file and both types. Corrupt, truncated, non-SAM or
    pickled-object files raise :class:`ModelError` naming the file.
    """
    path = Path(path)
    what = f"loading {path.name}"
    check(should_stop, what, 0, LOAD_STEPS)
    report(progress, 0, LOAD_STEPS, f"Reading {path.name}…")
    data = read_state_dict(path)
    check(should_stop, what, 1, LOAD_STEPS)
    report(progress, 1, LOAD_STEPS, f"Building the model of {path.name}…")
    weights, _wrapper = unwrap_state_dict(data)
    shapes = tensor_shapes(weights)

    expected: Identification | None = None
    if model_type:
        expected = Identification(*parse_model_type(model_type), "override")
    else:
        named = spec_by_filename(path.name)
        if named is not None and (named.size_bytes is None or named.size_bytes == path.stat().st_size):
            expected = Identification(named.family, named.arch, "name", named)
    family, arch = classify_shapes(shapes, path.name)
    if expected is not None and (expected.family, expected.arch) != (family, arch):
        raise ModelError(f"{path.name} is not a {expected.label} checkpoint: its tensors are those of a "
                         f"{family_arch_label(family, arch)} model.")
    spec = expected.spec if expected else None
    method = expected.method if expected else "shapes"

    if family == "sam":
        config = derive_sam_config(shapes, path.name)
        model, empty = _construct_for_loading(lambda: build_sam_from_config(config))
        check(should_stop, what, 2, LOAD_STEPS)
        report(progress, 2, LOAD_STEPS, f"Copying the weights of {path.name}…")
        _load_weights(model, weights, path, family_arch_label(family, arch))
        if empty:
            _reset_pixel_stats(model)
        image_size = config.img_size
    else:
        model, image_size = _build_family_model(family, arch, weights, path, spec)
    del data, weights
    check(should_stop, what, 3, LOAD_STEPS)
    report(progress, 3, LOAD_STEPS, f"Moving {path.name} to {device}…")
    model.to(device)
    report(progress, LOAD_STEPS, LOAD_STEPS, f"{path.name} is loaded.")
    return LoadedSam(
        model=model,
        arch=arch,
        family=family,
        path=path,
        model_key=f"{family}-{arch}-{file_fingerprint(path)[:20]}",
        device=str(device),
        spec=spec,
        identified_by=method,
        image_size=int(image_size),
        precision=check_precision(precision),
    )
