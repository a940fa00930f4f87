"""Where outputs go: a local folder (a :class:`pathlib.Path`) or a place in an object store
(an :class:`ObjectPath`, which offers the part of pathlib's interface output folders use).

An :class:`ObjectPath` is deliberately not path-like (no ``__fspath__``): a function that
would take it for a local path fails at once instead of making a local folder named after
the URL.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.io import storage


class ObjectPath:
    """A key (or prefix of keys) in an object store, addressed by its URL."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ObjectPath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, name: str | os.PathLike) -> ObjectPath:
        return ObjectPath(storage.join(self.url, os.fspath(name)))

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind(".") :] if "." in name.lstrip(".") else ""

    @property
    def parent(self) -> ObjectPath:
        scheme, bucket, key = storage.split(self.url)
        return ObjectPath(f"{scheme}://{bucket}/{key.rpartition('/')[0]}")

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def read_bytes(self) -> bytes:
        return storage.read_bytes(self.url)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        storage.write_bytes(self.url, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def is_file(self) -> bool:
        return storage.exists(self.url)

    def is_dir(self) -> bool:
        files, folders = storage.children(self.url)
        return bool(files or folders)

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def is_symlink(self) -> bool:
        return False

    def iterdir(self) -> Iterator[ObjectPath]:
        files, folders = storage.children(self.url)
        for name in sorted({*files, *folders}):
            yield self / name

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is written below it."""

    def unlink(self, missing_ok: bool = False) -> None:
        storage.remove(self.url)

    def replace(self, target: ObjectPath) -> ObjectPath:
        """Move to ``target`` (written whole, then this object removed)."""
        target.write_bytes(self.read_bytes())
        self.unlink()
        return target

    def rmtree(self) -> None:
        """Delete this object and everything below it."""
        storage.remove_tree(self.url)


Location = Path | ObjectPath


def location(path: str | os.PathLike | ObjectPath) -> Location:
    """The output place ``path`` names: an :class:`ObjectPath` for a URL, else a Path."""
    if isinstance(path, ObjectPath):
        return path
    text = os.fspath(path)
    return ObjectPath(text) if storage.is_url(text) else Path(storage.local_path(text))


def write_atomic(path: Location, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old contents or the new, never
    a part (a local file under a temporary name, then renamed)."""
    if isinstance(path, ObjectPath):
        path.write_bytes(data)
        return
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def remove_tree(path: Location, ignore_errors: bool = True) -> None:
    """Delete a folder (or prefix) and everything in it; nothing there: nothing happens
    (a local folder that cannot be deleted raises OSError unless ``ignore_errors``)."""
    if isinstance(path, ObjectPath):
        path.rmtree()
    else:
        shutil.rmtree(path, ignore_errors=ignore_errors)


@contextmanager
def staged(target: Location) -> Iterator[Path]:
    """A local folder to write files into that end up in ``target``: ``target`` itself
    when it is local; else a temporary folder whose files are copied below ``target``
    (same relative names) once the block ends without an error, then deleted."""
    if not isinstance(target, ObjectPath):
        yield target
        return
    folder = Path(tempfile.mkdtemp(prefix="segpipe-staged-"))
    try:
        yield folder
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                path = Path(root) / name
                (target / path.relative_to(folder).as_posix()).write_bytes(path.read_bytes())
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def beside(path: Path, folder: Path, target: Location) -> Location:
    """Where ``path``, written in ``folder`` (see :func:`staged`), ends up below ``target``."""
    return target / path.relative_to(folder).as_posix() if folder != target else path
