"""``python -m segfill mask``: click-to-mask (or select by text) from the command line.

    python -m segfill mask --image photo.jpg --sam-checkpoint sam_vit_b_01ec64.pth \\
        --point 420,310 --point 600,200,0 --grow 8 --feather 4 --output mask.png
    python -m segfill mask --image photo.jpg --sam-checkpoint sam_vit_b_01ec64.pth \\
        --text "a red ball" --detector IDEA-Research/grounding-dino-tiny --boxes-json boxes.json --output mask.png

Writes an 8-bit grey (mode L) PNG of the input's size, white = selected, and a line in the output folder's
``segfill-manifest.jsonl``. With ``--text`` the detector's boxes (each answered by SAM) are united.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from segfill.errors import InputError, ModelError

COMMAND = "mask"


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        COMMAND,
        help="select an object with Segment Anything and write its mask",
        description="Select an object with Segment Anything from points and/or a box; write its mask as a PNG.",
    )
    parser.add_argument("--image", required=True, help="input image")
    parser.add_argument("--sam-checkpoint", required=True, help="SAM model file (.pth / .safetensors)")
    parser.add_argument("--model-type", default=None, help="architecture (vit_b, vit_l, vit_h, ...; default: read from the file)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default auto: CUDA, else MPS, else the CPU)")
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in image pixels; LABEL 1 (default) includes, 0 excludes; repeat for more points",
    )
    parser.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box around the object, in image pixels")
    add_text_arguments(parser)
    parser.add_argument(
        "--candidate",
        default="best",
        metavar="best|0|1|2",
        help="which of SAM's candidate masks to keep: the best-scored one (default) or a fixed index",
    )
    parser.add_argument("--grow", type=int, default=0, metavar="PX", help="grow the mask by PX pixels (default 0)")
    parser.add_argument("--shrink", type=int, default=0, metavar="PX", help="shrink the mask by PX pixels (default 0)")
    parser.add_argument("--fill-holes", action="store_true", help="fill holes inside the selection")
    parser.add_argument("--remove-specks", type=int, default=0, metavar="AREA", help="drop islands and holes smaller than AREA px² (default 0: keep all)")
    parser.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften the edge outward over PX pixels (default 0: a hard edge)")
    parser.add_argument("--invert", action="store_true", help="select everything except the object")
    parser.add_argument("--output", required=True, help="output PNG (mode L)")
    parser.add_argument("--boxes-json", default=None, metavar="OUT.json",
                        help="with --text: also write the detected boxes, labels and scores as JSON (default: not written)")
    parser.set_defaults(func=run_mask)
    return parser


def add_text_arguments(parser: argparse.ArgumentParser) -> None:
    """--text / --detector / --box-threshold / --text-threshold (mask and batch commands)."""
    from segfill import defaults

    group = parser.add_argument_group("select by text")
    group.add_argument("--text", default=None, help="what to select, e.g. 'a red ball' (several: 'a dog. a ball'); default: none, select "
                            "with --point/--box instead")
    group.add_argument("--detector", default=None, metavar="ID_OR_FOLDER",
                       help="GroundingDINO / OWL-ViT / OWLv2 / SAM 3: a hub id (downloaded once), a local folder or "
                            "a family name (grounding_dino, owlvit, owlv2, sam3); default: the best one installed")
    group.add_argument("--box-threshold", type=float, default=None, metavar="F",
                       help="score a box needs, 0..1 (default per detector: "
                            + ", ".join(f"{k} {v}" for k, v in defaults.DETECT_BOX_THRESHOLD.items()) + ")")
    group.add_argument("--text-threshold", type=float, default=None, metavar="F",
                       help=f"GroundingDINO: score a word needs to label a box (default {defaults.DETECT_TEXT_THRESHOLD})")


def text_spec(args: argparse.Namespace) -> dict:
    """The text part of a job's mask recipe, checked (thresholds in 0..1, a non-empty text)."""
    from segfill.detect.detector import check_threshold, split_phrases

    if args.text is None:
        if args.detector is not None:
            raise InputError("--detector needs --text (what to select).")
        return {}
    split_phrases(args.text)
    return {"text": args.text, "detector": args.detector,
            "box_threshold": check_threshold(args.box_threshold, "box threshold"),
            "text_threshold": check_threshold(args.text_threshold, "text threshold")}


def refinement_from(args: argparse.Namespace):
    from segfill.args import MaskRefinement, parse_args_model

    return parse_args_model(MaskRefinement, {
        "grow": args.grow, "shrink": args.shrink, "fill_holes": args.fill_holes,
        "remove_specks": args.remove_specks, "invert": args.invert, "feather": args.feather})


def parse_numbers(text: str, what: str, counts: Sequence[int]) -> list[float]:
    """``"12,34"`` -> ``[12.0, 34.0]``; any other shape of text is an :class:`InputError` naming ``what``."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in counts or not all(v == v and abs(v) != float("inf") for v in values):
        raise InputError(f"Cannot read {what} {text!r}; write it as {_shape_hint(what)}.")
    return values


def _shape_hint(what: str) -> str:
    return {"--point": "X,Y or X,Y,LABEL (LABEL 1 adds, 0 subtracts)", "--box": "X0,Y0,X1,Y1"}.get(what, "numbers separated by commas")


def parse_point(text: str) -> tuple[float, float, int]:
    values = parse_numbers(text, "--point", (2, 3))
    label = 1 if len(values) == 2 else values[2]
    if label not in (0.0, 1.0):
        raise InputError(f"The label of --point {text!r} must be 1 (add) or 0 (subtract).")
    return values[0], values[1], int(label)


def parse_candidate(text: str) -> int | None:
    """``best`` -> None, ``0``/``1``/``2`` -> that index."""
    if str(text).strip().lower() == "best":
        return None
    try:
        index = int(text)
    except ValueError:
        index = -1
    if index not in (0, 1, 2):
        raise InputError(f"--candidate must be best, 0, 1 or 2, not {text!r}.")
    return index


def run_mask(args: argparse.Namespace) -> int:
    from segfill.fileio import check_output_path
    from segfill.jobs import JobModels, run_job
    from segfill.sam.session import validate_box, validate_points

    # Everything the user typed is checked before a model is loaded (loading a vit_h takes a while).
    points = [parse_point(text) for text in args.point]
    box = parse_numbers(args.box, "--box", (4,)) if args.box is not None else None
    text = text_spec(args)
    if not points and box is None and not text:
        raise InputError("Give --text, or at least one --point or a --box.")
    candidate = parse_candidate(args.candidate)
    refinement = refinement_from(args)
    output = check_output_path(args.output)  # a folder, a missing or read-only place: one line, before any work
    if args.boxes_json:
        check_output_path(args.boxes_json)
    if output.suffix.lower() != ".png":
        raise InputError(f"The output must be a .png file, not {output.name!r}.")
    image = read_rgb(Path(args.image))
    image_size = (image.shape[1], image.shape[0])
    validate_points(points, image_size)
    validate_box(box, image_size)
    checkpoint = Path(args.sam_checkpoint)
    if not checkpoint.is_file():
        raise ModelError(f"SAM checkpoint {str(checkpoint)!r} not found.")
    from segfill.sam.manager import resolve_device

    models = JobModels(device=resolve_device(args.device), detector_progress=_download_bar)
    job = {"mode": "mask", "image": str(Path(args.image).resolve()), "output": str(output.resolve()),
           "mask": {**text, "points": [list(p) for p in points], "box": box,
                    "sam_checkpoint": str(checkpoint.resolve()), "model_type": args.model_type,
                    "candidate": candidate, "refinement": refinement.dict()}}
    entry = run_job(job, models, source="cli").entry
    if args.boxes_json:
        write_boxes_json(args.boxes_json, entry.get("selection") or {})
    return 0


def _download_bar(description: str):
    from segfill.sam.download import tqdm_progress

    return tqdm_progress(description)


def write_boxes_json(path: str, selection: dict) -> None:
    """The detected boxes as JSON: text, detector, thresholds, and per box its label, score and SAM's score."""
    import json

    from segfill.fileio import atomic_write_text

    keys = ("text", "detector", "detector_family", "box_threshold", "text_threshold", "detections", "sam_scores",
            "chosen")
    atomic_write_text(path, json.dumps({k: selection.get(k) for k in keys}, indent=1) + "\n")


def read_rgb(path: Path):
    """The image at ``path`` as RGB uint8 ``(H, W, 3)``; unreadable files are an :class:`InputError`."""
    from PIL import Image, UnidentifiedImageError

    from segfill.masks import image_to_rgb

    if not path.is_file():
        raise InputError(f"Image {str(path)!r} not found.")
    try:
        with Image.open(path) as opened:
            opened.load()
            return image_to_rgb(opened)
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"Cannot read image {str(path)!r} ({exc.__class__.__name__}).") from None
