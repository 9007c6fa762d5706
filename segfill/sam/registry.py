"""Known Segment Anything checkpoints and how SegFill tells which model a file holds.

A file's model type comes from, in this order: an explicit ``model_type``; the registry, by size and SHA-256
(hashed only when the size matches a known file, and cached by path, size and mtime); the registry, by
official file name (only when the size does not contradict it); the shapes of the tensors in the file.
Never from pieces of the file name: a renamed vit_b file still loads as vit_b.

Importing this module is cheap (no torch); torch is imported only when a file's tensors must be inspected.

Provenance of the numbers below (checked against several independent public sources, see each entry):
sizes and SHA-256 of the three SAM files are published widely (micro-sam's registry, many download scripts);
the SAM 2.1 SHA-256 values appear identically in several projects that pin them; the MD5 values of the
SAM-HQ and MobileSAM files come from IOPaint's model table. ``None`` means "not known": a download of such a
file is verified by whichever hash is known and by checking that it really is the expected architecture.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segfill.errors import InputError, ModelError
from segfill.sam import safe_load

FAMILIES = ("sam", "sam_hq", "mobile_sam", "sam2")


class NotSamCheckpoint(ModelError):
    """A readable checkpoint that holds some other model (listings hide such files)."""


# A TorchScript archive or a pickle holding Python objects: SegFill never unpickles it (listings hide it).
UnsafeCheckpoint = safe_load.UnsafeCheckpoint

# the pip package that supplies each family's architecture, and the module it installs (never vendored)
FAMILY_PACKAGES = {
    "sam": ("segment-anything", "segment_anything"),
    "sam_hq": ("segment-anything-hq", "segment_anything_hq"),
    # MobileSAM's authors publish no PyPI package; `mobilesam-mirror` packages their code (module `mobile_sam`)
    # from PyPI, so it installs offline-capable from the registry, without a git URL.
    "mobile_sam": ("mobilesam-mirror", "mobile_sam"),
    "sam2": ("sam2", "sam2"),
}
# further (requirement, module) pairs a family's package needs but does not declare (mobilesam-mirror declares
# no dependencies; its TinyViT encoder imports timm). The WebUI and Forge already ship timm.
FAMILY_EXTRA_PACKAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "mobile_sam": (("timm", "timm"),),
}


def family_requirements(family: str) -> tuple[tuple[str, str], ...]:
    """Every ``(pip requirement, module)`` a family needs, its own package first."""
    return (FAMILY_PACKAGES[family],) + FAMILY_EXTRA_PACKAGES.get(family, ())


def family_install_hint(family: str) -> str:
    """The pip command line a person runs for a family (SAM 2.1 has its own torch-preserving installer)."""
    if family == "sam2":
        return "pick it under 'Download a SAM model' in the SegFill tab to install it without touching torch"
    return "pip install " + " ".join(requirement for requirement, _module in family_requirements(family))

MODEL_FILE_SUFFIXES = (".pth", ".pt", ".safetensors")


@dataclass(frozen=True)
class ModelSpec:
    """One downloadable checkpoint. ``size_bytes`` / ``sha256`` / ``md5`` are None where not known."""

    name: str
    family: str
    arch: str
    filename: str
    url: str
    size_bytes: int | None
    sha256: str | None
    package: str
    title: str = ""
    md5: str | None = None
    sam2_config: str | None = None

    @property
    def module(self) -> str:
        return FAMILY_PACKAGES[self.family][1]


@dataclass(frozen=True)
class Identification:
    """What a checkpoint file holds. ``method`` says how we know: "override", "hash", "name" or "shapes"."""

    family: str
    arch: str
    method: str
    spec: ModelSpec | None = None

    @property
    def label(self) -> str:
        return family_arch_label(self.family, self.arch)


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824/"
_HQ_URL = "https://huggingface.co/lkeab/hq-sam/resolve/main/"

_SPECS = (
    ModelSpec("sam_vit_h", "sam", "vit_h", "sam_vit_h_4b8939.pth", _SAM_URL + "sam_vit_h_4b8939.pth",
              2564550879, "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e", "segment-anything",
              "SAM ViT-H (2.56 GB)", md5="4b8939a88964f0f4ff5f5b2642c598a6"),
    ModelSpec("sam_vit_l", "sam", "vit_l", "sam_vit_l_0b3195.pth", _SAM_URL + "sam_vit_l_0b3195.pth",
              1249524607, "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622", "segment-anything",
              "SAM ViT-L (1.25 GB)", md5="0b3195507c641ddb6910d2bb5adee89c"),
    ModelSpec("sam_vit_b", "sam", "vit_b", "sam_vit_b_01ec64.pth", _SAM_URL + "sam_vit_b_01ec64.pth",
              375042383, "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912", "segment-anything",
              "SAM ViT-B (375 MB)", md5="01ec64d29a2fca3f0661936605ae66f8"),
    # SAM 2.1: only the tiny file's size is published alongside its hash; the others are verified by SHA-256.
    ModelSpec("sam2.1_hiera_tiny", "sam2", "hiera_t", "sam2.1_hiera_tiny.pt", _SAM2_URL + "sam2.1_hiera_tiny.pt",
              156008466, "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69", "sam2",
              "SAM 2.1 Hiera-Tiny (156 MB)", sam2_config="configs/sam2.1/sam2.1_hiera_t.yaml"),
    ModelSpec("sam2.1_hiera_small", "sam2", "hiera_s", "sam2.1_hiera_small.pt", _SAM2_URL + "sam2.1_hiera_small.pt",
              None, "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38", "sam2",
              "SAM 2.1 Hiera-Small (~185 MB)", sam2_config="configs/sam2.1/sam2.1_hiera_s.yaml"),
    ModelSpec("sam2.1_hiera_base_plus", "sam2", "hiera_b+", "sam2.1_hiera_base_plus.pt",
              _SAM2_URL + "sam2.1_hiera_base_plus.pt",
              None, "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5", "sam2",
              "SAM 2.1 Hiera-Base+ (~324 MB)", sam2_config="configs/sam2.1/sam2.1_hiera_b+.yaml"),
    ModelSpec("sam2.1_hiera_large", "sam2", "hiera_l", "sam2.1_hiera_large.pt", _SAM2_URL + "sam2.1_hiera_large.pt",
              None, "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318", "sam2",
              "SAM 2.1 Hiera-Large (~898 MB)", sam2_config="configs/sam2.1/sam2.1_hiera_l.yaml"),
    # SAM-HQ (package segment-anything-hq): SHA-256 and sizes not published; MD5 from IOPaint's table.
    ModelSpec("sam_hq_vit_h", "sam_hq", "vit_h", "sam_hq_vit_h.pth", _HQ_URL + "sam_hq_vit_h.pth",
              None, None, "segment-anything-hq", "SAM-HQ ViT-H (~2.57 GB)", md5="3560f6b6a5a6edacd814a1325c39640a"),
    ModelSpec("sam_hq_vit_l", "sam_hq", "vit_l", "sam_hq_vit_l.pth", _HQ_URL + "sam_hq_vit_l.pth",
              None, None, "segment-anything-hq", "SAM-HQ ViT-L (~1.25 GB)", md5="08947267966e4264fb39523eccc33f86"),
    ModelSpec("sam_hq_vit_b", "sam_hq", "vit_b", "sam_hq_vit_b.pth", _HQ_URL + "sam_hq_vit_b.pth",
              None, None, "segment-anything-hq", "SAM-HQ ViT-B (~379 MB)", md5="c6b8953247bcfdc8bb8ef91e36a6cacc"),
    # MobileSAM: SHA-256 pinned identically by micro-sam and others; MD5 from IOPaint.
    ModelSpec("mobile_sam", "mobile_sam", "vit_t", "mobile_sam.pt",
              "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt",
              None, "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f", FAMILY_PACKAGES["mobile_sam"][0],
              "MobileSAM ViT-T (~39 MB)", md5="f3c0d8cda613564d499310dab6c812cd"),
)

KNOWN_MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}

# official SAM image encoders: (width, depth) -> arch
SAM_VIT_SHAPES = {(768, 12): "vit_b", (1024, 24): "vit_l", (1280, 32): "vit_h"}
# SAM 2 Hiera trunks: (embed_dim, number of blocks) -> arch
SAM2_HIERA_SHAPES = {(96, 12): "hiera_t", (96, 16): "hiera_s", (112, 24): "hiera_b+", (144, 48): "hiera_l"}
CUSTOM_ARCH = "vit_custom"  # a SAM-style ViT whose size matches no official one (e.g. test models)

_ARCHS_BY_FAMILY = {
    "sam": ("vit_b", "vit_l", "vit_h", CUSTOM_ARCH),
    "sam_hq": ("vit_b", "vit_l", "vit_h", "vit_tiny"),
    "mobile_sam": ("vit_t",),
    "sam2": ("hiera_t", "hiera_s", "hiera_b+", "hiera_l"),
}


def family_arch_label(family: str, arch: str) -> str:
    names = {"sam": "SAM", "sam_hq": "SAM-HQ", "mobile_sam": "MobileSAM", "sam2": "SAM 2"}
    return f"{names.get(family, family)} {arch}"


def spec_by_filename(filename: str) -> ModelSpec | None:
    for spec in _SPECS:
        if spec.filename == filename:
            return spec
    return None


def parse_model_type(model_type: str) -> tuple[str, str]:
    """``--model-type`` -> (family, arch). Accepts "vit_b", "sam_hq:vit_b", "sam2:hiera_t", "hiera_t",
    "vit_t" (MobileSAM) or a registry name such as "sam_hq_vit_b" or "sam2.1_hiera_tiny"."""
    text = model_type.strip().lower()
    if text in KNOWN_MODELS:
        spec = KNOWN_MODELS[text]
        return spec.family, spec.arch
    if ":" in text:
        family, arch = text.split(":", 1)
        if family in _ARCHS_BY_FAMILY and arch in _ARCHS_BY_FAMILY[family]:
            return family, arch
    else:
        if text in ("vit_b", "vit_l", "vit_h", "default"):
            return "sam", "vit_h" if text == "default" else text
        if text == "vit_t":
            return "mobile_sam", "vit_t"
        if text in _ARCHS_BY_FAMILY["sam2"]:
            return "sam2", text
    choices = ", ".join(["vit_b", "vit_l", "vit_h", "vit_t", "hiera_t", "hiera_s", "hiera_b+", "hiera_l",
                         "sam_hq:vit_b", "..."])
    raise InputError(f"Unknown model type '{model_type}'; use one of {choices} or a known model name.")


# --- hashing -------------------------------------------------------------------------------------------------

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


def _file_key(path: Path) -> tuple[str, int, int]:
    """(absolute path, size, mtime): the key of the hash and shape caches, stale once the file changes."""
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def remember_sha256(path: str | os.PathLike, digest: str) -> None:
    """Record a SHA-256 computed elsewhere (e.g. while downloading) for the file as it is now."""
    key = _file_key(Path(path))
    with _hash_lock:
        _hash_cache[key] = digest


def file_sha256(path: str | os.PathLike, chunk_size: int = 4 << 20) -> str:
    """SHA-256 of a file, cached by (absolute path, size, mtime) so a multi-GB file is hashed once."""
    path = Path(path)
    key = _file_key(path)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    value = digest.hexdigest()
    with _hash_lock:
        _hash_cache[key] = value
    return value


def cached_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of ``path`` if it was already computed for its current size and mtime, else None."""
    try:
        key = _file_key(Path(path))
    except OSError:
        return None
    with _hash_lock:
        return _hash_cache.get(key)


def file_fingerprint(path: str | os.PathLike, edge_bytes: int = 1 << 20) -> str:
    """A cheap stable id: SHA-256 of the size plus the first and last MiB (the full hash when cached)."""
    full = cached_sha256(path)
    if full is not None:
        return full
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(edge_bytes))
        if size > edge_bytes:
            handle.seek(max(edge_bytes, size - edge_bytes))
            digest.update(handle.read(edge_bytes))
    return digest.hexdigest()


# --- reading tensors safely -------------------------------------------------------------------------------------
#
# Every read goes through segfill.sam.safe_load: never torch.load / torch.jit.load, which run the code of a
# TorchScript archive on torch < 2.6 even with weights_only=True.


def read_state_dict(path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """A checkpoint's top-level dict of tensors, read by SegFill's restricted reader (:mod:`.safe_load`).

    Zip-format files are memory-mapped, legacy ones read into fresh buffers, safetensors by ``safetensors``.
    TorchScript archives, pickled objects and unexpected archive entries are refused before anything is
    unpickled (:class:`UnsafeCheckpoint`); missing, corrupt or truncated files raise ModelError naming the file.
    """
    return safe_load.read_state_dict(path, name=name)


def unwrap_state_dict(data: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """SAM 2 files store the weights under "model"; some fine-tunes under "state_dict". Returns (weights, wrapper)."""
    for wrapper in ("model", "state_dict"):
        inner = data.get(wrapper)
        if isinstance(inner, Mapping) and inner and all(isinstance(k, str) for k in inner):
            return dict(inner), wrapper
    return dict(data), None


def tensor_shapes(state_dict: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items() if hasattr(value, "shape")}


# --- identification by shapes -------------------------------------------------------------------------------

_BLOCK_RE = re.compile(r"^image_encoder\.blocks\.(\d+)\.")
_TRUNK_BLOCK_RE = re.compile(r"^image_encoder\.trunk\.blocks\.(\d+)\.")


def _count(pattern: re.Pattern[str], keys) -> int:
    indexes = {int(match.group(1)) for key in keys if (match := pattern.match(key))}
    return max(indexes) + 1 if indexes else 0


def classify_shapes(shapes: Mapping[str, tuple[int, ...]], source: str = "the file") -> tuple[str, str]:
    """(family, arch) of a state dict from its keys and tensor shapes; ModelError if it is no SAM model."""
    keys = shapes.keys()
    if any(key.startswith("image_encoder.trunk.") for key in keys):
        embed = shapes.get("image_encoder.trunk.patch_embed.proj.weight", (0,))[0]
        depth = _count(_TRUNK_BLOCK_RE, keys)
        arch = SAM2_HIERA_SHAPES.get((embed, depth))
        if arch is None:
            raise NotSamCheckpoint(f"{source} looks like a SAM 2 checkpoint of an unknown size "
                             f"(Hiera width {embed}, {depth} blocks).")
        return "sam2", arch
    has_hq_token = "mask_decoder.hf_token.weight" in shapes
    if any(key.startswith("image_encoder.layers.") for key in keys):  # TinyViT encoder
        return ("sam_hq", "vit_tiny") if has_hq_token else ("mobile_sam", "vit_t")
    patch = shapes.get("image_encoder.patch_embed.proj.weight")
    if patch is not None and len(patch) == 4:
        depth = _count(_BLOCK_RE, keys)
        arch = SAM_VIT_SHAPES.get((patch[0], depth), CUSTOM_ARCH)
        if has_hq_token:
            if arch == CUSTOM_ARCH:
                raise NotSamCheckpoint(f"{source} looks like a SAM-HQ checkpoint of an unknown size "
                                 f"(encoder width {patch[0]}, {depth} blocks).")
            return "sam_hq", arch
        return "sam", arch
    sample = ", ".join(sorted(keys)[:4]) or "no tensors"
    raise NotSamCheckpoint(f"{source} is not a Segment Anything checkpoint (its tensors are {sample}, ...).")


def identify_state_dict(data: Mapping[str, Any], source: str = "the file") -> tuple[str, str]:
    weights, _wrapper = unwrap_state_dict(data)
    return classify_shapes(tensor_shapes(weights), source)


def is_cheap_to_inspect(path: str | os.PathLike) -> bool:
    """True when a file's tensor shapes can be read without reading its tensors: every format SegFill reads
    (safetensors header; a zip's directory and small pickle; a legacy file's pickles, skipping its storages)."""
    try:
        safe_load.sniff_format(path)
    except ModelError:
        return False
    return True


def read_tensor_shapes(path: str | os.PathLike, name: str | None = None) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a checkpoint's weights (SAM 2's "model" wrapper removed), without reading any weights:
    the restricted reader walks the file's structure with shape-only placeholders (no torch needed)."""
    weights, _wrapper = unwrap_state_dict(safe_load.read_shapes(path, name=name))
    return tensor_shapes(weights)


_shape_cache: dict[tuple[str, int, int], tuple[str, str] | ModelError] = {}


def identify_by_shapes(path: str | os.PathLike) -> tuple[str, str]:
    """(family, arch) from the file's tensor shapes; cached (also failures) by path, size and mtime."""
    path = Path(path)
    key = _file_key(path)
    with _hash_lock:
        cached = _shape_cache.get(key)
    if cached is None:
        try:
            cached = classify_shapes(read_tensor_shapes(path), path.name)
        except ModelError as exc:
            cached = exc
        with _hash_lock:
            _shape_cache[key] = cached
    if isinstance(cached, ModelError):
        raise cached
    return cached


def identify_checkpoint(path: str | os.PathLike, model_type: str | None = None, use_hash: bool = True,
                        inspect: bool | str = True) -> Identification:
    """Tell which model a checkpoint file holds (see the module docstring for the order of the checks).

    ``use_hash=False`` skips hashing (listing a folder). ``inspect`` controls reading tensor shapes: True,
    False (raise ModelError when neither the override nor the registry knows the file) or "cheap" (only for
    safetensors and zip-format files, whose shapes are read without reading the tensors).
    """
    path = Path(path)
    if model_type:
        family, arch = parse_model_type(model_type)
        spec = next((s for s in _SPECS if s.family == family and s.arch == arch), None)
        return Identification(family, arch, "override", spec)
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist.")
    size = path.stat().st_size
    if use_hash:
        candidates = [s for s in _SPECS if s.size_bytes == size and s.sha256]
        if candidates:
            digest = file_sha256(path)
            for spec in candidates:
                if spec.sha256 == digest:
                    return Identification(spec.family, spec.arch, "hash", spec)
    else:
        digest = cached_sha256(path)
        for spec in _SPECS:
            if digest is not None and spec.sha256 == digest:
                return Identification(spec.family, spec.arch, "hash", spec)
    spec = spec_by_filename(path.name)
    if spec is not None and (spec.size_bytes is None or spec.size_bytes == size):
        return Identification(spec.family, spec.arch, "name", spec)
    if not inspect or (inspect == "cheap" and not is_cheap_to_inspect(path)):
        raise ModelError(f"{path.name} is not a known model file; pass a model type to load it.")
    family, arch = identify_by_shapes(path)
    return Identification(family, arch, "shapes", None)
