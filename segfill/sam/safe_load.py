"""Reading checkpoint files without ever running code that is in them.

``torch.load`` cannot be trusted with a user's file on the torches SegFill's hosts pin: before torch 2.6,
``torch.load(weights_only=True)`` hands any TorchScript archive to ``torch.jit.load``, which runs the
archive's own code (CVE-2025-32434). So SegFill never gives a file to ``torch.load``, ``torch.jit.load`` or a
general unpickler. It reads the three formats a Segment Anything checkpoint comes in itself:

- **zip** (``torch.save`` since 1.6): the archive's entries are checked first; anything but
  ``<name>/data.pkl``, ``<name>/data/<key>``, ``version``, ``byteorder`` and the serialisation ids is refused,
  TorchScript archives (``code/``, ``constants.pkl``, ``.data/version`` ...) by name. ``data.pkl`` is then
  read by :class:`RestrictedUnpickler`, and the tensors are views of the memory-mapped file.
- **legacy** (``_use_new_zipfile_serialization=False``): the same unpickler reads the pickles, the raw
  storages that follow them are read into fresh buffers.
- **safetensors**: the JSON header is parsed and checked here; the data is read by ``safetensors``.

:class:`RestrictedUnpickler` (modelled on the WebUI's ``modules/safe.py`` and torch's own weights-only
unpickler) is a pure-Python unpickler whose globals are a short allow-list of SegFill's *own* functions:
it can only ever build dicts, lists, tuples, numbers, strings, tensors and storages. Object-building opcodes
(``INST``, ``OBJ``, ``NEWOBJ``, extension codes) are refused, ``BUILD`` only sets plain attributes on an
``OrderedDict`` (the ``_metadata`` of a state dict) and ``REDUCE`` only calls the allow-listed functions.

``shapes_only=True`` walks the same structure without reading any tensor data: tensors become
:class:`TensorInfo` (shape and dtype), so listing a folder or identifying a file by its shapes reads the
archive's directory and its small pickle only, and never needs torch. Every format's storages are checked
against the file's size either way, so a truncated file is found without reading its weights.

Everything a user can cause raises a :class:`~segfill.errors.ModelError` (or :class:`UnsafeCheckpoint`)
with one sentence naming the file.
"""

from __future__ import annotations

import io
import json
import math
import mmap
import os
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from segfill.errors import ModelError

__all__ = [
    "CheckpointFormat",
    "TensorInfo",
    "UnsafeCheckpoint",
    "check_file",
    "read_checkpoint",
    "read_shapes",
    "read_state_dict",
    "sniff_format",
]


class UnsafeCheckpoint(ModelError):
    """A file SegFill will not read because reading it could run code (TorchScript, pickled objects)."""


CheckpointFormat = str  # "zip" | "legacy" | "safetensors"

# torch's storage classes as pickled by torch.save -> (dtype name, bytes per element)
STORAGE_TYPES: dict[str, tuple[str, int]] = {
    "FloatStorage": ("float32", 4),
    "DoubleStorage": ("float64", 8),
    "HalfStorage": ("float16", 2),
    "BFloat16Storage": ("bfloat16", 2),
    "LongStorage": ("int64", 8),
    "IntStorage": ("int32", 4),
    "ShortStorage": ("int16", 2),
    "CharStorage": ("int8", 1),
    "ByteStorage": ("uint8", 1),
    "BoolStorage": ("bool", 1),
}
# safetensors dtype names -> (dtype name, bytes per element)
SAFETENSORS_DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 8), "F32": ("float32", 4), "F16": ("float16", 2), "BF16": ("bfloat16", 2),
    "I64": ("int64", 8), "I32": ("int32", 4), "I16": ("int16", 2), "I8": ("int8", 1), "U8": ("uint8", 1),
    "BOOL": ("bool", 1),
}
TORCH_DTYPE_NAMES = frozenset(
    {"float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool",
     "float", "double", "half", "long", "int", "short"})

# Lightning checkpoints key their callback states by class; as names they are plain data (never imported,
# never called), as the WebUI's modules/safe.py allows them.
INERT_GLOBALS = frozenset({("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint"),
                           ("pytorch_lightning.callbacks", "model_checkpoint")})

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the limit safetensors itself applies

# entries a plain torch.save zip holds, below its single top-level folder
_PLAIN_ENTRY = re.compile(r"^(data\.pkl|version|\.format_version|byteorder|\.storage_alignment|"
                          r"\.data/serialization_id|data/[0-9]+)$")
# entries that only TorchScript (torch.jit.save) or mobile archives have
_TORCHSCRIPT_ENTRY = re.compile(r"^(code/|constants\.pkl$|constants/|\.data/version$|extra/|attributes\.pkl$|"
                                r"bytecode\.pkl$|mobile_info\.json$|model\.json$)")


@dataclass(frozen=True)
class TensorInfo:
    """A tensor's shape and dtype, read without its data (``shapes_only``); has ``.shape`` like a tensor."""

    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


# --- errors ---------------------------------------------------------------------------------------------------


def _corrupt(name: str, detail: str | None = None) -> ModelError:
    more = f": {detail}" if detail else ""
    return ModelError(f"{name} is truncated or corrupt (could not read it as a PyTorch checkpoint{more}).")


def _objects(name: str, what: str) -> UnsafeCheckpoint:
    return UnsafeCheckpoint(
        f"{name} contains Python objects other than tensors ({what}); SegFill refuses to unpickle it because "
        "that could run arbitrary code (only plain state dicts or .safetensors files are loaded).")


class _Refused(Exception):
    """Raised inside the unpickler; turned into UnsafeCheckpoint naming the file."""


class _Damaged(Exception):
    """Raised inside the unpickler for inconsistent data; turned into a 'truncated or corrupt' ModelError."""


# --- format -----------------------------------------------------------------------------------------------------


def sniff_format(path: str | os.PathLike, name: str | None = None) -> CheckpointFormat:
    """"zip", "legacy" or "safetensors" from the file's first bytes (never from its name).

    Raises ModelError for a missing, empty, HTML or otherwise unknown file."""
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise ModelError(f"Model file {path} does not exist.")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1024)
    except OSError as exc:
        raise ModelError(f"{name} cannot be read ({exc.strerror or exc}).") from None
    size = path.stat().st_size
    if not head:
        raise ModelError(f"{name} is empty (0 bytes), not a checkpoint.")
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "legacy"
    if len(head) >= 9:
        (header_length,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and 8 + header_length <= size:
            return "safetensors"
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")) or b"<html" in text:
        raise ModelError(f"{name} is an HTML page, not a checkpoint (a download that reached a sign-in or error "
                         "page?).")
    raise _corrupt(name)


# --- the restricted unpickler ---------------------------------------------------------------------------------


@dataclass
class _StorageType:
    dtype: str
    itemsize: int


@dataclass
class _Storage:
    """One storage of the file: its key, dtype, element count, and (full reads) a uint8 tensor of its bytes."""

    key: str
    dtype: str
    itemsize: int
    numel: int
    data: Any = None  # torch.uint8 tensor of numel * itemsize bytes, or None for shapes_only

    @property
    def nbytes(self) -> int:
        return self.numel * self.itemsize


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(type(v) is int and v >= 0 for v in value):
        raise _Damaged(f"bad tensor {what} {value!r}")
    return tuple(value)


class RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """A pure-Python unpickler that can only build containers, numbers, strings, tensors and storages.

    ``storage_for(storage_type, key, numel)`` returns the :class:`_Storage` for a persistent id; tensors
    are made by :meth:`make_tensor` (a :class:`TensorInfo` when ``shapes_only``).
    """

    def __init__(self, file: BinaryIO, storage_for: Callable[[_StorageType, str, int, tuple], _Storage] | None,
                 shapes_only: bool) -> None:
        super().__init__(file, encoding="utf-8")
        self._storage_for = storage_for
        self._shapes_only = shapes_only
        # bound methods are new objects on every access; keep the ones handed out
        self._globals: dict[tuple[str, str], Any] = {
            ("collections", "OrderedDict"): OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): self._rebuild_tensor_v2,
            ("torch._utils", "_rebuild_parameter"): self._rebuild_parameter,
            ("torch", "Size"): self._size,
            ("builtins", "set"): set, ("__builtin__", "set"): set,
            ("builtins", "frozenset"): frozenset,
        }
        self._callables = {id(v) for v in self._globals.values() if callable(v)}

    # -- globals

    def find_class(self, module: str, name: str) -> Any:
        found = self._globals.get((module, name))
        if found is not None:
            return found
        if module == "torch" and name in STORAGE_TYPES:
            return _StorageType(*STORAGE_TYPES[name])
        if module == "torch" and name in TORCH_DTYPE_NAMES:
            return f"torch.{name}"  # a dtype as a value (plain data; never called)
        if (module, name) in INERT_GLOBALS:
            return f"{module}.{name}"  # a class used as a dict key in training checkpoints; never called
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or not pid or pid[0] not in ("storage", b"storage"):
            raise _Refused(f"persistent id {str(pid)[:40]}")
        if self._storage_for is None:
            raise _Damaged("a storage where none may be")
        fields = pid[1:]
        if len(fields) not in (4, 5):
            raise _Damaged("bad storage reference")
        storage_type, key, _location, numel = fields[:4]
        view = fields[4] if len(fields) == 5 else None
        if not isinstance(storage_type, _StorageType) or type(numel) is not int or numel < 0:
            raise _Damaged("bad storage reference")
        if isinstance(key, bytes):
            key = key.decode("ascii", "replace")
        if not isinstance(key, str):
            raise _Damaged("bad storage key")
        return self._storage_for(storage_type, key, numel, view)

    # -- the allow-listed callables

    def _size(self, *args: Any) -> tuple[int, ...]:
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            args = tuple(args[0])
        return _int_tuple(args, "size")

    def _rebuild_tensor_v2(self, storage: Any, storage_offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                           backward_hooks: Any = None, metadata: Any = None) -> Any:
        if not isinstance(storage, _Storage) or type(storage_offset) is not int or storage_offset < 0:
            raise _Damaged("bad tensor storage")
        size = _int_tuple(size, "size")
        stride = _int_tuple(stride, "stride")
        if len(size) != len(stride):
            raise _Damaged("tensor size and stride differ in length")
        if backward_hooks not in (None, {}) and not (isinstance(backward_hooks, dict) and not backward_hooks):
            raise _Refused("tensor backward hooks")
        if metadata is not None and not isinstance(metadata, dict):
            raise _Damaged("bad tensor metadata")
        if math.prod(size) > 0:
            last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
            if last >= storage.numel:
                raise _Damaged(f"a tensor of shape {list(size)} reaches past its storage of {storage.numel} elements")
        if self._shapes_only:
            return TensorInfo(size, storage.dtype)
        import torch

        flat = _typed_view(storage)
        return torch.as_strided(flat, size, stride, storage_offset)

    def _rebuild_parameter(self, data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> Any:
        if backward_hooks not in (None, {}) and not (isinstance(backward_hooks, dict) and not backward_hooks):
            raise _Refused("parameter backward hooks")
        if not isinstance(data, TensorInfo) and not _is_tensor(data):
            raise _Damaged("a parameter without a tensor")
        return data

    # -- opcodes

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def _load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        if id(func) not in self._callables or not isinstance(args, tuple):
            raise _Refused(f"a call to {_describe(func)}")
        stack[-1] = func(*args)

    def _load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        if isinstance(state, tuple) and len(state) == 2 and state[1] is None:
            state = state[0]
        if type(inst) is not OrderedDict or not isinstance(state, dict) or not all(
                isinstance(k, str) and not k.startswith("__") for k in state):
            raise _Refused(f"state set on {_describe(inst)}")
        inst.__dict__.update(state)  # an OrderedDict's plain attributes, e.g. a state dict's _metadata

    def _refuse_opcode(self) -> None:
        raise _Refused("a pickled object instance")

    dispatch[pickle.REDUCE[0]] = _load_reduce
    dispatch[pickle.BUILD[0]] = _load_build
    for _opcode in (pickle.INST, pickle.OBJ, pickle.NEWOBJ, pickle.NEWOBJ_EX, pickle.EXT1, pickle.EXT2, pickle.EXT4,
                    pickle.PERSID):
        dispatch[_opcode[0]] = _refuse_opcode
    del _opcode


def _describe(value: Any) -> str:
    if isinstance(value, _StorageType):
        return "a storage type"
    return type(value).__name__


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "shape")


def _typed_view(storage: _Storage) -> Any:
    """The storage's bytes as a flat tensor of its dtype (copied once if the file's bytes are misaligned)."""
    import torch

    dtype = getattr(torch, storage.dtype)
    data = storage.data
    if storage.numel == 0:
        return torch.empty(0, dtype=dtype)
    try:
        return data.view(dtype)
    except RuntimeError:  # an offset that is no multiple of the element size
        return data.clone().view(dtype)


def _unpickle(data: BinaryIO, name: str, storage_for: Any, shapes_only: bool) -> Any:
    try:
        return RestrictedUnpickler(data, storage_for, shapes_only).load()
    except _Refused as exc:
        raise _objects(name, str(exc)) from None
    except _Damaged as exc:
        raise _corrupt(name, str(exc)) from None
    except ModelError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, OverflowError, MemoryError, UnicodeDecodeError, RecursionError) as exc:
        raise _corrupt(name) from exc


# --- zip checkpoints --------------------------------------------------------------------------------------------


@dataclass
class _ZipLayout:
    prefix: str
    records: dict[str, zipfile.ZipInfo]  # storage key -> entry
    pickle_entry: zipfile.ZipInfo


def inspect_zip(path: Path, name: str) -> _ZipLayout:
    """Check a zip checkpoint's entries (never its pickle): refuse TorchScript and anything unexpected."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _corrupt(name) from exc
    if not entries:
        raise _corrupt(name, "an empty archive")
    names = [entry.filename for entry in entries]
    if len(set(names)) != len(names):
        raise UnsafeCheckpoint(f"{name} is not a plain PyTorch checkpoint (its archive lists an entry twice); "
                               "SegFill refused to read it.")
    prefixes = {n.split("/", 1)[0] for n in names}
    inner = [n.split("/", 1)[1] if "/" in n else "" for n in names]
    torchscript = next((n for n, rel in zip(names, inner, strict=True) if _TORCHSCRIPT_ENTRY.match(rel)), None)
    if torchscript is not None:
        raise UnsafeCheckpoint(
            f"{name} is a TorchScript archive (it contains {torchscript}), and loading one runs the code inside it; "
            "SegFill only loads plain state dicts (.pth, .pt) and .safetensors files, so it refused this file.")
    if len(prefixes) != 1:
        raise UnsafeCheckpoint(f"{name} is not a plain PyTorch checkpoint (its archive has several top-level "
                               f"folders: {', '.join(sorted(prefixes)[:3])}); SegFill refused to read it.")
    unexpected = next((n for n, rel in zip(names, inner, strict=True) if not _PLAIN_ENTRY.match(rel)), None)
    if unexpected is not None:
        raise UnsafeCheckpoint(f"{name} is not a plain PyTorch checkpoint (it contains {unexpected}); SegFill "
                               "refused to read it.")
    prefix = prefixes.pop()
    by_name = {entry.filename: entry for entry in entries}
    pickle_entry = by_name.get(f"{prefix}/data.pkl")
    if pickle_entry is None:
        raise _corrupt(name, "no data.pkl")
    records = {n[len(prefix) + len("/data/"):]: entry for n, entry in by_name.items()
               if n.startswith(f"{prefix}/data/")}
    for entry in records.values():
        if entry.compress_type != zipfile.ZIP_STORED or entry.compress_size != entry.file_size:
            raise _corrupt(name, f"{entry.filename} is compressed")
    size = path.stat().st_size
    if any(entry.header_offset + entry.file_size > size for entry in entries):
        raise _corrupt(name)
    byteorder = by_name.get(f"{prefix}/byteorder")
    if byteorder is not None:
        with zipfile.ZipFile(path) as archive:
            order = archive.read(byteorder)[:16]
        if order.strip() not in (b"little", b""):
            raise ModelError(f"{name} was saved on a big-endian machine ({order!r}); SegFill reads little-endian "
                             "checkpoints only.")
    return _ZipLayout(prefix, records, pickle_entry)


def _record_data_offset(handle: BinaryIO, entry: zipfile.ZipInfo, name: str) -> int:
    """Where an uncompressed entry's bytes start in the file (after its local header)."""
    handle.seek(entry.header_offset)
    header = handle.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise _corrupt(name, f"{entry.filename} has no local header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    return entry.header_offset + 30 + name_length + extra_length


def _read_zip(path: Path, name: str, shapes_only: bool) -> Any:
    layout = inspect_zip(path, name)
    try:
        with zipfile.ZipFile(path) as archive:
            pickled = archive.read(layout.pickle_entry)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
        raise _corrupt(name) from exc

    storages: dict[str, _Storage] = {}
    file_size = path.stat().st_size
    mapped: list[Any] = []  # the file's private mapping, created on the first storage (full reads only)
    handle = None if shapes_only else open(path, "rb")  # noqa: SIM115 - closed below

    def storage_for(storage_type: _StorageType, key: str, numel: int, view: Any) -> _Storage:
        if view is not None:
            raise _Damaged("a storage view")
        known = storages.get(key)
        if known is not None:
            if (known.dtype, known.numel) != (storage_type.dtype, numel):
                raise _Damaged(f"storage {key} is used with two dtypes")
            return known
        entry = layout.records.get(key)
        if entry is None:
            raise _Damaged(f"storage {key} is missing")
        storage = _Storage(key, storage_type.dtype, storage_type.itemsize, numel)
        if entry.file_size != storage.nbytes:
            raise _Damaged(f"storage {key} has {entry.file_size} bytes, not {storage.nbytes}")
        if handle is not None:
            offset = _record_data_offset(handle, entry, name)
            if offset + storage.nbytes > file_size:
                raise _Damaged(f"storage {key} ends past the end of the file")
            if storage.nbytes:
                import torch

                if not mapped:
                    mapped.append(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY))
                storage.data = torch.frombuffer(mapped[0], dtype=torch.uint8, count=storage.nbytes, offset=offset)
        storages[key] = storage
        return storage

    try:
        return _unpickle(io.BytesIO(pickled), name, storage_for, shapes_only)
    finally:
        if handle is not None:
            handle.close()  # the mapping (held by the tensors) stays valid without the file object


# --- legacy checkpoints -----------------------------------------------------------------------------------------


def _read_legacy(path: Path, name: str, shapes_only: bool) -> Any:
    storages: dict[str, _Storage] = {}

    def storage_for(storage_type: _StorageType, key: str, numel: int, view: Any) -> _Storage:
        if view is not None:
            raise _Damaged("a storage view (a very old torch.save layout)")
        known = storages.get(key)
        if known is not None:
            if (known.dtype, known.numel) != (storage_type.dtype, numel):
                raise _Damaged(f"storage {key} is used with two dtypes")
            return known
        storage = _Storage(key, storage_type.dtype, storage_type.itemsize, numel)
        if not shapes_only:
            import torch

            storage.data = torch.empty(storage.nbytes, dtype=torch.uint8)  # filled from the file below
        storages[key] = storage
        return storage

    file_size = path.stat().st_size
    with open(path, "rb") as handle:
        magic = _unpickle(handle, name, None, True)
        if magic != LEGACY_MAGIC_NUMBER:
            raise _corrupt(name, "no PyTorch magic number")
        if _unpickle(handle, name, None, True) != LEGACY_PROTOCOL_VERSION:
            raise _corrupt(name, "an unknown PyTorch protocol version")
        sys_info = _unpickle(handle, name, None, True)
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise ModelError(f"{name} was saved on a big-endian machine; SegFill reads little-endian checkpoints only.")
        result = _unpickle(handle, name, storage_for, shapes_only)
        keys = _unpickle(handle, name, None, True)
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or set(keys) != set(storages):
            raise _corrupt(name, "its storage list does not match its tensors")
        for key in keys:
            storage = storages[key]
            head = handle.read(8)
            if len(head) != 8:
                raise _corrupt(name)
            (count,) = struct.unpack("<q", head)
            if count != storage.numel:
                raise _corrupt(name, f"storage {key} has {count} elements, not {storage.numel}")
            if handle.tell() + storage.nbytes > file_size:
                raise _corrupt(name)
            if storage.data is None:
                handle.seek(storage.nbytes, os.SEEK_CUR)
            elif storage.nbytes:
                read = handle.readinto(memoryview(storage.data.numpy()))
                if read != storage.nbytes:
                    raise _corrupt(name)
    return result


# --- safetensors ------------------------------------------------------------------------------------------------


def read_safetensors_header(path: Path, name: str) -> dict[str, TensorInfo]:
    """Key -> TensorInfo from a .safetensors header, with every tensor's byte range checked against the file."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) != 8:
            raise _bad_safetensors(name, "it is shorter than a header")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_SAFETENSORS_HEADER or 8 + length > size:
            raise _bad_safetensors(name, "its header length is impossible")
        raw = handle.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad_safetensors(name, "its header is not JSON") from None
    if not isinstance(header, dict):
        raise _bad_safetensors(name, "its header is not a JSON object")
    data_size = size - 8 - length
    infos: dict[str, TensorInfo] = {}
    for key, value in header.items():
        if key == "__metadata__":
            continue
        if not isinstance(value, dict):
            raise _bad_safetensors(name, f"the entry {key!r} is malformed")
        dtype = SAFETENSORS_DTYPES.get(value.get("dtype"))
        shape = value.get("shape")
        offsets = value.get("data_offsets")
        if dtype is None:
            raise _bad_safetensors(name, f"the tensor {key!r} has the unsupported dtype {value.get('dtype')!r}")
        if (not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape)
                or not isinstance(offsets, list) or len(offsets) != 2
                or not all(type(n) is int and n >= 0 for n in offsets)):
            raise _bad_safetensors(name, f"the entry {key!r} is malformed")
        begin, end = offsets
        if end < begin or end > data_size or end - begin != math.prod(shape) * dtype[1]:
            raise _bad_safetensors(name, f"the tensor {key!r} reaches past the end of the file")
        infos[key] = TensorInfo(tuple(shape), dtype[0])
    return infos


def _bad_safetensors(name: str, detail: str) -> ModelError:
    return ModelError(f"{name} is truncated or corrupt (could not read it as a safetensors file: {detail}).")


def _read_safetensors(path: Path, name: str, shapes_only: bool) -> dict[str, Any]:
    infos = read_safetensors_header(path, name)
    if shapes_only:
        return dict(infos)
    try:
        from safetensors.torch import load_file
    except ImportError as exc:  # pragma: no cover - safetensors ships with diffusers/transformers
        from segfill.errors import MissingDependencyError

        raise MissingDependencyError("safetensors", f"Reading {name}") from exc
    try:
        return dict(load_file(str(path), device="cpu"))
    except Exception as exc:
        raise _bad_safetensors(name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


# --- public API -------------------------------------------------------------------------------------------------

_READERS = {"zip": _read_zip, "legacy": _read_legacy, "safetensors": _read_safetensors}


def check_file(path: str | os.PathLike, name: str | None = None) -> CheckpointFormat:
    """The cheap safety check a folder listing makes: the format, and for zip files their entries.

    Raises :class:`UnsafeCheckpoint` for TorchScript and other unexpected archives, ModelError for files that
    are no checkpoint at all. Reads the first KiB and a zip's directory only."""
    path = Path(path)
    name = name or path.name
    fmt = sniff_format(path, name)
    if fmt == "zip":
        inspect_zip(path, name)
    return fmt


def read_checkpoint(path: str | os.PathLike, shapes_only: bool = False, name: str | None = None) -> Any:
    """The object a checkpoint file holds (usually a dict of tensors), read without running anything in it.

    ``shapes_only`` gives :class:`TensorInfo` placeholders instead of tensors and reads no tensor data (nor
    imports torch). ``name`` is what error messages call the file (default: its name). Raises ModelError /
    :class:`UnsafeCheckpoint` with one sentence naming the file."""
    path = Path(path)
    name = name or path.name
    fmt = sniff_format(path, name)
    try:
        return _READERS[fmt](path, name, shapes_only)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"{name} cannot be read ({exc.strerror or exc}).") from None


def read_state_dict(path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """A checkpoint's top-level dict (tensors memory-mapped where the format allows); ModelError otherwise."""
    return _as_mapping(read_checkpoint(path, shapes_only=False, name=name), name or Path(path).name)


def read_shapes(path: str | os.PathLike, name: str | None = None) -> dict[str, Any]:
    """A checkpoint's top-level dict with :class:`TensorInfo` for every tensor: no weights are read."""
    return _as_mapping(read_checkpoint(path, shapes_only=True, name=name), name or Path(path).name)


def _as_mapping(data: Any, name: str) -> dict[str, Any]:
    from segfill.sam.registry import NotSamCheckpoint

    if not isinstance(data, Mapping):
        raise NotSamCheckpoint(f"{name} does not hold a state dict (found {type(data).__name__}).")
    return dict(data)
