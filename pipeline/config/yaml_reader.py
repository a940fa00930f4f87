"""Read a YAML config file into plain Python values, with the place of every key.

Only what a config can hold is read: mappings with plain, unique keys, lists, and the
scalars of YAML's core schema (strings, numbers, booleans, null). Everything else is
refused as one ``file:line:col key.path: message`` line: text that is not UTF-8, NUL
bytes and other characters YAML does not allow, tags (``!!python/...`` and any other:
never constructed, never ignored), nesting deeper than :data:`MAX_DEPTH`, aliases that
expand to more than :data:`MAX_VALUES` values, and files larger than :data:`MAX_BYTES`.
"""

from __future__ import annotations

import os

import yaml
from yaml.constructor import SafeConstructor

from pipeline.errors import ConfigError

MAX_BYTES = 1 << 20  # a config is a few kB; many inputs go in a CSV manifest
MAX_DEPTH = 64  # a config nests about 5 deep
MAX_VALUES = 50_000  # values after aliases are expanded
MAX_ECHO = 80  # characters of a value an error line shows

_CORE = "tag:yaml.org,2002:"
_SCALARS = {f"{_CORE}{t}" for t in ("str", "int", "float", "bool", "null")}
_MAP, _SEQ, _TIME = f"{_CORE}map", f"{_CORE}seq", f"{_CORE}timestamp"


def short(value: object, limit: int = MAX_ECHO) -> str:
    """``value`` as the config wrote it (``true``, ``null``; a string quoted), cut to
    ``limit`` characters (an error line echoes no more)."""
    text = _shown(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return f"[{', '.join(_shown(v) for v in value)}]"
    if isinstance(value, dict):
        return f"{{{', '.join(f'{_shown(k)}: {_shown(v)}' for k, v in value.items())}}}"
    return repr(value)


def _position(text: str | bytes, offset: int) -> str:
    """``line:col`` (from 1) of character (or byte) ``offset`` of ``text``."""
    newline = b"\n" if isinstance(text, bytes) else "\n"
    line = text.count(newline, 0, offset) + 1
    col = offset - (text.rfind(newline, 0, offset) + 1) + 1
    return f"{line}:{col}"


def _text(filename: str) -> str:
    """The config file's text; one line where it is not a readable UTF-8 text file."""
    try:
        if os.path.isdir(filename):
            raise ConfigError(f"{filename}: expected a config file, got a folder")
        if os.path.exists(filename) and not os.path.isfile(filename):  # a FIFO, a device
            raise ConfigError(f"{filename}: expected a config file, got a special file")
        size = os.path.getsize(filename)
        if size > MAX_BYTES:
            raise ConfigError(
                f"{filename}: {size / (1 << 20):.1f} MiB, larger than a config can be "
                f"({MAX_BYTES >> 20} MiB; list many inputs in a CSV manifest)"
            )
        with open(filename, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ConfigError(f"{filename}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{filename}: cannot read the config file: {exc.strerror}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise ConfigError(f"{filename}:{_position(data, nul)}: a NUL byte; a config is text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{filename}:{_position(data, exc.start)}: not UTF-8 text "
            f"(byte 0x{data[exc.start]:02x}); save the config as UTF-8"
        ) from None


def _check_depth(text: str, filename: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` (the parser itself does not recurse)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                at = f"{event.start_mark.line + 1}:{event.start_mark.column + 1}"
                raise ConfigError(
                    f"{filename}:{at}: nested more than {MAX_DEPTH} levels deep; "
                    "a config nests a few levels"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _yaml_error(exc: yaml.YAMLError, filename: str, text: str) -> ConfigError:
    if isinstance(exc, yaml.reader.ReaderError):
        at = _position(text, exc.position)
        char = exc.character
        char = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        return ConfigError(f"{filename}:{at}: not valid YAML: character {char} is not allowed")
    mark = getattr(exc, "problem_mark", None)
    pos = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return ConfigError(f"{pos}: not valid YAML: {problem}")


class _Reader:
    """Turns composed YAML nodes into plain values, noting each key's place in ``marks``."""

    def __init__(self, filename: str, marks: dict) -> None:
        self.filename, self.marks = filename, marks
        self.values = 0
        self.scalars = SafeConstructor()

    def at(self, node: yaml.Node) -> str:
        return f"{self.filename}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def value(self, node: yaml.Node, path: tuple):
        self.values += 1
        if self.values > MAX_VALUES:
            raise ConfigError(
                f"{self.at(node)}: more than {MAX_VALUES} values once its aliases are "
                "expanded; a config holds far fewer"
            )
        self.marks[path] = self.at(node)
        where = ".".join(map(str, path)) or "the top level"
        if node.tag not in (*_SCALARS, _MAP, _SEQ, _TIME):
            raise ConfigError(
                f"{self.at(node)} {where}: the YAML tag {short(node.tag)} is not allowed; "
                "a config holds plain values"
            )
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.value(v, (*path, i)) for i, v in enumerate(node.value)]
        return self.scalar(node, where)

    def scalar(self, node: yaml.Node, where: str):
        if node.tag in (f"{_CORE}str", _TIME):  # a date is text to a config
            return node.value
        try:
            return self.scalars.construct_object(node)
        except (yaml.YAMLError, ValueError) as exc:
            raise ConfigError(f"{self.at(node)} {where}: not a plain value: {exc}") from None

    def mapping(self, node: yaml.MappingNode, path: tuple) -> dict:
        out: dict = {}
        first: dict = {}  # key -> its line
        for k, v in node.value:
            at = self.at(k)
            where = ".".join(map(str, path)) or "the top level"
            if not isinstance(k, yaml.ScalarNode):
                raise ConfigError(f"{at} {where}: expected a plain key, got a {k.id}")
            if k.tag not in (*_SCALARS, _TIME):
                raise ConfigError(
                    f"{at} {where}: the YAML tag {short(k.tag)} is not allowed on a key"
                )
            key = self.scalar(k, where)
            if key in first:  # a YAML 1.2 mapping's keys are unique
                dotted = ".".join(map(str, (*path, key)))
                raise ConfigError(
                    f"{at} {dotted}: duplicate key {short(key)} (first at line {first[key]})"
                )
            first[key] = k.start_mark.line + 1
            self.marks[(*path, key, "__key__")] = at
            out[key] = self.value(v, (*path, key))
        return out


def read_yaml(filename: str, marks: dict):
    """The plain value a YAML config file holds (None for an empty file); ``marks`` gets
    ``file:line:col`` of every value (by key path) and key (path + ``"__key__"``).

    Raises
    ------
    ConfigError
        One line naming the file, line and column of the problem.
    """
    return parse_yaml(_text(filename), filename, marks)


def parse_yaml(text: str, filename: str, marks: dict, path: tuple = ()):
    """The plain value YAML ``text`` holds (see :func:`read_yaml`); ``filename`` names it
    in errors, and ``path`` is the key path it is the value of."""
    try:
        _check_depth(text, filename)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, filename, text) from None
    if node is None:
        return None
    return _Reader(filename, marks).value(node, path)
