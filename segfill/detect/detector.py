"""Text -> boxes with labels and scores: one function over a :class:`~segfill.detect.loading.LoadedDetector`.

The boxes are exactly what the family's own transformers post-processing returns (GroundingDINO's
``post_process_grounded_object_detection``, OWL-ViT/OWLv2's ``post_process_object_detection``, SAM 3's
``post_process_instance_segmentation``), in image pixels, then clipped to the image; boxes under a pixel after
clipping are dropped, the rest sorted by score (highest first) and capped at ``max_boxes``.

The text is split into phrases at ``.``, ``,``, ``;`` and new lines: OWL-ViT/OWLv2 get one query per phrase
(the label is the phrase), GroundingDINO the phrases as ``"a cat. a dog."`` (the label is the phrase its
tokens matched, special tokens removed).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segfill import defaults
from segfill.errors import InputError

_SPLIT = re.compile(r"[.,;\n]+")
_SPECIAL_TOKENS = re.compile(r"\[(CLS|SEP|PAD|MASK|UNK)\]|<\|(startoftext|endoftext)\|>")
MAX_TEXT_CHARS = 500
MAX_PHRASES = 16


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    score: float
    label: str
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)  # SAM 3's own mask (bool H×W)

    def to_dict(self) -> dict[str, Any]:
        return {"box": [float(v) for v in self.box], "score": float(self.score), "label": self.label}


@dataclass(frozen=True)
class DetectionResult:
    detections: tuple[Detection, ...]
    text: str
    detector: str  # the source the user named
    family: str
    model_key: str
    box_threshold: float
    text_threshold: float | None
    image_size: tuple[int, int]

    @property
    def boxes(self) -> list[tuple[float, float, float, float]]:
        return [d.box for d in self.detections]

    def __len__(self) -> int:
        return len(self.detections)

    def to_dict(self) -> dict[str, Any]:
        """What manifests and the API record: text, detector, thresholds, boxes with labels and scores."""
        return {"text": self.text, "detector": self.detector, "detector_family": self.family,
                "detector_key": self.model_key, "box_threshold": self.box_threshold,
                "text_threshold": self.text_threshold, "detections": [d.to_dict() for d in self.detections]}


def split_phrases(text: str) -> list[str]:
    """``"a red ball, the dog."`` -> ``["a red ball", "the dog"]``; empty or huge texts are an InputError."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("Type what to select, e.g. 'a dog' (several things: 'a dog. a ball').")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"The text is {len(text)} characters long; keep it under {MAX_TEXT_CHARS}.")
    phrases = [" ".join(part.split()) for part in _SPLIT.split(text)]
    phrases = [p for p in dict.fromkeys(phrases) if p]
    if not phrases:
        raise InputError("Type what to select, e.g. 'a dog' (several things: 'a dog. a ball').")
    if len(phrases) > MAX_PHRASES:
        raise InputError(f"The text names {len(phrases)} things; ask for at most {MAX_PHRASES} at a time.")
    return phrases


def check_threshold(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise InputError(f"The {what} must be between 0 and 1, not {value}.")
    return number


def clean_label(label: str, fallback: str) -> str:
    """A label as a person reads it: special tokens and stray dots removed; ``fallback`` when nothing is left."""
    text = " ".join(_SPECIAL_TOKENS.sub(" ", str(label)).replace(" .", ".").split()).strip(" .")
    return text or fallback


def detect(loaded: Any, image: Any, text: str, box_threshold: float | None = None,
           text_threshold: float | None = None, max_boxes: int = defaults.DETECT_MAX_BOXES) -> DetectionResult:
    """Run the detector on ``image`` (RGB uint8 array or PIL) for ``text``; see the module doc."""
    import torch
    from PIL import Image

    from segfill.masks import image_to_rgb

    family = loaded.family
    phrases = split_phrases(text)
    box_threshold = check_threshold(box_threshold, "box threshold")
    text_threshold = check_threshold(text_threshold, "text threshold")
    if box_threshold is None:
        box_threshold = family.box_threshold
    if family.uses_text_threshold and text_threshold is None:
        text_threshold = defaults.DETECT_TEXT_THRESHOLD
    if not family.uses_text_threshold:
        text_threshold = None
    rgb = image_to_rgb(image)
    height, width = rgb.shape[:2]
    pil = Image.fromarray(rgb, "RGB")
    with torch.inference_mode():
        if family.name == "grounding_dino":
            raw = _grounding_dino(loaded, pil, phrases, box_threshold, text_threshold, (height, width))
        elif family.name in ("owlvit", "owlv2"):
            raw = _owl(loaded, pil, phrases, box_threshold, (height, width))
        else:
            raw = _sam3(loaded, pil, phrases, box_threshold, (height, width))
    detections = []
    for box, score, label, mask in raw:
        clipped = _clip_box(box, width, height)
        if clipped is not None:
            detections.append(Detection(clipped, float(score), clean_label(label, phrases[0]), mask))
    detections.sort(key=lambda d: -d.score)  # stable: equal scores keep the model's order
    return DetectionResult(tuple(detections[:max_boxes]), text, loaded.source, family.name, loaded.model_key,
                           float(box_threshold), text_threshold, (width, height))


def _clip_box(box: Any, width: int, height: int) -> tuple[float, float, float, float] | None:
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(np.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    x0, x1 = sorted((min(max(x0, 0.0), float(width)), min(max(x1, 0.0), float(width))))
    y0, y1 = sorted((min(max(y0, 0.0), float(height)), min(max(y1, 0.0), float(height))))
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return (x0, y0, x1, y1)


def _inputs_to(inputs: Any, device: str) -> Any:
    return inputs.to(device) if hasattr(inputs, "to") else inputs


def _grounding_dino(loaded: Any, image: Any, phrases: list[str], box_threshold: float, text_threshold: float,
                    size: tuple[int, int]) -> list[tuple]:
    prompt = ". ".join(p.lower() for p in phrases) + "."
    inputs = _inputs_to(loaded.processor(images=image, text=prompt, return_tensors="pt"), loaded.device)
    outputs = loaded.model(**inputs)
    post = loaded.processor.post_process_grounded_object_detection
    names = inspect.signature(post).parameters
    thresholds = ({"box_threshold": box_threshold} if "box_threshold" in names else {"threshold": box_threshold})
    result = post(outputs, inputs["input_ids"], text_threshold=text_threshold, target_sizes=[size], **thresholds)[0]
    labels = result.get("text_labels", result.get("labels"))
    return [(box, score, label, None) for box, score, label in
            zip(result["boxes"].tolist(), result["scores"].tolist(), list(labels), strict=True)]


def _owl(loaded: Any, image: Any, phrases: list[str], box_threshold: float, size: tuple[int, int]) -> list[tuple]:
    import torch

    inputs = _inputs_to(loaded.processor(text=[phrases], images=image, return_tensors="pt"), loaded.device)
    outputs = loaded.model(**inputs)
    result = loaded.processor.post_process_object_detection(
        outputs, threshold=box_threshold, target_sizes=torch.tensor([size], device=loaded.device))[0]
    return [(box, score, phrases[int(label)], None) for box, score, label in
            zip(result["boxes"].tolist(), result["scores"].tolist(), result["labels"].tolist(), strict=True)]


def _sam3(loaded: Any, image: Any, phrases: list[str], box_threshold: float, size: tuple[int, int]) -> list[tuple]:
    """SAM 3: each phrase is a concept prompt answered with instance masks, boxes and scores."""
    found = []
    for phrase in phrases:
        inputs = _inputs_to(loaded.processor(images=image, text=phrase, return_tensors="pt"), loaded.device)
        outputs = loaded.model(**inputs)
        result = loaded.processor.post_process_instance_segmentation(
            outputs, threshold=box_threshold, mask_threshold=0.5, target_sizes=[size])[0]
        masks = result.get("masks")
        for index, (box, score) in enumerate(zip(result["boxes"].tolist(), result["scores"].tolist(), strict=True)):
            mask = None if masks is None else np.asarray(masks[index].cpu().numpy(), dtype=bool)
            found.append((box, score, phrase, mask))
    return found
