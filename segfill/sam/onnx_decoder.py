"""SAM's prompt encoder + mask decoder as an ONNX file, so the browser can answer clicks and hovers itself.

As in segment-anything's own web demo: the server computes the image embedding once per image (the heavy part)
and the browser runs the small decoder (4 M parameters) with onnxruntime-web on every pointer move. The file is
exported from the loaded checkpoint with segment-anything's ``SamOnnxModel`` and the options of its
``scripts/export_onnx_model.py`` (opset 17, dynamic number of points, every candidate returned, no stability
score, exact GELU), and cached per model content (``LoadedSam.model_key`` holds a fingerprint of the file).

One change to ``SamOnnxModel``: its ``mask_postprocessing`` crops with ``int(...)`` of a tensor, which tracing
freezes to the example's size; here the crop stays a tensor, so masks come out right for every image size
(MobileSAM's copy of the class has the same fix).

Families: SAM (vit_b/l/h and other sizes) and MobileSAM export (their decoders are segment-anything's).
SAM-HQ's decoder needs the encoder's intermediate features (tens of MB per image) and SAM 2's is another
architecture: for them :func:`exportable` is False and clicks use the server's lean click route.

Inputs of the exported model (float32): ``image_embeddings (1, 256, 64, 64)``, ``point_coords (1, N, 2)`` in the
encoder's frame (``ResizeLongestSide``: x · new_w / w), ``point_labels (1, N)`` (1 include, 0 exclude, 2/3 box
corners, -1 padding point when there is no box), ``mask_input (1, 1, 256, 256)``, ``has_mask_input (1,)``,
``orig_im_size (2,)`` (h, w of the masks wanted: the display size), ``candidate (1,)`` int64 (the mask token
to upscale; -1 = the best of the multimask tokens 1-3). Outputs: ``masks (1, 1, h, w)`` logits of that one
candidate, ``iou_predictions (1, 4)``, ``low_res_masks (1, 4, 256, 256)`` (for refinement), ``chosen (1,)``;
token 0 is the single-mask answer, 1-3 the multimask ones, exactly as ``MaskDecoder`` slices them. Only the drawn
candidate is upscaled: upscaling all four to the display size cost more than the decoder in the browser.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from segfill.errors import ModelError

EXPORTABLE_FAMILIES = ("sam", "mobile_sam")
OPSET = 17
INPUT_NAMES = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input", "orig_im_size",
               "candidate")
OUTPUT_NAMES = ("masks", "iou_predictions", "low_res_masks", "chosen")
FORMAT = 2  # bumped when the exported graph changes (part of the cached file's name)

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def exportable(loaded: Any) -> bool:
    """Whether this model's decoder can run in the browser (else clicks use the lean server route)."""
    return getattr(loaded, "family", None) in EXPORTABLE_FAMILIES


def default_cache_folder(environ: dict[str, str] | None = None) -> Path:
    """``$SEGFILL_CACHE/onnx``, else ``$XDG_CACHE_HOME/segfill/onnx`` (``~/.cache/segfill/onnx``)."""
    env = os.environ if environ is None else environ
    if env.get("SEGFILL_CACHE"):
        return Path(env["SEGFILL_CACHE"]) / "onnx"
    base = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "segfill" / "onnx"


def decoder_filename(loaded: Any) -> str:
    return f"{loaded.model_key}-decoder-v{FORMAT}-opset{OPSET}.onnx"


def _onnx_module(sam: Any) -> Any:
    """``SamOnnxModel`` around ``sam`` with a crop that stays dynamic when traced."""
    import torch
    from segment_anything.utils.onnx import SamOnnxModel
    from torch.nn import functional as F

    class DynamicCropSamOnnxModel(SamOnnxModel):
        def mask_postprocessing(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
            masks = F.interpolate(masks, size=(self.img_size, self.img_size), mode="bilinear", align_corners=False)
            prepadded_size = self.resize_longest_image_size(orig_im_size, self.img_size).to(torch.int64)
            masks = masks[..., : prepadded_size[0], : prepadded_size[1]]
            orig_im_size = orig_im_size.to(torch.int64)
            h, w = orig_im_size[0], orig_im_size[1]
            return F.interpolate(masks, size=(h, w), mode="bilinear", align_corners=False)

        @torch.no_grad()
        def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input, orig_im_size,
                    candidate):
            sparse_embedding = self._embed_points(point_coords, point_labels)
            dense_embedding = self._embed_masks(mask_input, has_mask_input)
            masks, scores = self.model.mask_decoder.predict_masks(
                image_embeddings=image_embeddings,
                image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse_embedding,
                dense_prompt_embeddings=dense_embedding,
            )
            # only the candidate drawn is upscaled (the display-size upscaling is most of the decoder's time in the
            # browser): ``candidate`` >= 0 picks a mask token, < 0 the best multimask one (tokens 1-3)
            best = torch.argmax(scores[:, 1:], dim=1) + 1
            chosen = torch.where(candidate >= 0, candidate.to(torch.int64), best)
            low = torch.index_select(masks, 1, chosen)
            return self.mask_postprocessing(low, orig_im_size), scores, masks, chosen

    return DynamicCropSamOnnxModel(model=sam, return_single_mask=False)


def export_decoder(loaded: Any, folder: str | os.PathLike | None = None) -> Path:
    """The cached ONNX decoder of ``loaded``, exported first if needed (a few seconds, once per model)."""
    if not exportable(loaded):
        raise ModelError(f"The {loaded.label} decoder cannot run in the browser; clicks use the server instead.")
    folder = Path(folder) if folder is not None else default_cache_folder()
    target = folder / decoder_filename(loaded)
    if target.is_file():
        return target
    with _locks_guard:
        lock = _locks.setdefault(str(target), threading.Lock())
    with lock:
        if target.is_file():
            return target
        import io
        import warnings

        import torch

        from segfill.fileio import atomic_write

        sam = loaded.model
        module = _onnx_module(sam)
        device = next(sam.parameters()).device
        embed_dim = sam.prompt_encoder.embed_dim
        embed_size = tuple(sam.prompt_encoder.image_embedding_size)
        inputs = (
            torch.randn(1, embed_dim, *embed_size, dtype=torch.float, device=device),
            torch.randint(0, 1024, (1, 5, 2), dtype=torch.float, device=device),
            torch.randint(0, 4, (1, 5), dtype=torch.float, device=device),
            torch.randn(1, 1, *(4 * s for s in embed_size), dtype=torch.float, device=device),
            torch.tensor([1], dtype=torch.float, device=device),
            torch.tensor([1500, 2250], dtype=torch.float, device=device),
            torch.tensor([-1], dtype=torch.int64, device=device),
        )
        buffer = io.BytesIO()
        with warnings.catch_warnings(), _without_onnx_package_if_missing():
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=UserWarning)
            torch.onnx.export(
                module, inputs, buffer, export_params=True, verbose=False, opset_version=OPSET,
                do_constant_folding=True, input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
                dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
            )
        data = buffer.getvalue()
        atomic_write(target, lambda handle: handle.write(data), make_parents=True)
        return target


class _without_onnx_package_if_missing:
    """torch < 2.2's exporter imports the ``onnx`` package only to splice onnxscript functions into the file; this
    decoder has none, so where ``onnx`` is not installed (a WebUI pins an older protobuf than current onnx needs)
    that step is skipped for the duration of the export instead of failing. Called under the export lock."""

    def __enter__(self) -> None:
        self._patched = None
        try:
            import onnx  # noqa: F401
        except ImportError:
            from torch.onnx._internal import onnx_proto_utils

            self._patched = (onnx_proto_utils, onnx_proto_utils._add_onnxscript_fn)
            onnx_proto_utils._add_onnxscript_fn = lambda model_bytes, custom_opsets: model_bytes

    def __exit__(self, *exc: Any) -> None:
        if self._patched is not None:
            module, original = self._patched
            module._add_onnxscript_fn = original


def decoder_inputs(embedding: Any, points: list, box: Any, input_size: tuple[int, int],
                   original_size: tuple[int, int], out_size: tuple[int, int], mask_input: Any = None,
                   candidate: int = -1) -> dict[str, Any]:
    """The exported model's inputs (numpy float32) for a prompt in image pixels, as the browser builds them
    (``javascript/segfill_decoder.js`` does the same arithmetic): ``points`` ``[(x, y, label)]``, ``box``
    ``(x0, y0, x1, y1)`` or None, sizes ``(h, w)``; ``out_size`` is the size of the masks wanted."""
    import numpy as np

    oh, ow = original_size
    ih, iw = input_size
    sx, sy = iw / ow, ih / oh  # ResizeLongestSide.apply_coords multiplies by these quotients (float64)
    coords = [(float(x) * sx, float(y) * sy) for x, y, _ in points]
    labels = [float(label) for _, _, label in points]
    if box is not None:
        x0, y0, x1, y1 = (float(v) for v in box)
        coords += [(x0 * sx, y0 * sy), (x1 * sx, y1 * sy)]
        labels += [2.0, 3.0]
    else:
        coords.append((0.0, 0.0))
        labels.append(-1.0)
    has_mask = mask_input is not None
    low_res = 4 * int(np.shape(embedding)[-1])
    return {
        "image_embeddings": np.ascontiguousarray(embedding, dtype=np.float32),
        "point_coords": np.array([coords], dtype=np.float32),
        "point_labels": np.array([labels], dtype=np.float32),
        "mask_input": (np.asarray(mask_input, dtype=np.float32).reshape(1, 1, *np.shape(mask_input)[-2:])
                       if has_mask else np.zeros((1, 1, low_res, low_res), dtype=np.float32)),
        "has_mask_input": np.array([1.0 if has_mask else 0.0], dtype=np.float32),
        "orig_im_size": np.array(out_size, dtype=np.float32),
        "candidate": np.array([candidate], dtype=np.int64),
    }
