"""onnxruntime-web, the browser runtime of SegFill's in-page SAM decoder: checked, and fetched once when missing.

Its two small files (``ort.wasm.min.js``, ``ort-wasm-simd-threaded.mjs``) are in ``vendor/onnxruntime-web/``; the
14 MB ``ort-wasm-simd-threaded.wasm`` is not kept in the repository: :func:`ensure_web_runtime` takes it from the
npm registry's tarball of the pinned version (``manifest.json``: the tarball's integrity and every file's SHA-256),
verifies both, and writes it beside the others atomically. ``install.py`` (the WebUI's start), ``dev.sh`` and
``serve`` call it; afterwards everything works offline. Without the runtime the tab still previews clicks and
hovers through the lean server route (:func:`runtime_ready` is False, so the page is given no decoder URL).
Stdlib only: ``install.py`` imports it before anything is installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parents[1] / "vendor" / "onnxruntime-web"
MANIFEST_PATH = VENDOR_DIR / "manifest.json"
REGISTRY = "https://registry.npmjs.org"

__all__ = ["VENDOR_DIR", "WebRuntimeError", "ensure_web_runtime", "missing_files", "runtime_ready", "tarball_url"]


class WebRuntimeError(RuntimeError):
    """The runtime could not be fetched or did not verify; nothing unverified was kept."""


def load_manifest(path: Path = MANIFEST_PATH) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def tarball_url(manifest: dict, registry: str = REGISTRY) -> str:
    name, version = manifest["package"], manifest["version"]
    return f"{registry}/{name}/-/{name}-{version}.tgz"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_files(folder: Path = VENDOR_DIR, manifest: dict | None = None, verify: bool = True) -> list[str]:
    """The manifest's files that are absent from ``folder`` (or, with ``verify``, differ from their SHA-256)."""
    manifest = manifest or load_manifest()
    folder = Path(folder)
    return [name for name, digest in manifest["files"].items()
            if not (folder / name).is_file() or (verify and _sha256(folder / name) != digest)]


def runtime_ready(folder: Path = VENDOR_DIR) -> bool:
    """Every file is there (cheap: no hashing; they were verified when written)."""
    try:
        return not missing_files(folder, verify=False)
    except (OSError, ValueError, KeyError):
        return False


def ensure_web_runtime(folder: Path = VENDOR_DIR, manifest: dict | None = None, url: str | None = None,
                       timeout: float = 120.0) -> list[str]:
    """Make every file of the manifest present and verified in ``folder``; returns the names written (empty
    when nothing was missing). Raises :class:`WebRuntimeError` with one sentence otherwise."""
    manifest = manifest or load_manifest()
    folder = Path(folder)
    wanted = missing_files(folder, manifest)
    if not wanted:
        return []
    url = url or tarball_url(manifest)
    label = f"{manifest['package']} {manifest['version']}"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as tmp:
        tarball = Path(tmp) / "package.tgz"
        digest = hashlib.sha512()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(tarball, "wb") as out:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise WebRuntimeError(f"Could not fetch {label} from {url}: {exc}.") from None
        algorithm, _, expected = manifest["npm_integrity"].partition("-")
        if algorithm != "sha512" or base64.b64encode(digest.digest()).decode("ascii") != expected:
            raise WebRuntimeError(f"The {label} tarball from {url} does not match its integrity in manifest.json; "
                                  "nothing was kept.")
        extracted: dict[str, Path] = {}
        try:
            with tarfile.open(tarball, "r:gz") as archive:
                for name in wanted:
                    member = archive.getmember(f"package/dist/{name}")
                    source = archive.extractfile(member)
                    if source is None:
                        raise KeyError(name)
                    target = Path(tmp) / name
                    with source, open(target, "wb") as out:
                        out.write(source.read())
                    extracted[name] = target
        except (KeyError, tarfile.TarError) as exc:
            raise WebRuntimeError(f"The {label} tarball lacks dist/{exc}; nothing was kept.") from None
        for name, path in extracted.items():
            if _sha256(path) != manifest["files"][name]:
                raise WebRuntimeError(f"{name} from the {label} tarball does not match its SHA-256 in "
                                      "manifest.json; nothing was kept.")
        for name, path in extracted.items():
            os.replace(path, folder / name)  # same folder: atomic, so a file there is always a whole one
    return wanted


def main() -> int:
    """``python -m segfill.web_runtime``: fetch what is missing, one line either way."""
    try:
        written = ensure_web_runtime()
    except WebRuntimeError as exc:
        print(f"SegFill: {exc} The tab previews clicks through the server instead.")
        return 1
    manifest = load_manifest()
    what = f"fetched {', '.join(written)}" if written else "present"
    print(f"SegFill: {manifest['package']} {manifest['version']} for the browser decoder: {what}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
