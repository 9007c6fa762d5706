"""``python -m segfill mask``: click-to-mask from the command line.

    python -m segfill mask --image photo.jpg --sam-checkpoint sam_vit_b_01ec64.pth \\
        --point 420,310 --point 600,200,0 --grow 8 --feather 4 --output mask.png

Writes an 8-bit grey (mode L) PNG of the input's size, white = selected.
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
    parser.add_argument("--model-type", default=None, help="architecture (vit_b, vit_l, vit_h, ...); read from the file when left out")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, mps")
    parser.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in image pixels; LABEL 1 (default) includes, 0 excludes; repeat for more points",
    )
    parser.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box around the object, in image pixels")
    parser.add_argument(
        "--candidate",
        default="best",
        metavar="best|0|1|2",
        help="which of SAM's candidate masks to keep: the best-scored one (default) or a fixed index",
    )
    parser.add_argument("--grow", type=int, default=0, metavar="PX", help="grow the mask by PX pixels")
    parser.add_argument("--shrink", type=int, default=0, metavar="PX", help="shrink the mask by PX pixels")
    parser.add_argument("--fill-holes", action="store_true", help="fill holes inside the selection")
    parser.add_argument("--remove-specks", type=int, default=0, metavar="AREA", help="drop islands and holes smaller than AREA px²")
    parser.add_argument("--feather", type=float, default=0.0, metavar="PX", help="soften the edge over PX pixels")
    parser.add_argument("--invert", action="store_true", help="select everything except the object")
    parser.add_argument("--output", required=True, help="output PNG (mode L)")
    parser.set_defaults(func=run_mask)
    return parser


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
    from segfill.args import MaskRefinement, parse_args_model
    from segfill.fileio import check_output_path, save_image
    from segfill.sam.session import SamSession, validate_box, validate_points

    # Everything the user typed is checked before the model is loaded (loading a vit_h takes a while).
    points = [parse_point(text) for text in args.point]
    box = parse_numbers(args.box, "--box", (4,)) if args.box is not None else None
    if not points and box is None:
        raise InputError("Give at least one --point or a --box.")
    candidate = parse_candidate(args.candidate)
    refinement = parse_args_model(
        MaskRefinement,
        {
            "grow": args.grow,
            "shrink": args.shrink,
            "fill_holes": args.fill_holes,
            "remove_specks": args.remove_specks,
            "invert": args.invert,
            "feather": args.feather,
        },
    )
    output = check_output_path(args.output)  # a folder, a missing or read-only place: one line, before any work
    if output.suffix.lower() != ".png":
        raise InputError(f"The output must be a .png file, not {output.name!r}.")
    image = read_rgb(Path(args.image))
    image_size = (image.shape[1], image.shape[0])
    validate_points(points, image_size)
    validate_box(box, image_size)
    checkpoint = Path(args.sam_checkpoint)
    if not checkpoint.is_file():
        raise ModelError(f"SAM checkpoint {str(checkpoint)!r} not found.")

    from segfill.masks import mask_to_image, refine
    from segfill.sam.loading import load_sam
    from segfill.sam.manager import resolve_device

    loaded = load_sam(checkpoint, model_type=args.model_type, device=resolve_device(args.device))
    session = SamSession(loaded)
    session.set_image(image)
    # A fixed candidate index needs SAM's three candidates; "best" lets the session decide.
    prediction = session.predict(points=points, box=box, multimask=True if candidate is not None else None)
    mask = prediction.best_mask if candidate is None else session.choose(candidate)
    save_image(mask_to_image(refine(mask, refinement)), output, format="PNG")  # temporary file, then rename
    return 0


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
