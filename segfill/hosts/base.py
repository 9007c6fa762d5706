"""What the UI and the REST API need from the program they run in: the :class:`Host` protocol.

The same tab and the same routes run inside the WebUI / Forge and in the standalone app; only the host
differs. A host owns the shared SAM models and embedding cache and knows how to run an inpaint or outpaint
(standalone: SegFill's runner with an OpenCV or diffusers backend; WebUI: the WebUI's own processing, see
``segfill/hosts/webui/``; standalone: ``segfill/hosts/standalone.py``). Per-user state never lives here: it belongs to each browser session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PIL import Image

from segfill import defaults

if TYPE_CHECKING:  # imported lazily so this module stays cheap to import
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache

#: progress(done_tiles, total_tiles, message); may raise to interrupt.
HostProgress = Callable[[int, int, str], None]



@dataclass
class GenerationResult:
    """Images of exactly the requested size (RGB), a WebUI-style infotext and a plain summary dict."""

    images: list
    infotext: str = ""
    info: dict = field(default_factory=dict)


@dataclass
class HostDefaults:
    tile_size: int = defaults.TILE_SIZE
    overlap: int = defaults.TILE_OVERLAP
    feather: int = defaults.OUTPAINT_FEATHER
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

    # Optional: ``detectors`` (a segfill.detect.manager.DetectorManager) for "Select by text" and /detect.

    # ``provenance``: {"source": "tab" | "api", "selection": {how the mask was made}} for the manifest line the
    # host writes beside a saved result (segfill/hosts/records.py).
    def inpaint(self, image: Image.Image, mask: Image.Image, args: Any,
                progress: HostProgress | None = None, provenance: dict | None = None) -> GenerationResult: ...

    def outpaint(self, image: Image.Image, args: Any,
                 progress: HostProgress | None = None, provenance: dict | None = None) -> GenerationResult: ...
