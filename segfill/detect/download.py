"""First-use download of a detector from the Hugging Face hub into a plain folder, loaded offline afterwards.

A hub id such as ``IDEA-Research/grounding-dino-tiny`` becomes the folder ``<detectors>/IDEA-Research--grounding-dino-tiny``
holding the repository's top-level ``*.json``, ``*.txt`` and ``*.safetensors`` files (never pickled ``*.bin``
weights, which can run code when loaded). Every file goes through SegFill's checksum-verified downloader
(:func:`segfill.sam.download.download_model`: streamed to ``.part``, SHA-256 from the hub's LFS metadata, renamed
when verified), into ``<folder>.part/`` first; the folder is renamed into place only when complete, so a folder
that exists is a whole model and the next run needs no network at all.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segfill.errors import DownloadError, MissingDependencyError

#: the files of a repository a detector needs (configs, vocabularies, merges, safetensors weights)
WANTED_SUFFIXES = (".json", ".txt", ".safetensors", ".model")

ProgressCallback = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int | None = None
    sha256: str | None = None


Lister = Callable[[str], Sequence[HubFile]]


def folder_name(repo_id: str) -> str:
    """``owner/name`` -> ``owner--name`` (the hub cache's own spelling, one folder level)."""
    return repo_id.replace("/", "--")


def list_hub_files(repo_id: str) -> list[HubFile]:
    """The files of ``repo_id`` with sizes and LFS SHA-256s, from the hub's API (needs ``huggingface_hub``)."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise MissingDependencyError("huggingface_hub", "Downloading a detector") from None
    try:
        info = HfApi().model_info(repo_id, files_metadata=True)
    except Exception as exc:  # RepositoryNotFoundError, GatedRepoError, offline, connection errors
        raise DownloadError(f"Cannot list the files of {repo_id} on the Hugging Face hub ({_reason(exc)}); "
                            "check the id and the network, or give a local folder.") from None
    files = []
    for sibling in info.siblings or ():
        lfs = getattr(sibling, "lfs", None)
        sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
        files.append(HubFile(sibling.rfilename, getattr(sibling, "size", None), sha))
    return files


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "Gated" in name or "401" in str(exc) or "403" in str(exc):
        return "it is gated: accept its licence on huggingface.co and log in with `huggingface-cli login`"
    if "NotFound" in name or "404" in str(exc):
        return "no such repository"
    return name


def hub_file_url(repo_id: str, name: str) -> str:
    try:
        from huggingface_hub import hf_hub_url
    except ImportError:
        raise MissingDependencyError("huggingface_hub", "Downloading a detector") from None
    return hf_hub_url(repo_id, name)


class _NoAuthOnOtherHosts(urllib.request.HTTPRedirectHandler):
    """The hub redirects large files to a CDN that must not receive the user's token."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlparse(newurl).netloc != urllib.parse.urlparse(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


def _hub_opener(url: str, timeout: float) -> Any:
    headers = {"User-Agent": "SegFill-detector-download/1 (+urllib)"}
    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:
        token = None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    opener = urllib.request.build_opener(_NoAuthOnOtherHosts)
    return opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)


def check_detector_file(part: Path, filename: str, spec: Any = None) -> None:
    """The structural check of one downloaded detector file (``download_model``'s ``check``): a
    ``.safetensors`` file must have a readable header (nothing else in it is read), a ``.json`` file must parse;
    vocabulary files are text and checked by their hash only. Raises DownloadError with one sentence."""
    import json

    from segfill.errors import ModelError
    from segfill.sam.safe_load import read_safetensors_header

    try:
        if filename.endswith(".safetensors"):
            read_safetensors_header(part, filename)
        elif filename.endswith(".json"):
            json.loads(part.read_text(encoding="utf-8"))
    except (ModelError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).rstrip(".") if isinstance(exc, ModelError) else f"{filename} is not valid JSON"
        raise DownloadError(f"{reason}; the download was not kept.") from None


def download_detector(repo_id: str, folder: str | os.PathLike, progress: ProgressCallback | None = None,
                      lister: Lister | None = None, opener: Callable[..., Any] | None = None,
                      url_for: Callable[[str, str], str] | None = None) -> Path:
    """Download ``repo_id`` into ``folder/<owner>--<name>`` and return that folder (returned at once when it
    is already complete). ``progress(done_bytes, total_bytes)`` covers all files together. ``lister``,
    ``opener`` and ``url_for`` are injectable for tests (defaults: the hub's API and plain urllib)."""
    from segfill.sam.download import download_model

    target = Path(folder) / folder_name(repo_id)
    if (target / "config.json").is_file():
        return target
    files = [f for f in (lister or list_hub_files)(repo_id)
             if "/" not in f.name and f.name.lower().endswith(WANTED_SUFFIXES)]
    if not any(f.name == "config.json" for f in files):
        raise DownloadError(f"{repo_id} has no config.json; it is not a transformers detector.")
    if not any(f.name.endswith(".safetensors") for f in files):
        raise DownloadError(f"{repo_id} publishes no .safetensors weights; SegFill does not load pickled .bin "
                            "weights (they can run code). Convert it and give the local folder instead.")
    sizes = [f.size or 0 for f in files]
    total = sum(sizes) or None
    part = target.with_name(target.name + ".part")
    part.mkdir(parents=True, exist_ok=True)
    done_before = 0
    for file, size in zip(files, sizes, strict=True):
        def file_progress(done: int, _total: int | None, offset: int = done_before) -> None:
            if progress is not None:
                progress(offset + done, total)

        download_model((url_for or hub_file_url)(repo_id, file.name), part, progress=file_progress,
                       opener=opener or _hub_opener, filename=file.name, sha256=file.sha256,
                       size_bytes=file.size, suffixes=WANTED_SUFFIXES, check=check_detector_file)
        done_before += size
    if target.exists():  # another process finished first
        shutil.rmtree(part, ignore_errors=True)
        return target
    os.replace(part, target)
    return target
