"""The host of ``python -m segfill serve``: SegFill's own runner on an OpenCV or diffusers backend."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image

from segfill.defaults import EMBEDDING_CACHE_BYTES
from segfill.hosts.base import GenerationResult, HostDefaults, HostProgress
from segfill.tasks import TaskBoard

if TYPE_CHECKING:
    from segfill.backends.base import InpaintBackend
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache


class StandaloneHost:
    """Host for ``python -m segfill serve``: SegFill's own runner on an OpenCV or diffusers backend.

    With ``output_dir`` every result of the tab and the API is saved there (``segfill-<mode>-NNNNN.png`` with its
    infotext, the input and mask beside it) with a line in ``segfill-manifest.jsonl``; without it nothing is saved.
    ``backend_spec`` is the recipe that rebuilds the backend (recorded for ``replay``)."""

    name = "standalone"
    supports_send_to_img2img = False
    inpaint_upload_components = None

    def __init__(self, sam: SamManager, backend: InpaintBackend, embeddings: EmbeddingCache | None = None,
                 defaults: HostDefaults | None = None, output_dir: str | Path | None = None,
                 backend_spec: dict[str, Any] | None = None, detectors: Any = None) -> None:
        self.sam = sam
        self.backend = backend
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.backend_spec = backend_spec or backend_spec_of(backend)
        self._detectors = detectors
        self.tasks = TaskBoard()  # per-user progress channels (segfill.tasks)
        if embeddings is None:
            from segfill.sam.session import EmbeddingCache

            embeddings = EmbeddingCache(EMBEDDING_CACHE_BYTES)
        self.embeddings = embeddings
        self._defaults = defaults or HostDefaults()

    @property
    def detectors(self) -> Any:
        """The host's DetectorManager (built on first use, same device and unload policy as its SAM)."""
        if self._detectors is None:
            from segfill.detect.manager import DetectorManager

            self._detectors = DetectorManager(device=self.sam.device_setting, idle_unload_s=self.sam.idle_unload_s)
        return self._detectors

    def defaults(self) -> HostDefaults:
        return self._defaults

    def model_warning(self) -> str | None:
        if getattr(self.backend, "name", "") == "opencv":
            return "The OpenCV backend fills holes from their surroundings only; prompts are ignored."
        return None

    def _infotext(self, kind: str, args: Any, result: Any) -> tuple[str, dict]:
        info = {"host": self.name, "backend": getattr(self.backend, "name", "?"), "mode": kind,
                "args": args.dict(), "plan": result.plan.to_dict(), "warnings": list(getattr(result, "warnings", []))}
        return make_infotext(kind, info["args"], info["backend"]), info

    def plan_outpaint(self, image_size: tuple[int, int], args: Any) -> Any:
        """The plan :meth:`outpaint` will run for an image of ``image_size`` (the tab draws it before running):
        the backend's tiling, so an untiled backend (OpenCV) shows one whole-canvas fill, not diffusion tiles."""
        from segfill.backends.base import backend_tiling
        from segfill.outpaint.runner import plan_outpaint

        working_size, tiled = backend_tiling(self.backend)
        return plan_outpaint(image_size, args, working_size=working_size, tiled=tiled)

    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None, provenance: dict[str, Any] | None = None) -> GenerationResult:
        from segfill.outpaint.runner import run_inpaint

        started = time.perf_counter()
        result = run_inpaint(image, mask, args, self.backend, progress=progress)
        infotext, info = self._infotext("inpaint", args, result)
        self._record("inpaint", image, mask, args, result.image, infotext, info, started, provenance)
        return GenerationResult(images=[result.image], infotext=infotext, info=info)

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None, provenance: dict[str, Any] | None = None) -> GenerationResult:
        from segfill.outpaint.runner import run_outpaint

        started = time.perf_counter()
        result = run_outpaint(image, args, self.backend, progress=progress)
        infotext, info = self._infotext("outpaint", args, result)
        self._record("outpaint", image, None, args, result.image, infotext, info, started, provenance)
        return GenerationResult(images=[result.image], infotext=infotext, info=info)

    def _record(self, mode: str, image: Image.Image, mask: Image.Image | None, args: Any, out: Image.Image,
                infotext: str, info: dict, started: float, provenance: dict[str, Any] | None) -> None:
        """Save the result, its input and mask into ``output_dir`` with a manifest line (see the class doc)."""
        if self.output_dir is None:
            return
        from segfill.errors import SegFillError
        from segfill.hosts.records import record_result, save_output

        provenance = provenance or {}
        try:
            path = save_output(self.output_dir, mode, out, infotext)
            record_result(path, mode, provenance.get("source", "api"), image, mask, args, self.backend_spec,
                          time.perf_counter() - started, infotext, provenance.get("selection"))
        except (SegFillError, OSError) as exc:  # the result is still shown and returned; say why it is not saved
            logging.getLogger("segfill").warning("SegFill could not save into %s: %s", self.output_dir, exc)
            info["save_error"] = str(exc)
            return
        info["path"] = str(path)


def make_infotext(kind: str, args: dict[str, Any], backend: str, extra: dict[str, Any] | None = None) -> str:
    """WebUI-style infotext (same quoting as the WebUI, readable by ``infotext.parse_infotext``) of a job run by
    SegFill's own runner: the standalone host, the CLI and the batch."""
    from segfill.infotext import params_to_text

    params: dict[str, Any] = {"SegFill": kind, "SegFill backend": backend}
    for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength"):
        params[f"SegFill {key.replace('_', ' ')}"] = args[key]
    params.update(extra or {})
    return params_to_text(params)


def backend_spec_of(backend: Any) -> dict[str, Any]:
    """The job-recipe form of a backend (``{"name", "options"}``), as far as its attributes tell."""
    name = getattr(backend, "name", "?")
    if name == "opencv":
        options = {key: getattr(backend, key) for key in ("method", "radius", "working_size", "grain")}
        options["tiled"] = bool(getattr(backend, "needs_tiles", False))
        return {"name": "opencv", "options": options}
    if name == "diffusers" and getattr(backend, "model", ""):
        return {"name": "diffusers", "options": {"model": str(backend.model), "device": getattr(backend, "device", None)}}
    return {"name": name, "options": {}}
