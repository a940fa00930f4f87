"""The journal's records: one block's result of a pass, as data and nothing else.

A record is :data:`MAGIC` and one msgpack document. None, bool, int, float, str, bytes,
list and dict (with any of these as keys) are msgpack's own. Everything else is a msgpack
array whose first item is a tag, an extension type with an empty payload:

====  ===========================  =====================================================
tag   value                        the array's other items
====  ===========================  =====================================================
1     tuple                        its items
2     numpy array                  dtype, shape, order ("C" or "F"), the raw bytes
3     numpy scalar                 dtype, the raw bytes
4     numpy object array of ints   shape, the ints
5     one of :data:`CLASSES`       its name, its fields in order
====  ===========================  =====================================================

Dtypes are plain booleans, integers, floats and complex numbers (:data:`DTYPES`); a
bytearray or memoryview is written as bytes (no block result is one). Only the classes
named in :data:`CLASSES` are made, from their fields; nothing in a record names a module,
a function or another class, so reading one builds data and runs no code of its own.
Encoding anything else is a bug (TypeError); a file that is not a record raises
:class:`RecordError`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import BinaryIO

import msgpack
import numpy as np

from pipeline.engine.stitch import PackedFaces
from pipeline.kernels.labels import BlockLabels
from pipeline.measure.objects import Partial, Written

MAGIC = b"SEGPIPE-REC1\n"
TUPLE, ARRAY, SCALAR, INTS, OBJECT = 1, 2, 3, 4, 5
_SIZES = ("i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "c8", "c16")
DTYPES = frozenset({"|b1", "|i1", "|u1", *(order + s for order in "<>" for s in _SIZES)})

# The classes a record may hold, by name: a labelling pass's block summaries (with their
# compressed faces), a block's partial measurements, and what a block of the write pass
# gives back.
CLASSES: dict[str, type] = {
    "BlockLabels": BlockLabels,
    "PackedFaces": PackedFaces,
    "Partial": Partial,
    "Written": Written,
}
_NAMES = {cls: name for name, cls in CLASSES.items()}
_FACES = ("dtypes", "shapes", "blobs")  # what a PackedFaces holds


class RecordError(ValueError):
    """Bytes that are not a journal record; the message says why, in a few words."""


# The tags; reading a record makes no other ExtType (see _tag).
_TAGS = {code: msgpack.ExtType(code, b"") for code in (TUPLE, ARRAY, SCALAR, INTS, OBJECT)}


def _class(name: object) -> type | None:
    return CLASSES.get(name) if type(name) is str else None


def _fields(cls: type) -> tuple[str, ...]:
    return _FACES if cls is PackedFaces else tuple(f.name for f in dataclasses.fields(cls))


def _encode(obj: object) -> list:
    """The tagged array standing for ``obj`` (msgpack's ``default``)."""
    kind = type(obj)
    if kind is tuple:
        return [_TAGS[TUPLE], *obj]
    if kind is np.ndarray and obj.dtype.str in DTYPES:
        order = "F" if obj.flags.f_contiguous and not obj.flags.c_contiguous else "C"
        flat = np.ascontiguousarray(obj.T if order == "F" else obj).reshape(-1)
        raw = memoryview(flat.view(np.uint8))  # no copy of a contiguous array
        return [_TAGS[ARRAY], obj.dtype.str, list(obj.shape), order, raw]
    if kind is np.ndarray and obj.dtype == object:
        items = obj.ravel().tolist()
        if all(type(i) is int for i in items):
            return [_TAGS[INTS], list(obj.shape), items]
    if isinstance(obj, np.generic) and obj.dtype.str in DTYPES:
        return [_TAGS[SCALAR], obj.dtype.str, obj.tobytes()]
    name = _NAMES.get(kind)
    if name is not None:
        return [_TAGS[OBJECT], name, *(getattr(obj, f) for f in _fields(kind))]
    if kind is int:
        raise TypeError(f"a journal record cannot hold the int {obj}: beyond 64 bits")
    dtype = f" of dtype {obj.dtype}" if isinstance(obj, (np.ndarray, np.generic)) else ""
    raise TypeError(f"a journal record cannot hold {kind.__module__}.{kind.__qualname__}{dtype}")


def dump(value: object, fh: BinaryIO) -> None:
    """Write the record of ``value`` to ``fh`` (TypeError: ``value`` holds what no record
    holds)."""
    body = msgpack.packb(value, default=_encode, use_bin_type=True, strict_types=True)
    fh.write(MAGIC)
    fh.write(body)


def _shape(shape: object) -> tuple[int, ...]:
    if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
        raise RecordError(f"bad shape {shape!r}")
    return tuple(shape)


def _dtype(name: object) -> np.dtype:
    if type(name) is not str or name not in DTYPES:
        raise RecordError(f"dtype {name!r} not allowed")
    return np.dtype(name)


def _array(dtype: object, shape: object, order: object, raw: object) -> np.ndarray:
    dtype, shape = _dtype(dtype), _shape(shape)
    if order not in ("C", "F") or type(raw) is not bytes:
        raise RecordError("bad array")
    if len(raw) != math.prod(shape) * dtype.itemsize:
        raise RecordError(f"{len(raw)} bytes for an array of shape {shape} and dtype {dtype}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy(order="K")


def _scalar(dtype: object, raw: object) -> np.generic:
    dtype = _dtype(dtype)
    if type(raw) is not bytes or len(raw) != dtype.itemsize:
        raise RecordError(f"bad scalar of dtype {dtype}")
    return np.frombuffer(raw, dtype=dtype)[0]


def _ints(shape: object, items: object) -> np.ndarray:
    shape = _shape(shape)
    if type(items) is not list or len(items) != math.prod(shape):
        raise RecordError(f"bad object array of shape {shape}")
    if not all(type(i) is int for i in items):
        raise RecordError("an object array holds other than ints")
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)


def _object(name: object, *values: object) -> object:
    cls = _class(name)
    if cls is None:
        raise RecordError(f"no class {name!r} in a record")
    if len(values) != len(_fields(cls)):
        raise RecordError(f"{len(values)} fields for {name}")
    if cls is not PackedFaces:
        return cls(*values)
    dtypes, shapes, blobs = values  # checked: a face is made from them when read
    if not all(type(v) is list and len(v) == len(blobs) for v in values):
        raise RecordError("bad PackedFaces")
    if not all(type(b) is bytes for b in blobs):
        raise RecordError("bad PackedFaces")
    faces = object.__new__(PackedFaces)
    faces.dtypes = [_dtype(d).str for d in dtypes]
    faces.shapes = [_shape(list(s) if type(s) is tuple else s) for s in shapes]
    faces.blobs = blobs
    return faces


_BUILD = {TUPLE: lambda *items: items, ARRAY: _array, SCALAR: _scalar, INTS: _ints, OBJECT: _object}


def _tag(code: int, data: bytes) -> msgpack.ExtType:
    """msgpack's ``ext_hook``: the tags, and nothing else."""
    if code not in _TAGS or data:
        raise RecordError(f"unknown extension type {code}")
    return _TAGS[code]


def _tagged(items: list) -> object:
    """msgpack's ``list_hook``: the value a tagged array stands for (a plain list else)."""
    if items and type(items[0]) is msgpack.ExtType:
        try:
            return _BUILD[items[0].code](*items[1:])
        except TypeError:  # too few or too many items
            raise RecordError(f"bad value of tag {items[0].code}") from None
    return items


def _plain(value: object) -> None:
    """Refuse a tag out of place, and msgpack's own Timestamp (extension type -1)."""
    if isinstance(value, (msgpack.ExtType, msgpack.Timestamp)):  # ExtType is a tuple
        raise RecordError("an extension type out of place")
    if isinstance(value, (list, tuple)):
        for v in value:
            _plain(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _plain(k)
            _plain(v)
    elif type(value) in _NAMES:
        for f in _fields(type(value)):
            _plain(getattr(value, f))


def loads(data: bytes) -> object:
    """The value of the record ``data`` (RecordError: ``data`` is not a record)."""
    if not data.startswith(MAGIC):
        raise RecordError("no segpipe record header")
    try:
        value = msgpack.unpackb(
            memoryview(data)[len(MAGIC) :],
            ext_hook=_tag,
            list_hook=_tagged,
            raw=False,
            strict_map_key=False,
        )
        _plain(value)
    except RecordError:
        raise
    except msgpack.ExtraData:
        raise RecordError("bytes after its end") from None
    except Exception as exc:  # whatever msgpack or a class makes of a bad document
        raise RecordError(" ".join(f"{type(exc).__name__}: {exc}".split())) from None
    return value
