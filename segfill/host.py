"""What the UI and the REST API need from the program they run in.

The same tab and the same routes run inside the WebUI / Forge and in the standalone app; only the host
differs. A host owns the shared SAM models and embedding cache and knows how to run an inpaint or outpaint
(standalone: SegFill's runner with an OpenCV or diffusers backend; WebUI: the WebUI's own processing, see
``segfill/hosts/webui.py``). Per-user state never lives here: it belongs to each browser session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PIL import Image

if TYPE_CHECKING:  # imported lazily at run time so `segfill.host` stays cheap to import
    from segfill.backends.base import InpaintBackend
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache

#: progress(done_tiles, total_tiles, message); may raise to interrupt.
HostProgress = Callable[[int, int, str], None]

#: default size of the shared embedding cache (bytes); a vit_h embedding is 4 MiB at fp32.
DEFAULT_EMBEDDING_CACHE_BYTES = 256 * 1024 * 1024


@dataclass
class GenerationResult:
    """Images of exactly the requested size (RGB), a WebUI-style infotext and a plain summary dict."""

    images: list
    infotext: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class HostDefaults:
    tile_size: int = 512
    overlap: int = 64
    feather: int = 32
    sam_model: str | None = None  # default SAM model name


@runtime_checkable
class Host(Protocol):
    name: str  # "standalone", "webui", "forge"
    sam: SamManager
    embeddings: EmbeddingCache
    supports_send_to_img2img: bool
    # Optional (WebUI glue): img2img's Inpaint upload ``(img_inpaint_base, img_inpaint_mask)`` gr.Image
    # components, captured with on_after_component before the tab is built. With them "Send to img2img
    # inpaint" fills the two images from Python; without them the browser hands the files over (javascript/).
    # inpaint_upload_components: tuple | None

    def defaults(self) -> HostDefaults: ...

    def model_warning(self) -> str | None: ...

    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None) -> GenerationResult: ...

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None) -> GenerationResult: ...


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

            embeddings = EmbeddingCache(DEFAULT_EMBEDDING_CACHE_BYTES)
        self.embeddings = embeddings
        self._defaults = defaults or HostDefaults()

    def defaults(self) -> HostDefaults:
        return self._defaults

    def model_warning(self) -> str | None:
        if getattr(self.backend, "name", "") == "opencv":
            return "The OpenCV backend fills holes from their surroundings only; prompts are ignored."
        return None

    def _infotext(self, kind: str, args: Any, result: Any) -> tuple[str, dict]:
        """WebUI-style infotext (same quoting as the WebUI, readable by ``infotext.parse_infotext``)."""
        from segfill.infotext import params_to_text

        info = {"host": self.name, "backend": getattr(self.backend, "name", "?"), "mode": kind,
                "args": args.dict(), "plan": result.plan.to_dict()}
        params = {"SegFill": kind, "SegFill backend": info["backend"]}
        for key in ("prompt", "negative_prompt", "seed", "steps", "guidance", "strength"):
            params[f"SegFill {key.replace('_', ' ')}"] = info["args"][key]
        return params_to_text(params), info

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
