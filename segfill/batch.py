"""``python -m segfill batch inpaint|outpaint`` over a folder, and ``python -m segfill replay`` of one output.

    python -m segfill batch inpaint --input photos/ --output out/ --sam-checkpoint sam_vit_b.pth \\
        --text "a red ball" --detector IDEA-Research/grounding-dino-tiny --backend opencv
    python -m segfill batch outpaint --input photos/ --output out/ --left 128 --right 128
    python -m segfill replay -1 --manifest out/segfill-manifest.jsonl

One output per input image, named after it (``<stem>.png``; ``<name>.png`` when two inputs share a stem), the
mask beside it (``<stem>.mask.png``), one manifest line each. A bad file is reported on its own line and skipped;
the batch goes on, ends with a one-line summary and exits 1 when any input failed. A rerun with the same
arguments skips inputs whose output exists and whose manifest entry matches (same recipe, same input content,
output file unchanged), so an interrupted batch resumes where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from segfill import defaults
from segfill.errors import InputError, SegFillError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def register(subparsers: argparse._SubParsersAction) -> None:
    from segfill.args import InpaintArgs, OutpaintArgs
    from segfill.outpaint.cli import (
        INPAINT_OPENCV_IGNORES,
        OUTPAINT_OPENCV_IGNORES,
        _add_common,
        add_inpaint_arguments,
        add_outpaint_arguments,
    )
    from segfill.sam.cli import add_text_arguments

    batch = subparsers.add_parser("batch", help="inpaint or outpaint every image in a folder (resumable)",
                                  description="Run inpaint or outpaint over every image in a folder, with a "
                                              "progress bar, a manifest line per output, and resuming.")
    modes = batch.add_subparsers(dest="mode", metavar="inpaint|outpaint")
    modes.required = True
    for mode in ("inpaint", "outpaint"):
        parser = modes.add_parser(mode, help=f"{mode} every image in --input")
        parser.add_argument("--input", required=True, metavar="DIR", help="folder of input images")
        parser.add_argument("--output", required=True, metavar="DIR", help="folder for outputs (created if missing)")
        if mode == "inpaint":
            masks = parser.add_argument_group("mask (one of --text, --point/--box, --mask-dir)")
            masks.add_argument("--mask-dir", default=None, metavar="DIR",
                               help="masks named after the inputs (photo.jpg -> DIR/photo.png), white = repaint")
            masks.add_argument("--sam-checkpoint", default=None, help="SAM model file for --text / --point / --box")
            masks.add_argument("--model-type", default=None, help="SAM architecture (read from the file when left out)")
            masks.add_argument("--point", action="append", default=[], metavar="X,Y[,LABEL]",
                               help="a click in image pixels, the same for every image (repeatable)")
            masks.add_argument("--box", default=None, metavar="X0,Y0,X1,Y1", help="a box, the same for every image")
            masks.add_argument("--candidate", default="best", metavar="best|0|1|2", help="SAM candidate per box/click")
            masks.add_argument("--grow", type=int, default=0, metavar="PX", help="grow each mask by PX pixels")
            masks.add_argument("--shrink", type=int, default=0, metavar="PX", help="shrink each mask by PX pixels")
            masks.add_argument("--fill-holes", action="store_true", help="fill holes inside each mask")
            masks.add_argument("--remove-specks", type=int, default=0, metavar="AREA", help="drop specks under AREA px²")
            masks.add_argument("--invert", action="store_true", help="repaint everything except the selection")
            add_text_arguments(parser)
            add_inpaint_arguments(parser)
            _add_common(parser, InpaintArgs, opencv_ignores=INPAINT_OPENCV_IGNORES, single=False)
        else:
            add_outpaint_arguments(parser)
            _add_common(parser, OutpaintArgs, opencv_ignores=OUTPAINT_OPENCV_IGNORES, single=False)
        parser.add_argument("--sam-device", default="auto", help="device for SAM and the detector")
        parser.set_defaults(func=run_batch, command="batch")

    replay = subparsers.add_parser("replay", help="rerun one manifest entry (bit for bit with a deterministic backend)",
                                   description="Rerun one entry of segfill-manifest.jsonl and compare with its output.")
    replay.add_argument("entry", metavar="MANIFEST_LINE|INDEX",
                        help="one JSON line of a manifest, or its index (0 = first, -1 = last)")
    replay.add_argument("--manifest", default=None, metavar="PATH",
                        help=f"manifest file or folder for an index (default ./{defaults.MANIFEST_NAME})")
    replay.add_argument("--output", default=None, metavar="PATH",
                        help="where to write the rerun (default: beside the original, '<name>.replay.png')")
    replay.add_argument("--check", action="store_true", help="exit 1 when the rerun differs from the recorded output")
    replay.set_defaults(func=run_replay)


def list_inputs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"The input folder {folder} does not exist.")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise InputError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}).")
    return found


def output_names(inputs: list[Path]) -> dict[Path, str]:
    """``photo.jpg`` -> ``photo.png``; inputs sharing a stem keep their suffix (``a.jpg.png``, ``a.png.png``)."""
    stems: dict[str, int] = {}
    for path in inputs:
        stems[path.stem] = stems.get(path.stem, 0) + 1
    return {path: (path.stem if stems[path.stem] == 1 else path.name) + ".png" for path in inputs}


def find_mask(mask_dir: Path, image: Path) -> Path:
    for suffix in (".png", *IMAGE_SUFFIXES):
        for name in (image.stem + suffix, image.name + suffix):
            candidate = mask_dir / name
            if candidate.is_file():
                return candidate
    raise InputError(f"No mask for {image.name} in {mask_dir} (expected {image.stem}.png).")


def mask_recipe(ns: argparse.Namespace) -> dict[str, Any]:
    """The mask part of each job, checked once before any model is loaded."""
    from segfill.sam.cli import parse_candidate, parse_numbers, parse_point, refinement_from, text_spec

    points = [list(parse_point(text)) for text in ns.point]
    box = parse_numbers(ns.box, "--box", (4,)) if ns.box is not None else None
    text = text_spec(ns)
    ways = sum(bool(x) for x in (ns.mask_dir, text, points or box))
    if ways != 1:
        raise InputError("batch inpaint needs exactly one way to make masks: --text, --point/--box, or --mask-dir.")
    refinement = refinement_from(_RefinementView(ns)).dict()
    if ns.mask_dir:
        if not Path(ns.mask_dir).is_dir():
            raise InputError(f"The mask folder {ns.mask_dir} does not exist.")
        return {"refinement": refinement}
    if not ns.sam_checkpoint:
        raise InputError("Selecting by --text, --point or --box needs --sam-checkpoint.")
    if not Path(ns.sam_checkpoint).is_file():
        raise InputError(f"SAM checkpoint {ns.sam_checkpoint!r} not found.")
    return {**text, "points": points, "box": box, "sam_checkpoint": str(Path(ns.sam_checkpoint).resolve()),
            "model_type": ns.model_type, "candidate": parse_candidate(ns.candidate), "refinement": refinement}


class _RefinementView:
    """The mask refinement options of ``batch inpaint`` (its --feather is the inpaint's soft edge, not the mask's)."""

    def __init__(self, ns: argparse.Namespace) -> None:
        self.grow, self.shrink, self.fill_holes = ns.grow, ns.shrink, ns.fill_holes
        self.remove_specks, self.invert, self.feather = ns.remove_specks, ns.invert, 0.0


def run_batch(ns: argparse.Namespace) -> int:
    from segfill.jobs import JobModels, output_matches, run_job
    from segfill.outpaint.cli import backend_spec, check_model_argument, inpaint_args_from, outpaint_args_from
    from segfill.provenance import Manifest, file_sha256
    from segfill.sam.download import tqdm_progress
    from segfill.sam.manager import resolve_device

    inputs = list_inputs(Path(ns.input))
    out_dir = Path(ns.output)
    if out_dir.resolve() == Path(ns.input).resolve():
        raise InputError("Write the outputs to another folder than the inputs (they would be read as inputs next time).")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the output folder {out_dir}: {exc.strerror or exc}.") from None
    args = (inpaint_args_from(ns) if ns.mode == "inpaint" else outpaint_args_from(ns)).dict()
    recipe = mask_recipe(ns) if ns.mode == "inpaint" else None
    check_model_argument(ns)
    backend = backend_spec(ns)
    models = JobModels(device=resolve_device(ns.sam_device), detector_progress=tqdm_progress)
    manifest = Manifest(out_dir)
    latest = {str((e.get("output") or {}).get("path")): e for e in manifest.entries()}
    names = output_names(inputs)
    done = skipped = failed = 0
    bar = _bar(len(inputs), ns.quiet)
    for path in inputs:
        output = (out_dir / names[path]).resolve()
        job: dict[str, Any] = {"mode": ns.mode, "image": str(path.resolve()), "output": str(output),
                               "args": args, "backend": backend}
        started = False
        try:
            if recipe is not None:
                job["mask"] = dict(recipe)
                if ns.mask_dir:
                    job["mask"]["file"] = str(find_mask(Path(ns.mask_dir), path).resolve())
            if output_matches(latest.get(str(output)), job, file_sha256(path)):
                skipped += 1
            else:
                started = True
                run_job(job, models, source="batch")
                done += 1
        except Exception as exc:  # one bad file never stops the batch; run_job logged it once it started
            failed += 1
            if not started:
                _log_failure(manifest, job, exc)
            _write(bar, f"segfill batch {ns.mode}: {path.name}: {exc}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    summary = (f"segfill batch {ns.mode}: {done} done, {skipped} skipped (already done), {failed} failed "
               f"of {len(inputs)}; manifest: {manifest.path}")
    print(summary, file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _log_failure(manifest: Any, job: dict[str, Any], exc: BaseException) -> None:
    """A failure before the job ran (no mask for it, an unreadable file): still one manifest line."""
    from segfill.provenance import job_key, now_iso

    manifest.append({"time": now_iso(), "source": "batch", "mode": job["mode"], "status": "failed",
                     "error": str(exc), "job_key": job_key(job), "job": job,
                     "input": {"path": job["image"]}, "output": {"path": None}, "seconds": 0.0})


def _bar(total: int, quiet: bool):
    if quiet:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="image", file=sys.stderr, dynamic_ncols=True, desc="batch")


def _write(bar: Any, line: str) -> None:
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def run_replay(ns: argparse.Namespace) -> int:
    from segfill.jobs import JobModels, mask_path_for, run_job
    from segfill.provenance import file_sha256, read_entry

    entry = read_entry(ns.entry, ns.manifest)
    job = dict(entry["job"])
    backend = (job.get("backend") or {}).get("name")
    if backend == "webui":
        checkpoint = (job.get("backend") or {}).get("checkpoint") or "its checkpoint"
        raise SegFillError(f"This output was made by the WebUI with {checkpoint}; rerun it from the WebUI "
                           "(the image's infotext has the parameters).")
    recorded_input = (entry.get("input") or {}).get("sha256")
    image = Path(job["image"])
    if not image.is_file():
        raise InputError(f"The input {image} of this entry no longer exists.")
    if recorded_input and file_sha256(image) != recorded_input:
        raise InputError(f"The input {image} changed since this entry was made; its content hash differs.")
    mask = dict(job.get("mask") or {})
    if mask.get("file") and not Path(mask["file"]).is_file():
        raise InputError(f"The mask {mask['file']} of this entry no longer exists.")
    original = Path(job["output"])
    target = Path(ns.output) if ns.output else original.with_name(original.stem + ".replay" + original.suffix)
    if target.resolve() == original.resolve() or target.resolve() == mask_path_for(original).resolve():
        raise InputError("Write the replay somewhere else than the original output (--output).")
    job["output"] = str(target.resolve())
    result = run_job(job, JobModels(), source="replay")
    recorded = (entry.get("output") or {}).get("sha256")
    fresh = result.entry["output"]["sha256"]
    same = recorded is not None and fresh == recorded
    print(f"replayed to {target}: {'identical to' if same else 'differs from'} the recorded output "
          f"{original} (sha256 {fresh[:16]}{'' if same else ' vs ' + str(recorded)[:16]})")
    return 1 if (ns.check and not same) else 0
