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
from segfill.errors import InputError, SegFillError
from segfill.history import UndoHistory
from segfill.masks import pack_mask, unpack_mask
from segfill.sam.session import validate_box, validate_points

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
    """An older SAM answer kept for undo: candidates bit-packed (an 8000×6000 image's three candidates take
    kilobytes instead of 144 MB); same ``masks`` / ``scores`` / ``best_index`` interface as ``Prediction``."""

    def __init__(self, prediction: Any) -> None:
        self.packed = [PackedMask.pack(np.asarray(mask, dtype=bool)) for mask in prediction.masks]
        self.scores = np.asarray(prediction.scores, dtype=np.float32)
        self.best_index = int(prediction.best_index)

    @property
    def masks(self) -> np.ndarray:
        return np.stack([packed.unpack() for packed in self.packed])

    def __len__(self) -> int:
        return len(self.packed)


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
        self.timings: dict[str, float] = {}  # of the last browser call (ms), sent with the payload for benchmarks
        self._mask_cache: tuple[Edit | None, np.ndarray | None, np.ndarray | None] = (None, None, None)

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
            selection = np.asarray(edit.prediction.masks[edit.candidate_index], dtype=bool)
        if edit.segment_ids and self.segment_map is not None:
            segments = self.segment_map.mask_of(edit.segment_ids)
            selection = segments if selection is None else (selection | segments)
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
def set_image(state: UserState, image: Any, host: Host, model_name: str | None = None, embed: bool = True) -> None:
    """Make ``image`` the user's image: clears selections and history, computes (or reuses) the embedding
    (``embed=False``: later, by :func:`ensure_session`, so the canvas can show the photo first)."""
    from segfill.masks import image_to_rgb

    rgb = np.ascontiguousarray(image_to_rgb(image))
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError("The image is too small; it must be at least 2×2 pixels.")
    state.image = rgb
    state.segment_map = None
    state.pending_result = None
    state.viewport = None
    state.frame_plan = None
    if embed:
        ensure_session(state, host, model_name)


def clear_image(state: UserState) -> None:
    state.image = None
    state.segment_map = None
    state.pending_result = None
    state.viewport = None
    state.frame_plan = None
    if state.session is not None:
        state.session.reset_image()


def ensure_session(state: UserState, host: Host, model_name: str | None = None) -> SamSession:
    """The user's SAM session on the current image with the chosen model (shared model, shared cache)."""
    from segfill.sam.session import SamSession

    image = state.require_image()
    wanted = model_name or state.model_name or host.defaults().sam_model
    # a kept session goes stale when SAM was unloaded (idle, model switch) or offloaded for a generation: its
    # model would sit on the wrong device or pin memory the manager meant to free
    if state.session is None or wanted != state.model_name or not host.sam.is_current(state.session.model):
        if not wanted:
            names = model_names(host)
            if not names:
                raise SegFillError(NO_MODEL_MESSAGE)
            wanted = names[0]
        loaded = host.sam.get(wanted)
        state.session = SamSession(loaded, cache=host.embeddings)
        state.model_name = wanted
    session = state.session
    # set_image is free for a cached embedding but forgets the last prompt (whose logits refine the next
    # click), so call it only when the image or the model really changed.
    if state.session_image != (state.image_revision, id(session)) or not session.is_image_set:
        session.set_image(image)
        state.session_image = (state.image_revision, id(session))
    return session


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
    state.push(replace(state.edit, points=(), box=None, prediction=None, candidate=None, segment_ids=frozenset()))


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


def apply_event(state: UserState, event: dict[str, Any], host: Host) -> None:
    """Apply one browser event (a dict decoded from the canvas' JSON) to ``state``."""
    kind = event.get("type")
    edit = state.edit
    if kind == "undo":
        state.undo()
    elif kind == "redo":
        state.redo()
    elif kind in ("clear", "escape"):  # Esc: drop the current selection, keep the working mask and strokes
        state.push(replace(edit, points=(), box=None, prediction=None, candidate=None, segment_ids=frozenset()))
    elif kind == "reset":  # everything, but keep the controls
        state.push(Edit(op=edit.op, refinement=edit.refinement, image_key=edit.image_key, frame=edit.frame))
    elif kind == "point":
        size = state.require_image().shape[1::-1]
        x, y, label = _numbers({"label": 1, **event}, ("x", "y", "label"), "A click")
        points = edit.points + validate_points([(x, y, 0 if label == 0 else 1)], size)
        state.push(replace(edit, points=points, prediction=_predict(state, host, points, edit.box), candidate=None))
    elif kind == "box":
        size = state.require_image().shape[1::-1]
        box = validate_box(_numbers(event, ("x0", "y0", "x1", "y1"), "A box"), size)
        state.push(replace(edit, box=box, prediction=_predict(state, host, edit.points, box), candidate=None))
    elif kind == "candidate":
        if edit.prediction is None:
            raise InputError("There are no candidates yet; click on the image first.")
        index = int(_number(event, "index", -1, "Choosing a candidate"))
        if not 0 <= index < len(edit.prediction.scores):
            raise InputError(f"Candidate {index + 1} does not exist.")
        session = state.session
        if session is not None and session.last_prediction is edit.prediction:
            session.choose(index)  # the next point refines this candidate, as in SAM's own interactive tool
        state.push(replace(edit, candidate=index))
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
    elif kind == "download":
        state.pending_download = make_download(state, str(event.get("what", "mask")))
    elif kind in WORKSPACE_EVENTS:  # results, the outpaint frame, the zoomed-in view
        from segfill.ui import workspace

        workspace.apply_event(state, event, host)
    elif kind == "noop":
        if event.get("need_image"):  # the browser lost the image (e.g. a reloaded tab): send it again
            state.sent_image_revision = None
            state.sent_thumbs_of = None
    else:
        raise InputError(f"Unknown canvas event {kind!r}.")


def compute_segments(state: UserState, host: Host) -> None:
    from segfill.sam.segment_map import compute_segment_map

    image = state.require_image()
    session = ensure_session(state, host)
    state.segment_map = compute_segment_map(session.model, image, cache=host.embeddings)
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


def handle_events(state: UserState | None, events: Any, host: Host) -> tuple[UserState, str | None]:
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
                apply_event(state, event, host)
            except SegFillError as exc:
                error = str(exc)
                break
        if any(state.edit.frame) or state.frame_plan is not None:
            from segfill.ui.workspace import ensure_frame_plan

            ensure_frame_plan(state, host)
    return state, error
