"""The host of ``python -m segfill serve``: SegFill's own runner on an OpenCV or diffusers backend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from segfill.defaults import EMBEDDING_CACHE_BYTES
from segfill.hosts.base import GenerationResult, HostDefaults, HostProgress

if TYPE_CHECKING:
    from segfill.backends.base import InpaintBackend
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache


class StandaloneHost:
    """Host for ``python -m segfill serve``: SegFill's own runner on an OpenCV or diffusers backend."""

    name = "standalone"
    supports_send_to_img2img = False
    inpaint_upload_components = None

    def __init__(self, sam: SamManager, backend: InpaintBackend, embeddings: EmbeddingCache | None = None,
                 defaults: HostDefaults | None = None) -> None:
        self.sam = sam
        self.backend = backend
        if embeddings is None:
            from segfill.sam.session import EmbeddingCache

            embeddings = EmbeddingCache(EMBEDDING_CACHE_BYTES)
        self.embeddings = embeddings
        self._defaults = defaults or HostDefaults()

    def defaults(self) -> HostDefaults:
        return self._defaults

    def model_warning(self) -> str | None:
        if getattr(self.backend, "name", "") == "opencv":
            return "The OpenCV backend fills holes from their surroundings only; prompts are ignored."
        return None

    def _infotext(self, kind: str, args: Any, result: Any) -> tuple[str, dict]:
        info = {"host": self.name, "backend": getattr(self.backend, "name", "?"), "mode": kind,
                "args": args.dict(), "plan": result.plan.to_dict()}
        return make_infotext(kind, info["args"], info["backend"]), info

    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None) -> GenerationResult:
        from segfill.outpaint.runner import run_inpaint

        result = run_inpaint(image, mask, args, self.backend, progress=progress)
        infotext, info = self._infotext("inpaint", args, result)
        return GenerationResult(images=[result.image], infotext=infotext, info=info)

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None) -> GenerationResult:
        from segfill.outpaint.runner import run_outpaint

        result = run_outpaint(image, args, self.backend, progress=progress)
        infotext, info = self._infotext("outpaint", args, result)
        return GenerationResult(images=[result.image], infotext=infotext, info=info)


def make_infotext(kind: str, args: dict[str, Any], backend: str, extra: dict[str, Any] | None = None) -> str:
    """WebUI-style infotext (same quoting as the WebUI, readable by ``infotext.parse_infotext``) of a job run by
    SegFill's own runner: the standalone host, the CLI and the batch."""
    from segfill.infotext import params_to_text

    params: dict[str, Any] = {"SegFill": kind, "SegFill backend": backend}
    for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength"):
        params[f"SegFill {key.replace('_', ' ')}"] = args[key]
    params.update(extra or {})
    return params_to_text(params)
