"""``python -m segfill serve``: the SegFill tab as a standalone app (same UI, same JS and CSS as in the WebUI)."""

from __future__ import annotations

import argparse
import errno
import os
import socket
from pathlib import Path
from typing import Any

from segfill import defaults
from segfill.errors import InputError, ModelError

MODELS_ENV = "SEGFILL_MODELS"
#: inside the checkout, ignored by git (.gitignore: /outputs/)
DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parents[2] / "outputs"


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
                        help="a SAM checkpoint file; becomes the default model (default: none, pick or download one in the tab)")
    parser.add_argument("--models-dir", type=Path, action="append", default=[],
                        help=f"folder with SAM checkpoints (repeatable; also ${MODELS_ENV}, '{os.pathsep}'-separated); "
                        f"searched before the default folders: {_default_folders_text()}")
    parser.add_argument("--backend", choices=("opencv", "diffusers"), default="opencv",
                        help="inpainting backend (default opencv: no model, no prompts)")
    parser.add_argument("--model", default=None,
                        help="diffusers backend: an SD2-inpainting checkpoint file, diffusers folder or hub id (no default)")
    parser.add_argument("--device", default="auto", help="device for SAM and the text detector: auto, cpu, cuda, mps "
                                                         "(default auto: CUDA, else MPS, else the CPU)")
    parser.add_argument("--sam-precision", default=defaults.SAM_PRECISION, choices=("auto", "fp32", "bf16"),
                        help="SAM image encoder's number format (default auto: bf16 where the device has native "
                             "bf16 and the model family matches fp32 within 1 %%, else fp32)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR,
                        help="where results of the tab and the API are saved, with their input, mask and a line in "
                             f"segfill-manifest.jsonl (default {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--embedding-cache-mib", type=int, default=defaults.EMBEDDING_CACHE_BYTES >> 20,
                        metavar="MIB", help="memory for cached SAM image embeddings, shared by all users "
                        f"(default {defaults.EMBEDDING_CACHE_BYTES >> 20})")
    parser.set_defaults(func=run)


def _default_folders_text() -> str:
    from segfill.sam.folders import default_model_folders

    return ", ".join(str(folder) for folder in default_model_folders())


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
    manager = SamManager(model_folders(args), device=args.device,
                         precision=getattr(args, "sam_precision", defaults.SAM_PRECISION))
    host_defaults = HostDefaults()
    if args.sam_checkpoint is not None:
        host_defaults.sam_model = default_model_name(manager, args.sam_checkpoint)
    backend_options = {"model": args.model} if (args.backend == "diffusers" and args.model) else {}
    backend = create_backend(args.backend, **backend_options)
    output_dir = getattr(args, "output_dir", None)
    if output_dir is not None:
        check_output_folder(Path(output_dir))  # made on the first save; a place it can never be is one line now
    return StandaloneHost(manager, backend, embeddings=EmbeddingCache(cache_mib << 20), defaults=host_defaults,
                          output_dir=output_dir)


def check_output_folder(folder: Path) -> None:
    """OutputError when ``folder`` is a file, or cannot be created or written (its nearest existing ancestor is
    read-only)."""
    import os

    from segfill.fileio import OutputError

    if folder.exists() and not folder.is_dir():
        raise OutputError(f"The output folder {folder} is a file.")
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write results into {folder}: {existing} is not a writable folder.")


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
    # the port first: a busy one is one line before gradio, SAM and the backend load
    sock = bind_socket(args.host, args.port)
    try:
        host = build_host(args)
        from segfill.app import serve

        serve(host, server_name=args.host, port=args.port, sock=sock)
    finally:
        sock.close()
    return 0


def bind_socket(server_name: str, port: int) -> socket.socket:
    """A listening TCP socket on ``server_name:port`` (port 0: any free port); a port in use or an address
    this machine does not have is an :class:`~segfill.errors.InputError` of one sentence."""
    from segfill.errors import InputError

    try:
        infos = socket.getaddrinfo(server_name, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        raise InputError(f"Cannot listen on {server_name!r}: {getattr(exc, 'strerror', None) or exc}.") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise InputError(f"Port {port} on {server_name} is already in use; stop the program using it or "
                             "choose another with --port.") from None
        raise InputError(f"Cannot listen on {server_name}:{port}: {exc.strerror or exc}.") from None
    return sock
