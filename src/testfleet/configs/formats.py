"""Read and write configuration files in seven formats, so that values round-trip exactly.

Approach: each format is one reader and one writer around the well-kept library for it
(PyYAML's safe loader and dumper, ``json``, ``tomllib``/``tomli_w``, and for the formats that hold
only text, :mod:`testfleet.configs.textformats`: ``configparser``, ``javaproperties``,
``xmltodict``). Readers turn every parser error into one :class:`~testfleet.errors.ConfigError`
naming the source and, where the parser knows it, the line and column (``place``); no parser's
own exception escapes. Writers first check the data against what the format can hold and refuse,
naming the key path (syntax: :mod:`testfleet.configs.paths`), anything the file would not give
back exactly. :func:`dump` writes a temporary file beside the target and renames it over.

- **yaml**, **json**, **toml** keep types: ``loads(dumps(d)) == d``. YAML follows PyYAML's
  YAML 1.1 reading (``2024-01-01`` is a ``date``, ``yes`` a bool, ``12:30`` the int 750, ``1e3``
  a string) and writes those types back unquoted, strings that would read otherwise quoted; it
  keeps NaN/inf. JSON refuses NaN/inf and non-string keys. TOML needs a table at the top, has no
  null (refused, naming the key), keeps NaN/inf, dates and times. YAML and JSON refuse duplicate
  keys, as TOML does, rather than keep the last one silently.
- **directives** (:mod:`testfleet.configs.directives`): redis.conf, sshd_config and
  postgresql.conf's ``key value`` lines, ``{key: str or [str, ...]}``. A ``.conf`` file is read
  as INI when it has a ``[section]`` header and as directives otherwise; ``sshd_config`` and
  ``ssh_config`` are directives whatever their suffix.
- **ini**, **properties**, **xml**, **directives** hold text. Writers take str, int, float, bool and None, and
  :func:`coerce_scalars` reads numbers and booleans back: a string becomes a number only when
  writing the number gives the string again (``"8080"``, ``"-1.5"``; not ``"007"``, ``"1.50"``,
  ``"+5"``, ``"nan"``), and ``true``/``false`` in any case a bool. So
  ``coerce_scalars(loads(dumps(d))) == d`` whenever d's strings do not themselves read as numbers
  or booleans (``"8080"`` comes back as 8080), and ``dumps(loads(t)) == t`` for text ``dumps``
  wrote. The per-format limits (XML's empty elements and one-item lists, INI's whitespace) are in
  :mod:`testfleet.configs.textformats`.
"""

from __future__ import annotations

import codecs
import json
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import yaml

from testfleet.atomic import atomic_write_text
from testfleet.configs.directives import looks_like_directives, read_directives, write_directives
from testfleet.configs.paths import MAX_DEPTH, check_depth, flatten, set_path, unflatten, walk
from testfleet.configs.textformats import (
    SCALARS,
    line_col,
    read_ini,
    read_properties,
    read_xml,
    refuse,
    scalar_text,
    write_ini,
    write_properties,
    write_xml,
)
from testfleet.errors import ConfigError

__all__ = ["FORMATS", "ConfigDocument", "coerce_scalars", "detect_format", "dump", "dumps",
           "flatten", "load", "loads", "set_path", "unflatten"]

FORMATS = ("yaml", "json", "toml", "ini", "xml", "properties", "directives")
#: The formats that hold only text: :func:`coerce_scalars` reads their numbers and booleans.
STRING_FORMATS = ("ini", "properties", "xml", "directives")
_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml", ".ini": "ini",
             ".cfg": "ini", ".conf": "ini", ".xml": "xml", ".properties": "properties"}
#: Files named so hold directives whatever their suffix.
_DIRECTIVE_NAMES = ("sshd_config", "ssh_config")
_UNICODE_BREAKS = re.compile("[\x85\u2028\u2029]")
_NUMBER = re.compile(r"-?[0-9][0-9.e+-]*", re.ASCII)


@dataclass
class ConfigDocument:
    """A configuration file as read: its data, its format and where it came from."""

    data: Any
    format: str
    path: Path


def detect_format(path: str | Path, text: str | None = None, data: Any = None) -> str:
    """The format a file's name says (``.yml`` -> ``"yaml"``, ``.cfg`` -> ``"ini"``, ...).

    A ``.conf`` file is INI or directives: given its ``text``, directives unless it has a
    ``[section]`` header; given the ``data`` to write, directives unless every value is a
    mapping (a section); given neither, INI."""
    path = Path(path)
    if path.name in _DIRECTIVE_NAMES:
        return "directives"
    suffix = path.suffix.lower()
    if suffix == ".conf":
        if text is not None:
            return "directives" if looks_like_directives(text) else "ini"
        if isinstance(data, dict) and data and not all(isinstance(v, dict) for v in data.values()):
            return "directives"
    if suffix not in _SUFFIXES:
        what = f"the suffix {suffix!r}" if suffix else "a name without a suffix"
        raise ConfigError(f"cannot tell the configuration format from {what}", source=str(path),
                          expected="one of " + ", ".join(_SUFFIXES) + ", or a file named "
                                   + " or ".join(_DIRECTIVE_NAMES))
    return _SUFFIXES[suffix]


def loads(text: str, fmt: str, *, source: str = "<string>") -> Any:
    """Parse ``text`` as ``fmt``; every problem is a ConfigError naming ``source``."""
    reader = _READERS[_format(fmt, source)]
    if not isinstance(text, str):
        raise ConfigError(f"expected text, got {type(text).__name__}", source=source)
    try:
        data = reader(text, source)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"{fmt} nested too deeply to read", source=source,
                          expected=f"at most {MAX_DEPTH} levels of nesting") from None
    except Exception as exc:  # noqa: BLE001 - a parser's own exception never escapes
        raise ConfigError(f"invalid {fmt}: {exc}", source=source) from None
    check_depth(data, source)  # the readers of XML and TOML build any depth; nothing else walks it
    return data


def dumps(data: Any, fmt: str, *, source: str = "<data>") -> str:
    """``data`` as ``fmt`` text; ConfigError naming the key path if the format cannot hold it."""
    writer = _WRITERS[_format(fmt, source)]
    try:
        text = writer(data, source)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(f"the data is nested too deeply (or contains itself) for {fmt}",
                          source=source) from None
    except Exception as exc:  # noqa: BLE001 - nor does a writer's
        raise ConfigError(f"cannot write {fmt}: {exc}", source=source) from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError("the data holds a character UTF-8 cannot encode (a lone surrogate?)",
                          source=source, place=line_col(text, exc.start)) from None
    return text


def read_text(path: str | Path) -> str:
    """A user's file as text (UTF-8, a BOM allowed); a ConfigError naming the file, and the line
    and byte of the first bad byte, when it cannot be read or is not UTF-8."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror or exc}", source=str(path)) from None
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = exc.start + skip
        line = raw.count(b"\n", 0, at) + 1
        raise ConfigError("the file is not valid UTF-8", source=str(path),
                          place=f"line {line}, byte {at + 1}", expected="UTF-8 text") from None


def load(path: str | Path) -> ConfigDocument:
    """Read a configuration file (UTF-8, a BOM allowed) in the format its suffix names."""
    path = Path(path)
    detect_format(path)  # an unknown suffix is refused before the file is read
    text = read_text(path)
    fmt = detect_format(path, text)
    return ConfigDocument(loads(text, fmt, source=str(path)), fmt, path)


def dump(data: Any, path: str | Path, fmt: str | None = None) -> None:
    """Write ``data`` to ``path`` atomically: the whole new file or, on any error, no change."""
    path = Path(path)
    text = dumps(data, fmt or detect_format(path, data=data), source=str(path))
    if not path.name or path.name in (".", ".."):
        raise ConfigError("cannot write to a path that names no file", source=str(path))
    try:
        atomic_write_text(path, text, parents=False)
    except OSError as exc:
        raise ConfigError(f"cannot write the file: {exc.strerror or exc}", source=str(path)) from None


def coerce_scalars(data: Any) -> Any:
    """Numbers and booleans out of the strings a text-only format read (see the module doc)."""
    if isinstance(data, dict):
        return {key: coerce_scalars(value) for key, value in data.items()}
    if isinstance(data, list):
        return [coerce_scalars(value) for value in data]
    if not isinstance(data, str):
        return data
    if data.lower() in ("true", "false"):
        return data.lower() == "true"
    if _NUMBER.fullmatch(data):
        try:
            number: int | float = int(data)
        except ValueError:
            try:
                number = float(data)
            except ValueError:
                return data
        if scalar_text(number) == data and (isinstance(number, int) or math.isfinite(number)):
            return number
    return data


def _format(fmt: str, source: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown configuration format {fmt!r}", source=source,
                          expected="one of " + ", ".join(FORMATS))
    return fmt


# ---------------------------------------------------------------- yaml

class _YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys instead of keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            f"found duplicate key {key!r}",
                                                            key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


class _YamlDumper(yaml.SafeDumper):
    """PyYAML's safe dumper, double-quoting strings with Unicode line breaks (NEL, LS, PS).

    Left to choose, PyYAML may write them single-quoted and read them back as spaces.
    """

    def choose_scalar_style(self) -> str:
        value = getattr(self.event, "value", None) or ""
        return '"' if _UNICODE_BREAKS.search(value) else super().choose_scalar_style()


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str | None]:
    """PyYAML's complaint and where: ``(problem, "line L, column C" or None)``."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
    return getattr(exc, "problem", None) or str(exc).splitlines()[0], where


def _read_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = ", ".join(part for part in (exc.context, exc.problem) if part)
        place = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise ConfigError(f"invalid YAML: {message}", source=source, place=place) from None
    except yaml.reader.ReaderError as exc:
        char = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise ConfigError(f"invalid YAML: character U+{char:04X} is not allowed ({exc.reason})",
                          source=source, place=line_col(text, exc.position)) from None


def _write_yaml(data: Any, source: str) -> str:
    try:
        return yaml.dump(data, Dumper=_YamlDumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False)
    except yaml.representer.RepresenterError:
        known = _YamlDumper.yaml_representers
        parts, node = next(((p, n) for p, n in walk(data) if type(n) not in known), ((), data))
        raise refuse(f"YAML cannot hold a {type(node).__name__} value", source, parts,
                     expected="mappings, lists, text, numbers, booleans, null, dates, bytes, sets") from None


# ---------------------------------------------------------------- json

class _Refused(Exception):
    pass


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def _json_constant(name: str) -> Any:
    raise _Refused(f"{name} is not JSON (only finite numbers are)")


def _read_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_json_object, parse_constant=_json_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", source=source,
                          place=f"line {exc.lineno}, column {exc.colno}") from None
    except _Refused as exc:
        raise ConfigError(f"invalid JSON: {exc}", source=source) from None


def _check_tree(data: Any, fmt: str, source: str, problem: Callable[[Any], tuple[str, str] | None]) -> None:
    """Refuse a non-string key, or a value ``problem`` finds fault with, naming its key path."""
    for parts, node in walk(data):
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    raise refuse(f"{fmt} keys are strings, not {type(key).__name__}", source, (*parts, key))
        elif found := problem(node):
            raise refuse(found[0], source, parts, expected=found[1])


def _json_problem(node: Any) -> tuple[str, str] | None:
    if isinstance(node, float) and not math.isfinite(node):
        return f"JSON cannot hold {node!r}", "a finite number"
    if not isinstance(node, list | tuple | str | int | float | None):
        return f"JSON cannot hold a {type(node).__name__} value", SCALARS
    return None


def _write_json(data: Any, source: str) -> str:
    _check_tree(data, "JSON", source, _json_problem)
    return json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------- toml

def _read_toml(text: str, source: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r" \(at (?:line (\d+), column (\d+)|end of document)\)$", message)
        if not found:
            raise ConfigError(f"invalid TOML: {message}", source=source) from None
        place = (f"line {found[1]}, column {found[2]}" if found[1]
                 else line_col(text, len(text)) + " (end of document)")
        raise ConfigError(f"invalid TOML: {message[:found.start()]}", source=source, place=place) from None


def _write_toml(data: Any, source: str) -> str:
    if not isinstance(data, dict):
        raise refuse(f"a TOML document is a table, not {type(data).__name__}", source, expected="a mapping")
    no_null = ("TOML has no null value", "a value, or leave the key out")
    _check_tree(data, "TOML", source, lambda node: no_null if node is None else None)
    return tomli_w.dumps(data)


_READERS = {"yaml": _read_yaml, "json": _read_json, "toml": _read_toml, "ini": read_ini,
            "xml": read_xml, "properties": read_properties, "directives": read_directives}
_WRITERS = {"yaml": _write_yaml, "json": _write_json, "toml": _write_toml, "ini": write_ini,
            "xml": write_xml, "properties": write_properties, "directives": write_directives}
