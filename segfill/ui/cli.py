"""``python -m segfill serve``: the SegFill tab as a standalone app (same UI, same JS and CSS as in the WebUI)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from segfill import defaults
from segfill.errors import InputError, ModelError

MODELS_ENV = "SEGFILL_MODELS"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the SegFill UI and REST API in a browser, without the WebUI",
        description="Run the SegFill tab standalone: click-to-mask with SAM, mask refinement, inpaint and outpaint "
                    "through the OpenCV or diffusers backend. Listens on 127.0.0.1 unless --host says otherwise.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7870, help="port (default 7870)")
    parser.add_argument("--sam-checkpoint", type=Path, default=None,
                        help="a SAM checkpoint file; becomes the default model")
    parser.add_argument("--models-dir", type=Path, action="append", default=[],
                        help=f"folder with SAM checkpoints (repeatable; also ${MODELS_ENV}, '{os.pathsep}'-separated)")
    parser.add_argument("--backend", choices=("opencv", "diffusers"), default="opencv",
                        help="inpainting backend (default opencv: no model, no prompts)")
    parser.add_argument("--model", default=None,
                        help="diffusers backend: an SD2-inpainting checkpoint file or model folder / id")
    parser.add_argument("--device", default="auto", help="device for SAM (auto, cpu, cuda, mps)")
    parser.add_argument("--embedding-cache-mib", type=int, default=defaults.EMBEDDING_CACHE_BYTES >> 20,
                        metavar="MIB", help="memory for cached SAM image embeddings, shared by all users "
                        f"(default {defaults.EMBEDDING_CACHE_BYTES >> 20})")
    parser.set_defaults(func=run)


def model_folders(args: argparse.Namespace) -> list[Path]:
    """--sam-checkpoint's folder first, then --models-dir, then the defaults (which include $SEGFILL_MODELS)."""
    from segfill.sam.folders import default_model_folders, unique_folders

    folders: list[Path] = []
    checkpoint = getattr(args, "sam_checkpoint", None)
    if checkpoint is not None:
        if not checkpoint.is_file():
            raise InputError(f"The SAM checkpoint {checkpoint} does not exist.")
        folders.append(checkpoint.resolve().parent)
    folders += [Path(p) for p in args.models_dir]
    folders += default_model_folders()
    return unique_folders(folders)


def build_host(args: argparse.Namespace) -> Any:
    from segfill.backends import create_backend
    from segfill.hosts.base import HostDefaults
    from segfill.hosts.standalone import StandaloneHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import EmbeddingCache

    cache_mib = getattr(args, "embedding_cache_mib", defaults.EMBEDDING_CACHE_BYTES >> 20)
    if cache_mib < 0:
        raise InputError(f"--embedding-cache-mib must be 0 or more, not {cache_mib}.")
    manager = SamManager(model_folders(args), device=args.device)
    host_defaults = HostDefaults()
    if args.sam_checkpoint is not None:
        host_defaults.sam_model = default_model_name(manager, args.sam_checkpoint)
    backend_options = {"model": args.model} if (args.backend == "diffusers" and args.model) else {}
    backend = create_backend(args.backend, **backend_options)
    return StandaloneHost(manager, backend, embeddings=EmbeddingCache(cache_mib << 20), defaults=host_defaults)


def default_model_name(manager: Any, checkpoint: Path) -> str:
    """The name ``manager.list_models()`` uses for ``checkpoint`` (so the model picker shows it selected).

    The file is loaded here, at start, through the same loader every click uses: whatever the loader would
    refuse (a TorchScript archive, pickled objects, a truncated file, a bad safetensors header, tensors of
    the wrong shapes) stops ``serve`` with the loader's one sentence instead of failing at the first click;
    the model stays loaded for that click."""
    manager.get_path(checkpoint)
    resolved = checkpoint.resolve()
    for entry in manager.list_models():
        path = getattr(entry, "path", None)
        if path is not None and Path(path).resolve() == resolved:
            return getattr(entry, "name", str(entry))
        if isinstance(entry, str) and entry in (checkpoint.name, checkpoint.stem, str(checkpoint)):
            return entry
    raise ModelError(f"{checkpoint} loads but is not listed as a SAM model in {checkpoint.parent}.")


def run(args: argparse.Namespace) -> int:
    from segfill.app import serve

    host = build_host(args)
    serve(host, server_name=args.host, port=args.port)
    return 0
