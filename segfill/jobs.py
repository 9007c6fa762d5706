"""One job recipe -> one output + one manifest entry: what the CLI, the batch and ``replay`` run.

A job is plain JSON (it is stored in every manifest entry as ``job``)::

    {"mode": "inpaint" | "outpaint" | "mask",
     "image": "/abs/input.png", "output": "/abs/out.png",
     "mask": {"file": ..., "text": ..., "detector": ..., "box_threshold": ..., "text_threshold": ...,
              "points": [[x, y, label]], "box": [x0, y0, x1, y1], "sam_checkpoint": ..., "model_type": ...,
              "candidate": null | 0..2, "refinement": {MaskRefinement fields}},   # inpaint and mask only
     "args": {InpaintArgs | OutpaintArgs fields},                                  # inpaint and outpaint
     "backend": {"name": "opencv" | "diffusers", "options": {...}}}

:func:`run_job` loads the input, makes the mask (a mask file; or text -> detector boxes -> SAM, one mask per box,
united; or points/box -> SAM), refines it, repaints with the backend, writes the output (PNG infotext included)
and the mask beside it as ``<output stem>.mask.png``, and appends the manifest entry. Models are cached in a
:class:`JobModels` so a batch loads each once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segfill.errors import InputError, ModelError, SegFillError
from segfill.provenance import Manifest, file_sha256, job_key, now_iso

MASK_SUFFIX = ".mask.png"


def mask_path_for(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.stem + MASK_SUFFIX)


@dataclass
class JobModels:
    """Models shared by the jobs of one command: SAM per checkpoint, one detector manager, backends by options."""

    device: str = "auto"
    detector_progress: Callable[[str], Any] | None = None  # description -> progress callback (a tqdm bar)
    _sam: dict = field(default_factory=dict)
    _backends: dict = field(default_factory=dict)
    _detectors: Any = None

    def sam(self, checkpoint: str, model_type: str | None = None) -> Any:
        from segfill.sam.loading import load_sam
        from segfill.sam.manager import resolve_device

        key = (str(Path(checkpoint).resolve()), model_type)
        if key not in self._sam:
            if not Path(checkpoint).is_file():
                raise ModelError(f"SAM checkpoint {checkpoint!r} not found.")
            self._sam[key] = load_sam(checkpoint, model_type=model_type, device=resolve_device(self.device))
        return self._sam[key]

    @property
    def detectors(self) -> Any:
        if self._detectors is None:
            from segfill.detect.manager import DetectorManager

            self._detectors = DetectorManager(device=self.device)
        return self._detectors

    def detector(self, source: str) -> Any:
        bar = self.detector_progress(f"download {source}") if self.detector_progress else None
        try:
            return self.detectors.get(source, progress=bar)
        finally:
            close = getattr(bar, "close", None)
            if callable(close):
                close()

    def backend(self, spec: dict[str, Any]) -> Any:
        import json

        from segfill.backends import create_backend

        key = json.dumps(spec, sort_keys=True)
        if key not in self._backends:
            options = {k: v for k, v in (spec.get("options") or {}).items() if v is not None}
            self._backends[key] = create_backend(spec.get("name", "opencv"), **options)
        return self._backends[key]


@dataclass
class MaskOutcome:
    mask: np.ndarray  # refined: bool, or float32 when feathered
    selection: dict[str, Any]  # provenance of how it was made
    detection: Any = None  # DetectionResult for a text selection


def read_image(path: str | Path) -> tuple[np.ndarray, str]:
    """RGB uint8 of the file and the SHA-256 of its bytes; unreadable files are an InputError."""
    from segfill.sam.cli import read_rgb

    rgb = read_rgb(Path(path))
    return rgb, file_sha256(path)


def make_mask(rgb: np.ndarray, spec: dict[str, Any], models: JobModels) -> MaskOutcome:
    """The mask a job's ``mask`` recipe describes, for the image ``rgb``."""
    from segfill.args import MaskRefinement, parse_args_model
    from segfill.masks import mask_from_image, refine

    refinement = parse_args_model(MaskRefinement, dict(spec.get("refinement") or {}))
    size = (rgb.shape[1], rgb.shape[0])
    selection: dict[str, Any] = {"refinement": refinement.dict()}
    detection = None
    if spec.get("file"):
        from segfill.outpaint.cli import load_image

        raw = mask_from_image(load_image(spec["file"], "mask"), size=size)
        selection.update(source="mask_file", mask_input=str(spec["file"]), mask_input_sha256=file_sha256(spec["file"]))
    else:
        from segfill.sam.registry import file_sha256 as sam_sha256
        from segfill.sam.session import SamSession, validate_box, validate_points

        points = validate_points([tuple(p) for p in spec.get("points") or ()], size)
        box = validate_box(spec.get("box"), size)
        text = spec.get("text")
        if not text and not points and box is None:
            raise InputError("Give a --text, at least one --point or a --box (or a mask).")
        checkpoint = spec.get("sam_checkpoint")
        if not checkpoint:
            raise InputError("Selecting by text, point or box needs --sam-checkpoint.")
        candidate = spec.get("candidate")
        if text:
            from segfill.detect.detector import detect
            from segfill.detect.pipeline import chosen_index, predict_boxes, require_detections, union_of

            detector = models.detector(spec.get("detector") or _default_detector())
            detection = detect(detector, rgb, text, spec.get("box_threshold"), spec.get("text_threshold"))
            require_detections(detection)
            loaded = models.sam(checkpoint, spec.get("model_type"))
            session = SamSession(loaded)
            session.set_image(rgb)
            predictions = predict_boxes(session, detection.detections)
            chosen = [chosen_index(p, candidate) for p in predictions]
            raw = union_of(predictions, chosen, size)
            selection.update(source="text", **detection.to_dict(),
                             sam_scores=[float(p.scores[i]) for p, i in zip(predictions, chosen, strict=True)])
        else:
            loaded = models.sam(checkpoint, spec.get("model_type"))
            session = SamSession(loaded)
            session.set_image(rgb)
            prediction = session.predict(points=list(points), box=box, multimask=True if candidate is not None else None)
            chosen = [prediction.best_index if candidate is None else int(candidate)]
            raw = prediction.best_mask if candidate is None else session.choose(int(candidate))
            selection.update(source="points", sam_scores=[float(prediction.scores[chosen[0]])])
        selection.update(points=[list(p) for p in points], box=list(box) if box else None,
                         sam_model=Path(checkpoint).name, sam_sha256=sam_sha256(checkpoint), sam_key=loaded.model_key,
                         candidate="best" if candidate is None else int(candidate), chosen=chosen)
    return MaskOutcome(refine(np.asarray(raw, dtype=bool), refinement), selection, detection)


def _default_detector() -> str:
    from segfill.detect.registry import availability_message, default_detector

    source = default_detector()
    if source is None:
        raise ModelError(availability_message())
    return source


def infotext_for(job: dict[str, Any], args: Any, selection: dict[str, Any] | None) -> str:
    from segfill.hosts.standalone import make_infotext

    extra = {}
    if selection and selection.get("source") == "text":
        extra = {"SegFill text": selection["text"], "SegFill detector": selection["detector"]}
    return make_infotext(job["mode"], args.dict(), job.get("backend", {}).get("name", "?"), extra)


def _image_info(path: Path, image: Any) -> dict[str, Any]:
    return {"path": str(path.resolve()), "sha256": file_sha256(path), "width": image.size[0], "height": image.size[1]}


@dataclass
class JobResult:
    entry: dict[str, Any]  # the manifest entry
    plan: Any = None  # the executed outpaint/inpaint plan
    image: Any = None  # the output (PIL)
    warnings: list[str] = field(default_factory=list)  # what the user should know about the result
    notes: list[str] = field(default_factory=list)  # what the output file cannot keep (bit depth, alpha)


def run_job(job: dict[str, Any], models: JobModels, source: str = "cli", progress: Any = None,
            manifest: bool = True) -> JobResult:
    """Run ``job`` (see the module doc); the manifest entry is appended when ``manifest``. A
    :class:`SegFillError` propagates after a failed entry was written (``entry["status"] == "failed"``)."""
    started = time.perf_counter()
    result = JobResult({})
    output = Path(job["output"])
    entry: dict[str, Any] = {"time": now_iso(), "source": source, "mode": job["mode"], "status": "ok", "error": None,
                             "job_key": job_key(job), "job": job,
                             "input": {"path": str(Path(job["image"]).resolve())}}
    result.entry = entry
    try:
        _execute(job, models, result, progress)
    except BaseException as exc:
        entry.update(status="failed", error=str(exc) if isinstance(exc, SegFillError) else f"{type(exc).__name__}: {exc}")
        raise
    finally:
        entry["seconds"] = round(time.perf_counter() - started, 3)
        if manifest:
            result.entry = Manifest(output.parent).append(entry)
    return result


def _execute(job: dict[str, Any], models: JobModels, outcome_holder: JobResult, progress: Any) -> None:  # noqa: C901
    from PIL.PngImagePlugin import PngInfo

    from segfill.args import InpaintArgs, OutpaintArgs, parse_args_model
    from segfill.fileio import check_output_path, save_image
    from segfill.masks import mask_to_image

    entry = outcome_holder.entry
    mode = job["mode"]
    if mode not in ("inpaint", "outpaint", "mask"):
        raise InputError(f"Unknown job mode {mode!r}.")
    output = check_output_path(job["output"])
    rgb, digest = read_image(job["image"])
    entry["input"].update(sha256=digest, width=int(rgb.shape[1]), height=int(rgb.shape[0]))
    image = _source_with_alpha(job["image"], rgb)
    outcome = make_mask(rgb, job.get("mask") or {}, models) if mode in ("inpaint", "mask") else None
    if outcome is not None:
        entry["selection"] = outcome.selection
    if mode == "mask":
        mask_image = mask_to_image(outcome.mask)
        save_image(mask_image, output, format="PNG")
        outcome_holder.image = mask_image
        entry["mask_file"] = str(output.resolve())
        entry["output"] = _image_info(output, mask_image)
        return
    from segfill.outpaint.runner import plan_inpaint, plan_outpaint, run_inpaint, run_outpaint

    backend_spec = job.get("backend") or {"name": "opencv", "options": {}}
    working, tiled = planned_tiling(backend_spec)
    if mode == "inpaint":
        args = parse_args_model(InpaintArgs, dict(job.get("args") or {}))
        plan_inpaint(image.size, np.asarray(outcome.mask) > 0.5, args, working, tiled)  # errors before loading
    else:
        args = parse_args_model(OutpaintArgs, dict(job.get("args") or {}))
        plan_outpaint(image.size, args, working, tiled)
    backend = models.backend(backend_spec)
    if mode == "inpaint":
        result = run_inpaint(image, outcome.mask, args, backend, progress=progress)
    else:
        result = run_outpaint(image, args, backend, progress=progress)
    infotext = infotext_for(job, args, outcome.selection if outcome else None)
    result_image, outcome_holder.notes = _what_the_file_keeps(image, result.image, output)
    if outcome_holder.notes:
        entry["notes"] = outcome_holder.notes
    if output.suffix.lower() == ".png":
        info = PngInfo()
        info.add_text("parameters", infotext)
        save_image(result_image, output, pnginfo=info)
    else:  # JPEG / WebP: the WebUI reads their EXIF comment; SegFill keeps the infotext in the manifest
        save_image(result_image, output)
    entry["infotext"] = infotext
    if outcome is not None:
        mask_file = save_image(mask_to_image(outcome.mask), mask_path_for(output), format="PNG")
        entry["mask_file"] = str(mask_file.resolve())
    entry.update(args=args.dict(), seed=args.seed, backend=backend_spec,
                 plan={"tiles": result.plan.total_tiles, "passes": len(result.plan.passes)})
    entry["output"] = _image_info(output, result_image)
    outcome_holder.plan, outcome_holder.image = result.plan, result_image
    outcome_holder.warnings = list(getattr(result, "warnings", []))
    if outcome_holder.warnings:
        entry["warnings"] = outcome_holder.warnings


def _source_with_alpha(path: str | Path, rgb: np.ndarray) -> Any:
    """The job's input for the runner: RGB, or RGBA when the file has alpha (the runner keeps the alpha of
    pixels it does not repaint, :mod:`segfill.outpaint.alpha`); ``info`` marks a 16-bit file."""
    from PIL import Image

    from segfill.outpaint.alpha import alpha_of
    from segfill.outpaint.cli import load_image

    stored = load_image(str(path))
    alpha = alpha_of(stored)
    image = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha, "L"))
    image.info.update({k: v for k, v in stored.info.items() if k == "segfill_high_bit_depth"})
    return image


def _what_the_file_keeps(source: Any, result: Any, output: Path) -> tuple[Any, list[str]]:
    """(the image to save, one sentence per thing the output cannot keep: more than 8 bits, or alpha in a
    format without transparency)."""
    from PIL import Image

    from segfill.outpaint.alpha import HIGH_BIT_DEPTH_NOTE

    notes = []
    if source.info.get("segfill_high_bit_depth"):
        notes.append(HIGH_BIT_DEPTH_NOTE)
    fmt = Image.registered_extensions().get(output.suffix.lower())
    if result.mode == "RGBA" and fmt in ("JPEG", "BMP"):
        notes.append(f"{fmt} has no transparency; the result's alpha is dropped (use .png to keep it).")
        result = result.convert("RGB")
    return result, notes


def planned_tiling(backend_spec: dict[str, Any]) -> tuple[int, bool]:
    """``(working_size, needs_tiles)`` the job's backend will have, known before a diffusion model is loaded
    (so geometry errors come before any loading)."""
    if backend_spec.get("name", "opencv") == "opencv":
        from segfill.backends import create_backend
        from segfill.backends.base import backend_tiling

        options = {k: v for k, v in (backend_spec.get("options") or {}).items() if v is not None}
        return backend_tiling(create_backend("opencv", **options))
    return 512, True


def output_matches(entry: dict[str, Any] | None, job: dict[str, Any], input_sha256: str) -> bool:
    """Whether ``entry`` records a finished run of ``job`` on this input whose output file is still intact."""
    if not entry or entry.get("status") != "ok" or entry.get("job_key") != job_key(job):
        return False
    if (entry.get("input") or {}).get("sha256") != input_sha256:
        return False
    output = Path((entry.get("output") or {}).get("path") or "")
    return output.is_file() and file_sha256(output) == entry["output"].get("sha256")
