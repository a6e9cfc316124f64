"""The formats that hold only text: INI, Java .properties and XML.

Their writers accept str, int, float, bool (written ``true``/``false``) and None (written empty)
and refuse, naming the key path, whatever the file would not give back exactly:

- **ini** (``configparser``, interpolation off, keys case-preserving): ``{section: {key: str}}``.
  ``[DEFAULT]`` is read as an ordinary section, so nothing is inherited and every key stays where
  it was written. Values may span lines (written as indented continuations); a key or value with
  surrounding whitespace, a key with ``=`` or ``:``, or a continuation line starting with ``#`` or
  ``;`` is refused, since configparser would read it back changed.
- **properties** (``javaproperties``): ``{key: str}``, every key and value escaped as Java does,
  non-ASCII as ``\\uXXXX`` so that Java's ISO-8859-1 reader sees it too. A nested value is written
  as one key per leaf, the top-level key followed by the leaf's path (``server.hosts[0]``).
- **xml** (``xmltodict``): ``{root: {"@attr": ..., "#text": ..., "child": ...}}``, a repeated
  element is a list, an empty element reads as ``None`` (``""`` too), and surrounding whitespace
  of element text is stripped on reading, so it is refused on writing (attributes keep it). A
  one-item list reads back as the item itself. Names are checked with expat, the parser that
  reads them back.
"""

from __future__ import annotations

import configparser
import functools
import io
import re
from typing import Any
from xml.parsers import expat

import javaproperties
import xmltodict

from testfleet.configs.paths import flatten, format_path
from testfleet.errors import ConfigError

__all__ = ["SCALARS", "line_col", "read_ini", "read_properties", "read_xml", "refuse", "scalar_text",
           "write_ini", "write_properties", "write_xml"]

SCALARS = "a string, number, boolean or null"
_NO_DEFAULT = "\x00testfleet: no default section\x00"  # so [DEFAULT] reads as a plain section
_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # what str.splitlines splits on
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def line_col(text: str, index: int) -> str:
    """``line L, column C`` (both from 1) of a character index into ``text``."""
    line = text.count("\n", 0, index) + 1
    return f"line {line}, column {index - text.rfind(chr(10), 0, index)}"


def refuse(message: str, source: str, parts: tuple[Any, ...] | str = (),
           expected: str | None = None) -> ConfigError:
    """A ConfigError placed at a key path (a tuple of keys) or at a place already spelled (a str)."""
    place = parts if isinstance(parts, str) else format_path(parts)
    return ConfigError(message, source=source, place=place or None, expected=expected)


def scalar_text(value: Any, fmt: str = "", source: str = "", parts: tuple[Any, ...] | str = ()) -> str:
    """How ini, properties and xml spell a scalar; ConfigError for anything else."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, str):
        return str(value)
    if value is None:
        return ""
    what = {"{}": "an empty mapping", "[]": "an empty list"}.get(repr(value), f"a {type(value).__name__}")
    raise refuse(f"{fmt} cannot hold {what} here", source, parts, expected=SCALARS)


# ---------------------------------------------------------------- ini

def _ini_parser() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, default_section=_NO_DEFAULT)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    return parser


def read_ini(text: str, source: str) -> dict[str, dict[str, str]]:
    parser = _ini_parser()
    try:
        parser.read_string(text, source=source)
    except configparser.MissingSectionHeaderError as exc:
        raise ConfigError("invalid INI: a key before the first [section]", source=source,
                          place=f"line {exc.lineno}", expected="a [section] header first") from None
    except configparser.ParsingError as exc:
        line, content = exc.errors[0]
        raise ConfigError(f"invalid INI: cannot read the line {content}", source=source, place=f"line {line}",
                          expected="[section], key = value, an indented continuation or a comment") from None
    except configparser.Error as exc:
        lineno = getattr(exc, "lineno", None)
        message = str(exc.message).split("\n")[0].split("]: ")[-1]
        raise ConfigError(f"invalid INI: {message}", source=source,
                          place=f"line {lineno}" if lineno else None) from None
    return {name: dict(parser[name]) for name in parser.sections()}


def write_ini(data: Any, source: str) -> str:
    if not isinstance(data, dict):
        raise refuse(f"INI data is a mapping of sections, not {type(data).__name__}", source,
                     expected="{section: {key: value}}")
    parser = _ini_parser()
    for section, entries in data.items():
        if not isinstance(section, str) or not section or _BREAKS.search(section) or section == _NO_DEFAULT:
            raise refuse(f"{section!r} cannot be an INI section name", source, (section,),
                         expected="a non-empty name on one line")
        if not isinstance(entries, dict):
            raise refuse(f"an INI section holds keys, not {type(entries).__name__}", source, (section,),
                         expected="{key: value}")
        parser.add_section(section)
        for key, value in entries.items():
            parts = (section, key)
            if not _ini_key_ok(key):
                raise refuse(f"{key!r} cannot be an INI key", source, parts,
                             expected="one line, no '=' or ':', no surrounding space, not starting # ; [")
            text = scalar_text(value, "INI", source, parts)
            if not _ini_value_ok(text):
                raise refuse("INI would read this value back changed", source, parts,
                             expected="no surrounding space, no line break but \\n, no continuation line "
                                      "starting with # or ;")
            parser.set(section, key, text)
    out = io.StringIO()
    parser.write(out)
    return out.getvalue().rstrip("\n") + "\n" if data else ""


def _ini_key_ok(key: Any) -> bool:
    return (isinstance(key, str) and key != "" and key == key.strip() and not _BREAKS.search(key)
            and "=" not in key and ":" not in key and key[0] not in "#;[")


def _ini_value_ok(text: str) -> bool:
    """Whether configparser reads ``text`` back as it is (it strips each line, skips comments)."""
    lines = text.split("\n")
    return (text == text.strip() and not _BREAKS.search(text.replace("\n", ""))
            and all(line == line.strip() for line in lines)
            and not any(line[:1] in ("#", ";") for line in lines[1:]))


# ---------------------------------------------------------------- properties

def read_properties(text: str, source: str) -> dict[str, str]:
    try:
        return dict(javaproperties.loads(text))
    except javaproperties.InvalidUEscapeError as exc:
        at = text.find(exc.escape)
        raise ConfigError(f"invalid .properties: bad escape {exc.escape!r}", source=source,
                          place=line_col(text, at) if at >= 0 else None,
                          expected="\\u and four hex digits") from None


def write_properties(data: Any, source: str) -> str:
    if not isinstance(data, dict):
        raise refuse(f".properties data is a mapping, not {type(data).__name__}", source,
                     expected="{key: value}")
    flat: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise refuse(f".properties keys are strings, not {type(key).__name__}", source, (key,))
        try:
            leaves = flatten(value) if isinstance(value, dict | list) and value else {"": value}
        except ConfigError as exc:
            raise refuse(exc.message, source, _join(key, exc.place or ""), exc.expected) from None
        for sub, leaf in leaves.items():
            name = _join(key, sub)
            if name in flat:
                raise refuse(f"two entries would both be written as the key {name!r}", source, name)
            flat[name] = scalar_text(leaf, ".properties", source, name)
    return javaproperties.dumps(flat, timestamp=False, ensure_ascii=True)


def _join(key: str, sub: str) -> str:
    return key + (sub if not sub or sub.startswith("[") else "." + sub)


# ---------------------------------------------------------------- xml

def read_xml(text: str, source: str) -> Any:
    try:
        return xmltodict.parse(text)
    except expat.ExpatError as exc:
        raise ConfigError(f"invalid XML: {expat.ErrorString(exc.code)}", source=source,
                          place=f"line {exc.lineno}, column {exc.offset + 1}") from None


@functools.lru_cache(maxsize=4096)
def _xml_name_ok(name: str, attribute: bool) -> bool:
    """Whether expat (which reads the file back) sees exactly this element or attribute name."""
    seen: list[tuple[str, dict[str, str]]] = []
    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda tag, attrs: seen.append((tag, attrs))
    try:
        parser.Parse(f'<x {name}=""/>' if attribute else f"<{name}/>", True)
    except expat.ExpatError:
        return False
    return seen == ([("x", {name: ""})] if attribute else [(name, {})])


def write_xml(data: Any, source: str) -> str:
    if not isinstance(data, dict) or len(data) != 1:
        raise refuse("XML data is a mapping with exactly one key, the root element", source,
                     expected="{root: ...}")
    [(root, value)] = data.items()
    if isinstance(value, list | tuple):
        raise refuse("an XML document has exactly one root element, not a list", source, (root,))
    return xmltodict.unparse({_xml_name(root, (), source): _xml_element(value, (root,), source)},
                             pretty=True, indent="  ") + "\n"


def _xml_name(key: Any, parts: tuple[Any, ...], source: str, attribute: bool = False) -> str:
    name = key[1:] if attribute else key
    if not isinstance(key, str) or not _xml_name_ok(name, attribute):
        raise refuse(f"{name!r} is not a valid XML {'attribute' if attribute else 'element'} name",
                     source, (*parts, key), expected="an XML name such as server or http-port")
    return key


def _xml_element(value: Any, parts: tuple[Any, ...], source: str) -> Any:
    if isinstance(value, list | tuple):
        raise refuse("a list inside a list has no XML form", source, parts,
                     expected="one element or a list of them")
    if not isinstance(value, dict):
        return _xml_text(value, parts, source, element=True)
    out: dict[str, Any] = {}
    for key, item in value.items():
        here = (*parts, key)
        if key == "#text":
            out[key] = _xml_text(item, here, source, element=True)
        elif isinstance(key, str) and key.startswith("@"):
            out[_xml_name(key, parts, source, attribute=True)] = _xml_text(item, here, source, element=False)
        elif isinstance(key, str) and key.startswith("#"):
            raise refuse(f"{key!r} has no XML form here", source, here,
                         expected="an element name, @attribute or #text")
        elif isinstance(item, list | tuple):
            if not item:
                raise refuse("an empty list has no XML form", source, here, expected="at least one element")
            out[_xml_name(key, parts, source)] = [_xml_element(one, (*here, index), source)
                                                  for index, one in enumerate(item)]
        else:
            out[_xml_name(key, parts, source)] = _xml_element(item, here, source)
    return out


def _xml_text(value: Any, parts: tuple[Any, ...], source: str, *, element: bool) -> str | None:
    if value is None and element:
        return None
    text = scalar_text(value, "XML", source, parts)
    bad = _NOT_XML_CHAR.search(text)
    if bad:
        raise refuse(f"XML cannot hold the character U+{ord(bad[0]):04X}", source, parts)
    if element and (text != text.strip() or "\r" in text):
        raise refuse("XML element text loses surrounding whitespace and carriage returns when read",
                     source, parts, expected="text without them (an attribute keeps them)")
    return text
