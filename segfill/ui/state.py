"""Per-user state of the SegFill tab and the plain functions that change it.

One :class:`UserState` lives in each browser session's ``gr.State`` (never in a module global), so two users
never see each other's clicks. Everything the user can undo is one immutable :class:`Edit`: the points and
box of the current selection with SAM's answer to them, the segments picked on the segment map, brush and
eraser strokes, the working mask committed from earlier selections, the combine operation and the mask
refinement. Undo/redo move along a list of edits, so undoing a click does not run the decoder again and
undoing "grow" restores the mask exactly.

The mask the user sees is computed from the current edit::

    selection = chosen SAM candidate  ∪  picked segments
    raw       = combine(base, selection, op)  then strokes painted/erased in order
    final     = refine(raw, refinement)       (grow, shrink, fill holes, specks, invert, feather)

Coordinates are image pixels ``(x, y)``, origin top-left; the browser converts once before sending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from segfill.args import MaskRefinement
from segfill.errors import Cancelled, InputError, SegFillError
from segfill.history import UndoHistory
from segfill.masks import pack_mask, unpack_mask
from segfill.sam.session import _resize_bool_mask, validate_box, validate_points
from segfill.tasks import board_of, new_channel

if TYPE_CHECKING:  # pragma: no cover
    from segfill.hosts.base import Host
    from segfill.sam.segment_map import SegmentMap
    from segfill.sam.session import Prediction, SamSession

Point = tuple[float, float, int]
Box = tuple[float, float, float, float]

COMBINE_OPS = ("add", "subtract", "intersect", "replace")
NO_MODEL_MESSAGE = ("No SAM model is installed yet: download one in the 'Download a SAM model' box (Model tab), "
                    "then click again; the brush and eraser work without one.")
MAX_UNDO = 100
#: canvas events handled by segfill.ui.workspace
WORKSPACE_EVENTS = ("accept", "discard", "show_result", "frame", "view")
MAX_EVENTS_PER_CALL = 200


@dataclass(frozen=True)
class Stroke:
    """A brush (paint) or eraser stroke: a polyline in image pixels, ``radius`` in image pixels. ``hardness`` 1
    is a hard edge (painted into the raw mask, before refinement); below 1 the outer ``1 - hardness`` of the
    radius fades out, and the stroke is laid over the refined mask (a soft edge must not be grown or cut)."""

    points: tuple[tuple[float, float], ...]
    radius: float
    erase: bool = False
    hardness: float = 1.0

    @property
    def soft(self) -> bool:
        return self.hardness < 1.0

    def shifted(self, dx: float, dy: float) -> Stroke:
        return replace(self, points=tuple((x + dx, y + dy) for x, y in self.points))


@dataclass(frozen=True)
class PackedMask:
    """A bool mask kept bit-packed and compressed (:func:`segfill.masks.pack_mask`): undo history of big
    images costs kilobytes, not megabytes."""

    shape: tuple[int, int]
    data: bytes

    @classmethod
    def pack(cls, mask: np.ndarray) -> PackedMask:
        return cls((int(mask.shape[0]), int(mask.shape[1])), pack_mask(mask))

    def unpack(self) -> np.ndarray:
        return unpack_mask(self.data, self.shape)


@dataclass(frozen=True)
class TextQuery:
    """What "Select by text" asked for (shown with its boxes, recorded in the manifest)."""

    text: str
    detector: str  # the name shown: an installed folder's name or a hub id
    family: str
    detector_key: str
    box_threshold: float
    text_threshold: float | None


@dataclass(frozen=True)
class TextBox:
    """One detected box: the detector's box, label and score, SAM's candidates for it (bit-packed), whether the
    user keeps it, and the candidate chosen (None = SAM's best)."""

    box: Box
    score: float
    label: str
    prediction: Any = field(compare=False, repr=False)  # CompactPrediction
    kept: bool = True
    candidate: int | None = None

    @property
    def candidate_index(self) -> int:
        return self.prediction.best_index if self.candidate is None else self.candidate

    def mask(self) -> np.ndarray:
        return self.prediction.mask(self.candidate_index)


@dataclass(frozen=True)
class Edit:
    """Everything undoable, as of one step. Immutable: a change makes a new Edit with ``dataclasses.replace``."""

    points: tuple[Point, ...] = ()
    box: Box | None = None
    # SAM's answer to points/box, kept so undo needs no decoder run; compared by identity (see same_as)
    prediction: Prediction | None = field(default=None, compare=False)
    candidate: int | None = None  # chosen candidate; None = SAM's best
    segment_ids: frozenset[int] = frozenset()
    strokes: tuple[Stroke, ...] = ()
    base: PackedMask | None = None  # the working mask committed from earlier selections
    op: str = "add"
    refinement: MaskRefinement = field(default_factory=MaskRefinement)
    text: TextQuery | None = None  # the last "Select by text" query of this selection
    text_boxes: tuple[TextBox, ...] = ()  # its boxes (kept or dropped), each with SAM's candidates
    # the image this edit applies to (UserState keeps the images; accepting a result makes a new one, so undo
    # can go back across it) and the outpaint frame around it: padding (left, right, top, bottom) in px
    image_key: int = 0
    frame: tuple[int, int, int, int] = (0, 0, 0, 0)

    def same_as(self, other: Edit) -> bool:
        return self == other and self.prediction is other.prediction

    @property
    def candidate_index(self) -> int | None:
        if self.prediction is None:
            return None
        return self.prediction.best_index if self.candidate is None else self.candidate


class CompactPrediction:
    """An older SAM answer kept for undo, packed; same interface as :class:`~segfill.sam.session.Prediction`
    (``mask(i)``, ``mask_at(i, size)``, ``preview(i)``, ``masks``, ``scores``, ``best_index``, ``size``).

    A prediction made from SAM's logits (every SamSession answer) keeps them losslessly compressed, a few hundred
    kilobytes whatever the image size, and makes a mask again only when asked; one holding full-size masks keeps
    them bit-packed."""

    def __init__(self, prediction: Any) -> None:
        import zlib

        self.scores = np.asarray(prediction.scores, dtype=np.float32)
        self.best_index = int(prediction.best_index)
        self.upscale = getattr(prediction, "upscale", None) if getattr(prediction, "is_lazy", False) else None
        self.packed = None
        self._logits = None
        if self.upscale is None:
            self.packed = [PackedMask.pack(np.asarray(prediction.mask(i), dtype=bool)) for i in range(len(prediction))]
        else:
            logits = np.ascontiguousarray(prediction._full_logits, dtype=np.float32)
            self._logits = (logits.shape, zlib.compress(logits.tobytes(), 1))

    @property
    def is_lazy(self) -> bool:
        return self.upscale is not None

    def _unpacked(self) -> Any:
        import zlib

        from segfill.sam.session import Prediction

        shape, data = self._logits
        logits = np.frombuffer(zlib.decompress(data), dtype=np.float32).reshape(shape)
        return Prediction(scores=self.scores, upscale=self.upscale, full_logits=logits)

    def mask(self, index: int) -> np.ndarray:
        if self.packed is not None:
            return self.packed[int(index)].unpack()
        return self._unpacked().mask(index)

    def mask_at(self, index: int, size: tuple[int, int]) -> np.ndarray:
        if self.packed is not None:
            return _resize_bool_mask(self.packed[int(index)].unpack(), size)
        return self._unpacked().mask_at(index, size)

    @property
    def size(self) -> tuple[int, int]:
        if self.upscale is not None:
            height, width = self.upscale.original_size
        else:
            height, width = self.packed[0].shape
        return int(width), int(height)

    @property
    def preview_size(self) -> tuple[int, int]:
        return self.size if self.packed is not None else self._unpacked().preview_size

    def preview(self, index: int) -> np.ndarray:
        return self.mask_at(index, self.preview_size)

    @property
    def masks(self) -> np.ndarray:
        return np.stack([self.mask(i) for i in range(len(self))])

    def __len__(self) -> int:
        return int(self.scores.shape[0])


#: SAM answers kept unpacked (the newest ones; older ones become CompactPrediction)
LIVE_PREDICTIONS = 6
#: images kept for undo across accepted results (the oldest history steps go when more would be needed)
MAX_KEPT_IMAGES = 6
#: changes of one control closer together than this (s) are one undo step (a slider drag), not many; a drag's
#: changes stay one step however slowly the server gets to them, until the slider reports its release
COALESCE_SECONDS = 2.0
DRAG_SECONDS = 15.0


@dataclass
class Download:
    filename: str
    data_url: str


class UserState:
    """One browser session: its image, SAM session, edit history and caches. Methods are not thread-safe
    on their own; the UI callbacks hold ``lock`` around them."""

    def __init__(self) -> None:
        # images by key (Edit.image_key); key 0 = no image. Keys only grow, so a key is also the revision the
        # browser compares to fetch an image only when it changed
        self._images: dict[int, np.ndarray] = {}
        self._next_image_key = 1
        self.model_name: str | None = None
        self.session: SamSession | None = None
        self._segment_map: tuple[int, SegmentMap] | None = None  # (image key, map): a map belongs to one image
        self.segment_map_revision = 0
        # inpaint/outpaint results of this session (segfill.ui.workspace), the one shown on the canvas, the
        # region of the image the canvas shows zoomed in (for full-resolution detail) and a busy note
        self.results: list[Any] = []
        self.results_revision = 0
        self.pending_result: int | None = None
        self.viewport: tuple[int, int, int, int, int, int] | None = None  # x0, y0, x1, y1, screen w, h
        self.busy = ""
        self.notice = ""  # a standing hint (e.g. no SAM model installed yet), shown until it no longer applies
        self.frame_plan: dict[str, Any] | None = None  # the outpaint frame's tile plan, for the overlay
        self.user_edited: set[str] = set()  # generation controls the user changed by hand (presets keep them)
        self.presets: dict[str, str] = {}  # the preset chosen in each job panel ("inpaint", "outpaint")
        self._coalesce: tuple[str, int, float] | None = None  # (control, history length, time) of the last change
        self._dragging: set[str] = set()  # controls whose drag has not been released yet
        self.sent_result: tuple[int, int] | None = None  # (result id, image revision) the canvas shows
        self.sent_results_revision: int | None = None
        self.sent_detail: dict[str, Any] = {}
        # undo restores points, SAM's answer, candidate and refinement together: the states are whole Edits
        self.history: UndoHistory[Edit] = UndoHistory(Edit(), MAX_UNDO, same=Edit.same_as)
        self.revision = 0  # bumped on every visible change
        self.pending_download: Download | None = None
        self.message = ""
        self.lock = threading.RLock()
        # what the browser and the SAM session already have, so unchanged things are not sent or set again
        self.sent_image_revision: int | None = None
        self.sent_segment_revision: int | None = None
        self.session_image: tuple[int, int] | None = None  # (image_revision, id(session))
        self.thumb_base: tuple[int, np.ndarray] | None = None
        self.thumb_cache: tuple[Any, list[dict[str, Any]]] | None = None
        self.sent_thumbs_of: Any = None  # the prediction whose thumbnails the browser shows
        # "Select by text": the detected box whose SAM candidates the candidate strip shows (not undoable: what
        # the user looks at, like the zoom), and its thumbnails as for thumb_cache / sent_thumbs_of
        self.text_focus: int | None = None
        self.text_thumb_cache: tuple[Any, list[dict[str, Any]]] | None = None
        self.sent_text_thumbs_of: Any = None
        self.timings: dict[str, float] = {}  # of the last browser call (ms), sent with the payload for benchmarks
        self._mask_cache: tuple[Edit | None, np.ndarray | None, np.ndarray | None] = (None, None, None)
        self._display_cache: tuple[Edit | None, np.ndarray | None, int] = (None, None, 0)
        self._display_base_cache: tuple[PackedMask, np.ndarray] | None = None
        # background encodings (segfill.sam.encoding.EncodingJob) by embedding cache key
        self.encoding_jobs: dict[tuple[str, str], Any] = {}
        # this session's progress channel (segfill.tasks): its page polls the long job it waits for, and cancels it
        self.channel = new_channel()

    # gr.State deep-copies values in some gradio versions; the state holds models and locks, so a copy is the
    # same object. Its initial value in gr.State is None, so sessions never share one.
    def __deepcopy__(self, memo: dict[int, Any]) -> UserState:
        return self

    def __copy__(self) -> UserState:
        return self

    # -- basic properties ----------------------------------------------------------------------------------
    @property
    def edit(self) -> Edit:
        return self.history.current

    @property
    def image(self) -> np.ndarray | None:
        """RGB uint8 (H, W, 3) of the current edit, or None."""
        return self._images.get(self.edit.image_key)

    @image.setter
    def image(self, rgb: np.ndarray | None) -> None:
        """A new image (or none): the history starts again from it, keeping the controls."""
        key = self.add_image(rgb) if rgb is not None else 0
        self.history.reset(Edit(op=self.edit.op, refinement=self.edit.refinement, image_key=key))
        self._prune_images()
        self.revision += 1
        self.reset_masks()

    @property
    def image_revision(self) -> int:
        """Changes exactly when the shown image changes (the image's key)."""
        return self.edit.image_key

    def add_image(self, rgb: np.ndarray) -> int:
        """Keep ``rgb`` under a new key (for an Edit's ``image_key``); returns the key."""
        key = self._next_image_key
        self._next_image_key += 1
        self._images[key] = rgb
        return key

    def _prune_images(self) -> None:
        """Forget images no history step uses; with more than MAX_KEPT_IMAGES in use, forget the oldest steps."""
        keys = [edit.image_key for edit in self.history]
        while len({k for k in keys if k}) > MAX_KEPT_IMAGES and self.history.can_undo:
            self.history.drop_oldest(1)
            keys = [edit.image_key for edit in self.history]
        for key in list(self._images):
            if key not in keys:
                del self._images[key]

    @property
    def segment_map(self) -> SegmentMap | None:
        """SAM's automatic segments of the current image (None until computed, and for another image)."""
        if self._segment_map is not None and self._segment_map[0] == self.image_revision:
            return self._segment_map[1]
        return None

    @segment_map.setter
    def segment_map(self, value: SegmentMap | None) -> None:
        self._segment_map = None if value is None else (self.image_revision, value)
        self.segment_map_revision += 1

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) of the image, or None."""
        if self.image is None:
            return None
        return int(self.image.shape[1]), int(self.image.shape[0])

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def require_image(self) -> np.ndarray:
        if self.image is None:
            raise InputError("Upload an image first.")
        return self.image

    # -- history -------------------------------------------------------------------------------------------
    def push(self, edit: Edit, coalesce: str | None = None) -> Edit:
        """Make ``edit`` current (undoable); an edit equal to the current one is not recorded. With ``coalesce``
        (a control's name), a change following a change of the same control within COALESCE_SECONDS replaces
        it instead, so one slider drag is one undo step back to the value before the drag."""
        self._put_result_aside()
        now = time.monotonic()
        last = self._coalesce
        recent = last is not None and (now - last[2] < COALESCE_SECONDS
                                       or (last[0] in self._dragging and now - last[2] < DRAG_SECONDS))
        if (coalesce and recent and last[0] == coalesce and last[1] == len(self.history)
                and not self.history.can_redo and self.history.can_undo):
            if edit.same_as(self.edit):
                return self.edit
            self.history.replace(len(self.history) - 1, edit)
            self._coalesce = (coalesce, len(self.history), now)
            self.revision += 1
            return edit
        previous_image = self.edit.image_key
        if not self.history.push(edit):
            return self.edit
        self._coalesce = (coalesce, len(self.history), now) if coalesce else None
        self.revision += 1
        self._compact_old_predictions()
        if edit.image_key != previous_image:
            self._prune_images()
        return edit

    def _compact_old_predictions(self) -> None:
        """Keep the newest LIVE_PREDICTIONS answers as they are and pack older ones (edits sharing one answer
        keep sharing its packed form)."""
        live: set[int] = set()
        packed: dict[int, CompactPrediction] = {}
        edits = list(self.history)
        for index in range(len(edits) - 1, -1, -1):
            prediction = edits[index].prediction
            if prediction is None or isinstance(prediction, CompactPrediction):
                continue
            if id(prediction) in live or (len(live) < LIVE_PREDICTIONS and id(prediction) not in packed):
                live.add(id(prediction))
                continue
            if id(prediction) not in packed:
                packed[id(prediction)] = CompactPrediction(prediction)
            self.history.replace(index, replace(edits[index], prediction=packed[id(prediction)]))

    def start_drag(self, control: str) -> None:
        """A slider is being dragged: its changes are one undo step until :meth:`end_drag`."""
        self._dragging.add(control)

    def end_drag(self, control: str) -> None:
        self._dragging.discard(control)
        if self._coalesce is not None and self._coalesce[0] == control:
            self._coalesce = None

    def undo(self) -> None:
        if self.can_undo:
            self._put_result_aside()
            self.history.undo()
            self.revision += 1
            self._coalesce = None

    def redo(self) -> None:
        if self.can_redo:
            self._put_result_aside()
            self.history.redo()
            self.revision += 1
            self._coalesce = None

    def _put_result_aside(self) -> None:
        """Editing while a result is on the canvas: the canvas shows what is edited again; the result stays in
        the session's results (``workspace``) to show or accept later."""
        if self.pending_result is not None:
            self.pending_result = None
            self.revision += 1

    # -- masks ---------------------------------------------------------------------------------------------
    def selection_mask(self, edit: Edit | None = None) -> np.ndarray | None:
        """The current selection (SAM candidate ∪ picked segments), bool (H, W), or None when nothing is selected."""
        edit = edit or self.edit
        selection = None
        if edit.prediction is not None:
            selection = np.asarray(edit.prediction.mask(edit.candidate_index), dtype=bool)
        if edit.segment_ids and self.segment_map is not None:
            segments = self.segment_map.mask_of(edit.segment_ids)
            selection = segments if selection is None else (selection | segments)
        for text_box in edit.text_boxes:  # "Select by text": every kept box's chosen candidate
            if text_box.kept:
                mask = text_box.mask()
                selection = mask.copy() if selection is None else (selection | mask)
        return selection

    def raw_mask(self, edit: Edit | None = None) -> np.ndarray:
        """Working mask ∘ selection, then strokes; bool (H, W). Before refinement."""
        from segfill.masks import CombineOp, combine

        edit = edit or self.edit
        width, height = self.size or (0, 0)
        mask = edit.base.unpack() if edit.base is not None else np.zeros((height, width), dtype=bool)
        selection = self.selection_mask(edit)
        if selection is not None:
            mask = np.asarray(combine(mask, selection, CombineOp[edit.op.upper()]), dtype=bool)
        hard = tuple(stroke for stroke in edit.strokes if not stroke.soft)
        if hard:
            mask = paint_strokes(mask, hard)
        return mask

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(raw bool mask, refined mask — bool, or float32 in [0, 1] when feathered or soft-brushed), cached
        per edit. Soft strokes are laid over the refined mask in order."""
        from segfill.masks import refine

        edit = self.edit
        cached_edit, raw, refined = self._mask_cache
        if cached_edit is not edit or raw is None or refined is None:
            raw = self.raw_mask(edit)
            refined = refine(raw, edit.refinement)
            soft = tuple(stroke for stroke in edit.strokes if stroke.soft)
            if soft:
                refined = paint_soft_strokes(refined, soft)
            self._mask_cache = (edit, raw, refined)
        return raw, refined

    def final_mask(self) -> np.ndarray:
        return self.masks()[1]

    def reset_masks(self) -> None:
        self._mask_cache = (None, None, None)
        self._display_cache = (None, None, 0)

    # -- what a click shows: the mask at display size ---------------------------------------------------------
    @property
    def display_size(self) -> tuple[int, int] | None:
        """(width, height) of the mask the browser is sent: the image's size, at most MASK_DISPLAY_SIDE a side."""
        if self.size is None:
            return None
        return scaled_size(self.size, MASK_DISPLAY_SIDE)

    def shown_mask(self) -> tuple[np.ndarray, int]:
        """(the final mask at :attr:`display_size` — bool, or float32 when feathered —, its area in full-size px).

        For an image no larger than the display size this is :meth:`final_mask` itself. For a larger one it is
        made at display size from SAM's preview candidates, the segment map, the display copy of the working
        mask and the strokes and refinements scaled to it, so a click on an 8000×6000 photo never makes a
        full-size mask; :meth:`final_mask` (downloads, inpaint, commit) is still exact at full size. Cached per
        edit."""
        edit = self.edit
        cached_edit, mask, area = self._display_cache
        if cached_edit is edit and mask is not None:
            return mask, area
        size, shown = self.size, self.display_size
        if size is None:
            raise InputError("Upload an image first.")
        if shown == size:
            mask = self.final_mask()
            area = int(np.count_nonzero(mask > 0.5)) if mask.dtype != bool else int(np.count_nonzero(mask))
        else:
            mask = self._display_final(edit, shown)
            count = int(np.count_nonzero(mask > 0.5)) if mask.dtype != bool else int(np.count_nonzero(mask))
            area = int(round(count * (size[0] * size[1]) / (shown[0] * shown[1])))
        self._display_cache = (edit, mask, area)
        return mask, area

    def _display_final(self, edit: Edit, shown: tuple[int, int]) -> np.ndarray:
        from segfill.masks import CombineOp, combine, refine

        width, height = self.size
        scale = shown[0] / width
        mask = self._display_base(edit.base, shown)
        selection = None
        if edit.prediction is not None:
            selection = np.asarray(edit.prediction.mask_at(edit.candidate_index, shown), dtype=bool)
        if edit.segment_ids and self.segment_map is not None:
            segments = _resize_bool(self.segment_map.mask_of(edit.segment_ids, size=shown), shown)
            selection = segments if selection is None else (selection | segments)
        if selection is not None:
            mask = np.asarray(combine(mask, selection, CombineOp[edit.op.upper()]), dtype=bool)
        if edit.strokes:
            scaled = [Stroke(tuple((x * scale, y * scale) for x, y in st.points), st.radius * scale, st.erase)
                      for st in edit.strokes]
            mask = paint_strokes(mask, scaled)
        return refine(mask, scaled_refinement(edit.refinement, scale))

    def _display_base(self, base: PackedMask | None, shown: tuple[int, int]) -> np.ndarray:
        if base is None:
            return np.zeros((shown[1], shown[0]), dtype=bool)
        cached = self._display_base_cache
        if cached is not None and cached[0] is base and cached[1].shape == (shown[1], shown[0]):
            return cached[1]
        small = _resize_bool(base.unpack(), shown)
        self._display_base_cache = (base, small)
        return small


#: long side of the mask the browser draws (the download is always full resolution)
MASK_DISPLAY_SIDE = 1024


def scaled_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled down (never up) so the long side is at most ``max_side``."""
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


_resize_bool = _resize_bool_mask  # bool mask at (width, height): area average down, linear up, >= 50 %


def scaled_refinement(refinement: MaskRefinement, scale: float) -> dict[str, Any]:
    """The refinement's pixel sizes times ``scale`` (for the display copy); a size that is not 0 stays >= 1."""
    values = refinement.dict()
    for name in ("grow", "shrink"):
        if values[name]:
            values[name] = max(1, int(round(values[name] * scale)))
    if values["remove_specks"]:
        values["remove_specks"] = max(1, int(round(values["remove_specks"] * scale * scale)))
    values["feather"] = float(values["feather"]) * scale
    return values


def paint_soft_strokes(mask: np.ndarray, strokes: Sequence[Stroke]) -> np.ndarray:
    """Lay soft strokes over ``mask`` (bool or float): paint raises it to the stroke's opacity, erase lowers it;
    the opacity is 1 within ``hardness · radius`` of the polyline and falls linearly to 0 at ``radius``."""
    out = mask.astype(np.float32) if mask.dtype == bool else mask.astype(np.float32, copy=True)
    height, width = out.shape
    for stroke in strokes:
        radius = max(1.0, float(stroke.radius))
        inner = radius * max(0.0, min(1.0, float(stroke.hardness)))
        pts = np.asarray(stroke.points, dtype=np.float64)
        pad = int(np.ceil(radius)) + 2
        x0, y0 = max(0, int(np.floor(pts[:, 0].min())) - pad), max(0, int(np.floor(pts[:, 1].min())) - pad)
        x1, y1 = min(width, int(np.ceil(pts[:, 0].max())) + pad + 1), min(height, int(np.ceil(pts[:, 1].max())) + pad + 1)
        if x1 <= x0 or y1 <= y0:
            continue
        line = np.full((y1 - y0, x1 - x0), 255, np.uint8)
        local = np.round(pts - (x0, y0)).astype(np.int32).reshape(-1, 1, 2)
        if len(local) == 1:
            line[local[0, 0, 1], local[0, 0, 0]] = 0
        else:
            cv2.polylines(line, [local], isClosed=False, color=0, thickness=1, lineType=cv2.LINE_8)
        distance = cv2.distanceTransform(line, cv2.DIST_L2, 5)
        alpha = np.clip((radius - distance) / max(radius - inner, 1e-3), 0.0, 1.0)
        region = out[y0:y1, x0:x1]
        if stroke.erase:
            np.minimum(region, 1.0 - alpha, out=region)
        else:
            np.maximum(region, alpha, out=region)
    return out


def paint_strokes(mask: np.ndarray, strokes: Sequence[Stroke]) -> np.ndarray:
    """Paint (or erase) round-capped polylines into a copy of ``mask``."""
    canvas = mask.astype(np.uint8)
    for stroke in strokes:
        value = 0 if stroke.erase else 1
        radius = max(1, int(round(stroke.radius)))
        pts = np.round(np.asarray(stroke.points, dtype=np.float64)).astype(np.int32)
        if len(pts) == 1:
            cv2.circle(canvas, (int(pts[0][0]), int(pts[0][1])), radius, value, thickness=-1)
        else:
            cv2.polylines(canvas, [pts.reshape(-1, 1, 2)], isClosed=False, color=value, thickness=2 * radius,
                          lineType=cv2.LINE_8)
            for x, y in (pts[0], pts[-1]):
                cv2.circle(canvas, (int(x), int(y)), radius, value, thickness=-1)
    return canvas.astype(bool)


# -- operations on the state (called by the UI callbacks and the tests) ---------------------------------------
def set_image(state: UserState, image: Any, host: Host, model_name: str | None = None, embed: bool = True,
              background: bool = False, progress: Any = None, should_stop: Any = None) -> None:
    """Make ``image`` the user's image: clears selections and history, computes (or reuses) the embedding.

    ``embed=False``: later, by :func:`ensure_session`, so the canvas can show the photo first.
    ``background=True`` returns at once and computes the embedding in a worker thread (:func:`start_encoding`):
    strokes, refinements and the rest of the editing work meanwhile; the first click waits for it
    (:func:`encoding_report` says how far it is). Otherwise ``progress`` / ``should_stop`` follow the encoding
    (:mod:`segfill.progress`)."""
    from segfill.masks import image_to_rgb

    rgb = np.ascontiguousarray(image_to_rgb(image))
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError("The image is too small; it must be at least 2×2 pixels.")
    state.image = rgb
    state.segment_map = None
    state.pending_result = None
    state.viewport = None
    state.frame_plan = None
    if background:
        start_encoding(state, host, rgb, model_name)
    elif embed:
        ensure_session(state, host, model_name, progress=progress, should_stop=should_stop)


def start_encoding(state: UserState, host: Host, image: Any, model_name: str | None = None) -> Any:
    """Start computing ``image``'s embedding in the background (into the host's shared cache) and return the
    :class:`~segfill.sam.encoding.EncodingJob`; ``image`` need not be the current image (e.g. an inpainting
    result the user may continue with). A session that later needs it waits for the job instead of encoding
    again; a cached embedding makes a job that is done at once."""
    from segfill.masks import image_to_rgb
    from segfill.sam.encoding import encode_in_background

    rgb = np.ascontiguousarray(image_to_rgb(image))
    loaded = _model_for(state, host, model_name)
    job = encode_in_background(loaded, rgb, host.embeddings)
    state.encoding_jobs = {key: old for key, old in state.encoding_jobs.items() if not old.done()}
    state.encoding_jobs[job.image_key] = job
    return job


def encoding_report(state: UserState) -> Any:
    """Progress of the current image's background encoding (:class:`~segfill.progress.ProgressReport`), or
    None when nothing is being encoded for it."""
    job = _job_for_current_image(state)
    return None if job is None or job.done() else job.report()


def cancel_encoding(state: UserState) -> bool:
    """Cancel the current image's background encoding; True if one was running."""
    job = _job_for_current_image(state)
    if job is None or job.done():
        return False
    job.cancel()
    return True


def _job_for_current_image(state: UserState) -> Any:
    if state.image is None or not state.encoding_jobs:
        return None
    from segfill.sam.session import image_digest

    digest = image_digest(state.image)
    for (_model, image_key), job in state.encoding_jobs.items():
        if image_key == digest:
            return job
    return None


def _model_for(state: UserState, host: Host, model_name: str | None = None, progress: Any = None,
               should_stop: Any = None) -> Any:
    wanted = model_name or state.model_name or host.defaults().sam_model
    if not wanted:
        names = model_names(host)
        if not names:
            raise SegFillError(NO_MODEL_MESSAGE)
        wanted = names[0]
    if state.session is not None and wanted == state.model_name and host.sam.is_current(state.session.model):
        return state.session.model
    from segfill.sam.session import SamSession

    if progress is not None:
        progress(0, 0, f"Loading SAM model {wanted}…")
    loaded = host.sam.get(wanted, progress=progress, should_stop=should_stop)
    state.session = SamSession(loaded, cache=host.embeddings)
    state.model_name = wanted
    return loaded


def clear_image(state: UserState) -> None:
    state.image = None
    state.segment_map = None
    state.pending_result = None
    state.viewport = None
    state.frame_plan = None
    if state.session is not None:
        state.session.reset_image()


def ensure_session(state: UserState, host: Host, model_name: str | None = None, progress: Any = None,
                   should_stop: Any = None) -> SamSession:
    """The user's SAM session on the current image with the chosen model (shared model, shared cache).

    Loading the model and encoding the image report to the user's progress channel (:mod:`segfill.tasks`), so
    the page shows a bar with an estimate and can cancel, unless the caller follows them itself (``progress`` /
    ``should_stop``). A background encoding of this image (:func:`start_encoding`) is waited for rather than
    done twice, and its progress is forwarded."""
    state.require_image()
    if progress is None and should_stop is None:
        board = board_of(host)
        with board.run(state.channel, "loading", "Loading the SAM model…") as task:
            loaded = _model_for(state, host, model_name, task.progress, task.token)
        if _session_ready(state):
            return state.session
        from segfill.sam.encoding import expected_encoding_s

        with board.run(state.channel, "encoding", "Encoding the image…", expected_encoding_s(loaded)) as task:
            return _ensure_encoded(state, task.progress, task.token)
    # a kept session goes stale when SAM was unloaded (idle, model switch) or offloaded for a generation: its
    # model would sit on the wrong device or pin memory the manager meant to free
    _model_for(state, host, model_name, progress, should_stop)
    return _ensure_encoded(state, progress, should_stop)


def _session_ready(state: UserState) -> bool:
    session = state.session
    return (session is not None and session.is_image_set
            and state.session_image == (state.image_revision, id(session)))


def _ensure_encoded(state: UserState, progress: Any, should_stop: Any) -> SamSession:
    image = state.require_image()
    session = state.session
    # set_image is free for a cached embedding but forgets the last prompt (whose logits refine the next
    # click), so call it only when the image or the model really changed.
    if not _session_ready(state):
        from segfill.sam.session import embedding_key

        job = _job_for_current_image(state)
        if job is not None and job.image_key[0] == embedding_key(session.model):
            _wait_for_job(job, progress, should_stop)
        session.set_image(image, progress=progress, should_stop=should_stop)
        state.session_image = (state.image_revision, id(session))
    return session


def _wait_for_job(job: Any, progress: Any, should_stop: Any, poll_s: float = 0.2) -> None:
    """Wait for a background encoding, forwarding its progress; a cancel here cancels it (raises Cancelled).
    When the job fails or was cancelled elsewhere this returns, and the caller encodes in the open."""
    from concurrent.futures import CancelledError
    from concurrent.futures import TimeoutError as FutureTimeout

    while True:
        if should_stop is not None and should_stop():
            job.cancel()
            raise Cancelled("encoding the image")
        if progress is not None:
            report = job.report()
            progress(report.done, report.total, report.message or "Encoding the image…")
        try:
            job.wait(timeout=poll_s)
            return
        except FutureTimeout:
            continue
        except (SegFillError, CancelledError):
            return


def model_names(host: Host) -> list[str]:
    names = []
    for entry in host.sam.list_models():
        name = entry if isinstance(entry, str) else getattr(entry, "name", None) or str(entry)
        names.append(name)
    return names


def change_model(state: UserState, host: Host, model_name: str) -> None:
    """Switch SAM model; the current selection was made with the old model's answers, so it is dropped."""
    if not model_name or model_name == state.model_name:
        return
    state.model_name = model_name
    state.session = None
    if state.image is None:
        return
    ensure_session(state, host, model_name)
    state.segment_map = None
    state.segment_map_revision += 1
    state.push(replace(state.edit, points=(), box=None, prediction=None, candidate=None, segment_ids=frozenset(),
                       text=None, text_boxes=()))


def _numbers(event: dict[str, Any], keys: Sequence[str], what: str) -> list[float]:
    try:
        return [float(event[key]) for key in keys]
    except (KeyError, TypeError, ValueError):
        raise InputError(f"{what} needs numeric {', '.join(keys)}.") from None


def _number(event: dict[str, Any], key: str, default: float, what: str) -> float:
    return _numbers({key: event.get(key, default)}, (key,), what)[0]


def _polyline(event: dict[str, Any], what: str) -> tuple[tuple[float, float], ...]:
    try:
        return tuple((float(p[0]), float(p[1])) for p in event.get("points") or ())
    except (KeyError, IndexError, TypeError, ValueError):
        raise InputError(f"{what} needs its points as [x, y] pairs of numbers.") from None


def _predict(state: UserState, host: Host, points: tuple[Point, ...], box: Box | None) -> Prediction | None:
    if not points and box is None:
        return None
    session = ensure_session(state, host)
    started = time.perf_counter()
    prediction = session.predict(points=list(points), box=box)
    state.timings["sam_ms"] = state.timings.get("sam_ms", 0.0) + (time.perf_counter() - started) * 1000
    return prediction


def apply_event(state: UserState, event: dict[str, Any], host: Host, progress: Any = None) -> None:
    """Apply one browser event (a dict decoded from the canvas' JSON) to ``state``. ``progress`` (a
    ``gr.Progress``-like ``progress(fraction, desc=...)``) shows a detector's first-use download."""
    kind = event.get("type")
    edit = state.edit
    if kind == "undo":
        state.undo()
    elif kind == "redo":
        state.redo()
    elif kind in ("clear", "escape"):  # Esc: drop the current selection, keep the working mask and strokes
        state.push(replace(edit, points=(), box=None, prediction=None, candidate=None, segment_ids=frozenset(),
                           text=None, text_boxes=()))
    elif kind == "reset":  # everything, but keep the controls
        state.push(Edit(op=edit.op, refinement=edit.refinement, image_key=edit.image_key, frame=edit.frame))
    elif kind == "point":
        size = state.require_image().shape[1::-1]
        x, y, label = _numbers({"label": 1, **event}, ("x", "y", "label"), "A click")
        points = edit.points + validate_points([(x, y, 0 if label == 0 else 1)], size)
        state.push(replace(edit, points=points, prediction=_predict(state, host, points, edit.box), candidate=None))
        state.text_focus = None  # the strip shows this click's candidates
    elif kind == "box":
        size = state.require_image().shape[1::-1]
        box = validate_box(_numbers(event, ("x0", "y0", "x1", "y1"), "A box"), size)
        state.push(replace(edit, box=box, prediction=_predict(state, host, edit.points, box), candidate=None))
        state.text_focus = None
    elif kind == "candidate":
        if edit.prediction is None:
            raise InputError("There are no candidates yet; click on the image first.")
        index = int(_number(event, "index", -1, "Choosing a candidate"))
        if not 0 <= index < len(edit.prediction.scores):
            raise InputError(f"Candidate {index + 1} does not exist.")
        session = state.session
        if session is not None and session.last_prediction is edit.prediction:
            session.pick(index)  # the next point refines this candidate, as in SAM's own interactive tool
        state.push(replace(edit, candidate=index))
        state.text_focus = None
    elif kind == "stroke":
        state.require_image()
        points = _polyline(event, "A brush stroke")
        if not points:
            raise InputError("A brush stroke needs at least one point.")
        radius = _number(event, "radius", 8, "A brush stroke")
        if not 0 < radius <= 4096:
            raise InputError("The brush size must be between 1 and 4096 pixels.")
        hardness = _number(event, "hardness", 1.0, "A brush stroke")
        if not 0 <= hardness <= 1:
            raise InputError("The brush hardness must be between 0 and 100 %.")
        stroke = Stroke(points, radius, bool(event.get("erase")), hardness)
        state.push(replace(edit, strokes=edit.strokes + (stroke,)))
    elif kind == "segment":
        points = _polyline(event, "Picking segments")
        if not points:
            raise InputError("Click or scribble on the segment map to pick segments.")
        thickness = _number(event, "thickness", 1.0, "Picking segments")
        if state.segment_map is None:
            compute_segments(state, host)
        touched = state.segment_map.segments_touched(list(points), thickness=thickness)
        if not touched:
            state.message = "No segment there; try another spot."
            return
        ids = edit.segment_ids - touched if event.get("remove") else edit.segment_ids | touched
        state.push(replace(edit, segment_ids=frozenset(ids)))
    elif kind == "segment_map":
        if state.segment_map is None:
            compute_segments(state, host)
        else:  # already made for this image (the browser lost its copy): send it again, do not recompute
            state.sent_segment_revision = None
            state.message = _segment_map_message(state)
    elif kind == "commit":  # bake the shown selection into the working mask and start a new one
        raw = state.raw_mask(edit)
        soft = tuple(stroke for stroke in edit.strokes if stroke.soft)  # laid over the refined mask, kept so
        state.push(Edit(base=PackedMask.pack(raw), strokes=soft, op=edit.op, refinement=edit.refinement,
                        image_key=edit.image_key, frame=edit.frame))
    elif kind == "detect":
        detect_text(state, host, event, progress)
        state.text_focus = 0  # the strip shows the best box's candidates
    elif kind == "text_focus":  # a box's label picked: the strip shows that box's candidates
        state.text_focus = _text_box_index(edit, event)
        state.revision += 1
    elif kind in ("keep", "drop"):
        index = _text_box_index(edit, event)
        boxes = tuple(replace(b, kept=(kind == "keep")) if i == index else b for i, b in enumerate(edit.text_boxes))
        state.push(replace(edit, text_boxes=boxes))
    elif kind == "text_candidate":
        index = _text_box_index(edit, event)
        chosen = int(_number(event, "candidate", -1, "Choosing a box's candidate"))
        if not 0 <= chosen < len(edit.text_boxes[index].prediction):
            raise InputError(f"Box {index + 1} has no candidate {chosen + 1}.")
        boxes = tuple(replace(b, candidate=chosen) if i == index else b for i, b in enumerate(edit.text_boxes))
        state.push(replace(edit, text_boxes=boxes))
        state.text_focus = index
    elif kind == "download":
        state.pending_download = make_download(state, str(event.get("what", "mask")))
    elif kind in WORKSPACE_EVENTS:  # results, the outpaint frame, the zoomed-in view
        from segfill.ui import workspace

        workspace.apply_event(state, event, host)
    elif kind == "noop":
        if event.get("need_image"):  # the browser lost the image (e.g. a reloaded tab): send it again
            state.sent_image_revision = None
            state.sent_thumbs_of = None
            state.sent_text_thumbs_of = None
    else:
        raise InputError(f"Unknown canvas event {kind!r}.")


def _text_box_index(edit: Edit, event: dict[str, Any]) -> int:
    if not edit.text_boxes:
        raise InputError("There are no detected boxes; use 'Select by text' first.")
    index = int(_number(event, "index", -1, "Choosing a detected box"))
    if not 0 <= index < len(edit.text_boxes):
        raise InputError(f"Box {index + 1} does not exist; there are {len(edit.text_boxes)}.")
    return index


def _optional_number(event: dict[str, Any], key: str, what: str) -> float | None:
    value = event.get(key)
    if value is None or value == "":
        return None
    return _number(event, key, 0.0, what)


def detect_text(state: UserState, host: Host, event: dict[str, Any], progress: Any = None) -> None:
    """"Select by text": the detector's boxes for ``event["text"]``, SAM's candidates for each, all kept."""
    from pathlib import Path

    from segfill.detect.detector import check_threshold, detect, split_phrases
    from segfill.detect.pipeline import predict_boxes, require_detections
    from segfill.detect.registry import FAMILIES, availability_message

    image = state.require_image()
    text = str(event.get("text") or "")
    split_phrases(text)
    box_threshold = check_threshold(_optional_number(event, "box_threshold", "The box threshold"), "box threshold")
    text_threshold = check_threshold(_optional_number(event, "text_threshold", "The text threshold"), "text threshold")
    detectors = getattr(host, "detectors", None)
    if detectors is None:
        raise SegFillError("Select by text is not available here. " + availability_message())
    source = detectors.choose(str(event.get("detector") or "") or None)
    started = time.perf_counter()
    loaded = detectors.get(source, progress=download_progress(progress, source))
    result = detect(loaded, image, text, box_threshold, text_threshold)
    state.timings["detect_ms"] = (time.perf_counter() - started) * 1000
    require_detections(result)
    session = ensure_session(state, host)
    started = time.perf_counter()
    predictions = predict_boxes(session, result.detections, multimask=True)
    state.timings["sam_ms"] = state.timings.get("sam_ms", 0.0) + (time.perf_counter() - started) * 1000
    boxes = tuple(TextBox(d.box, d.score, d.label, CompactPrediction(p))
                  for d, p in zip(result.detections, predictions, strict=True))
    shown = Path(source).name if Path(source).is_dir() else source
    query = TextQuery(text, shown, result.family, result.model_key, result.box_threshold, result.text_threshold)
    state.push(replace(state.edit, text=query, text_boxes=boxes))
    count = f"{len(boxes)} box" + ("es" if len(boxes) != 1 else "")
    state.message = (f"{FAMILIES[result.family].title} found {count} for '{text}'; drop the ones you do not want, "
                     "or add points and boxes.")


def download_progress(progress: Any, source: str) -> Any:
    """A detector download's ``(done_bytes, total_bytes)`` as ``progress(fraction, desc=...)`` for the tab."""
    if progress is None:
        return None

    def report(done: int, total: int | None) -> None:
        megabytes = f"{done / 1e6:.0f} of {total / 1e6:.0f} MB" if total else f"{done / 1e6:.0f} MB"
        progress(done / total if total else None, desc=f"Downloading {source}: {megabytes}")

    return report


def selection_provenance(state: UserState) -> dict[str, Any]:
    """How the shown mask was made, for the manifest line of a generation started from the tab."""
    edit = state.edit
    record: dict[str, Any] = {
        "source": "tab", "points": [list(p) for p in edit.points], "box": list(edit.box) if edit.box else None,
        "candidate": "best" if edit.candidate is None else edit.candidate, "chosen": edit.candidate_index,
        "sam_model": state.model_name, "sam_key": state.session.model.model_key if state.session else None,
        "segments": sorted(int(i) for i in edit.segment_ids), "strokes": len(edit.strokes),
        "working_mask": edit.base is not None, "op": edit.op, "refinement": edit.refinement.dict(),
    }
    if edit.text is not None:
        record.update(text=edit.text.text, detector=edit.text.detector, detector_family=edit.text.family,
                      detector_key=edit.text.detector_key, box_threshold=edit.text.box_threshold,
                      text_threshold=edit.text.text_threshold,
                      detections=[{"box": list(b.box), "score": b.score, "label": b.label, "kept": b.kept,
                                   "candidate": b.candidate_index} for b in edit.text_boxes])
    return record


def compute_segments(state: UserState, host: Host) -> None:
    from segfill.sam.segment_map import compute_segment_map

    image = state.require_image()
    session = ensure_session(state, host)
    with board_of(host).run(state.channel, "segment_map", "Computing the segment map…") as task:
        state.segment_map = compute_segment_map(session.model, image, cache=host.embeddings,
                                                progress=task.progress, should_stop=task.token)
    state.segment_map_revision += 1
    state.revision += 1
    state.message = _segment_map_message(state)


def _segment_map_message(state: UserState) -> str:
    count = len(state.segment_map)
    if count == 0:
        return "SAM found no segments in this image; select with clicks, a box or the brush instead."
    noun = "segment" if count == 1 else "segments"
    return f"Segment map: {count} {noun}. Click or scribble to add them (right button removes)."


def set_controls(state: UserState, op: str | None = None, coalesce: bool = True, **refinement: Any) -> bool:
    """Apply the combine operation and refinement controls; returns True when something changed. Changes of one
    control in quick succession (a slider drag) are one undo step unless ``coalesce`` is False."""
    from segfill.args import parse_args_model

    edit = state.edit
    new_op = (op or edit.op).lower()
    if new_op not in COMBINE_OPS:
        raise InputError(f"Unknown way to combine selections {op!r}; use one of {', '.join(COMBINE_OPS)}.")
    values = edit.refinement.dict()
    values.update({k: v for k, v in refinement.items() if v is not None})
    new_refinement = parse_args_model(MaskRefinement, values)
    if new_op == edit.op and new_refinement == edit.refinement:
        return False
    old_values = edit.refinement.dict()
    changed = [k for k, v in new_refinement.dict().items() if old_values.get(k) != v]
    key = changed[0] if (coalesce and new_op == edit.op and len(changed) == 1) else None
    state.push(replace(edit, op=new_op, refinement=new_refinement), coalesce=key)
    return True


def make_download(state: UserState, what: str) -> Download:
    """Full-resolution mask PNG (L), RGBA cut-out PNG or the result on the canvas (PNG) as a data URL."""
    from segfill.masks import mask_to_image
    from segfill.ui.dataurl import png_data_url

    if what == "result":
        from segfill.ui.workspace import result_download

        return result_download(state)
    image = state.require_image()
    mask = state.final_mask()
    mask_image = mask_to_image(mask)
    if what == "mask":
        return Download("segfill-mask.png", png_data_url(mask_image))
    if what == "cutout":
        from PIL import Image

        rgba = Image.fromarray(image, "RGB").convert("RGBA")
        rgba.putalpha(mask_image)
        return Download("segfill-cutout.png", png_data_url(rgba))
    raise InputError(f"Unknown download {what!r}; choose 'mask', 'cutout' or 'result'.")


def cancelled_message(exc: Cancelled) -> str:
    """What the canvas says after the user cancelled a long job: nothing changed, and what happens next."""
    what = exc.what
    if what.startswith("encoding"):
        hint = "the next click encodes the image again (on a CPU, MobileSAM takes a fraction of the time)."
    elif what.startswith("loading"):
        hint = "the next click loads the model again, or choose another in the Model panel."
    elif what.startswith("the segment map"):
        hint = "press Segment map again to start over."
    else:
        hint = "start it again when you like."
    return f"{exc} Nothing was changed; {hint}"


def handle_events(state: UserState | None, events: Any, host: Host,
                  progress: Any = None) -> tuple[UserState, str | None]:
    """Apply a batch of browser events (a JSON list, a dict, or a JSON string). Stops at the first error and
    returns it as a message; the state keeps everything that was applied before it."""
    import json

    state = state or UserState()
    if isinstance(events, str):
        try:
            events = json.loads(events) if events.strip() else []
        except ValueError:
            return state, "The browser sent an unreadable event; please reload the page."
    if isinstance(events, dict):
        events = [events]
    error = None
    state.message = ""
    with state.lock:
        for event in list(events)[:MAX_EVENTS_PER_CALL]:
            if not isinstance(event, dict):
                continue
            try:
                apply_event(state, event, host, progress)
            except Cancelled as exc:  # the user's own Cancel: a message, not an error
                state.message = cancelled_message(exc)
                break
            except SegFillError as exc:
                error = str(exc)
                break
        if any(state.edit.frame) or state.frame_plan is not None:
            from segfill.ui.workspace import ensure_frame_plan

            ensure_frame_plan(state, host)
    return state, error
