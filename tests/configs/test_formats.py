"""Configuration formats: values round-trip exactly, bad input is one ConfigError naming the place.

The round-trip properties generate data inside what each format can represent; a second
property per text-only format (ini, properties, xml) feeds arbitrary text and checks that
whatever ``dumps`` accepts reads back as exactly the text it wrote for each value.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testfleet.configs import (
    FORMATS,
    ConfigDocument,
    coerce_scalars,
    detect_format,
    dump,
    dumps,
    load,
    loads,
    set_path,
    unflatten,
)
from testfleet.errors import ConfigError

SLOW = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (True is not 1), NaN equal to NaN, -0.0 kept."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def plain(text: str) -> bool:
    """A string whose text form cannot be mistaken for a number or a boolean."""
    try:
        float(text)
    except ValueError:
        return text.lower() not in ("true", "false")
    return False


def text_form(value: Any) -> Any:
    """What a text-only format writes for a value (what it must read back before coercion)."""
    if isinstance(value, dict):
        return {key: text_form(item) for key, item in value.items()}
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)


# -- strategies --------------------------------------------------------------------------------

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
datetimes = st.datetimes(timezones=st.none() | offsets)
ints64 = st.integers(-(2**63), 2**63 - 1)
any_float = st.floats(allow_nan=True, allow_infinity=True)
finite_float = st.floats(allow_nan=False, allow_infinity=False)
awkward_text = st.sampled_from(["", " ", "a.b", "x y", "ü", "日本", "😀", "yes", "no", "on", "null", "~",
                                "<<", "=", "1e3", "0x1F", "12:30", "2024-01-01", ".nan", "-", "? a",
                                "- a", "a: b", "#c", "'q'", '"q"', "\\", "\t", "a\nb", "a \n b "])
text = st.text() | awkward_text


def nested(scalars: st.SearchStrategy[Any], keys: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(keys, inner, max_size=4), max_leaves=16)


yaml_data = nested(st.none() | st.booleans() | st.integers() | any_float | text | st.binary()
                   | st.dates() | datetimes, text | st.integers())
json_data = nested(st.none() | st.booleans() | st.integers() | finite_float | text, text)
toml_values = nested(st.booleans() | ints64 | any_float | text | st.dates() | datetimes | st.times(),
                     text)
toml_data = st.dictionaries(text, toml_values, max_size=5)

# the documented restrictions of the text-only formats
plain_text = (st.text() | awkward_text).map(str.strip).filter(lambda s: plain(s) and not BREAKS.search(s))
text_scalars = plain_text | st.integers() | finite_float | st.booleans()
ini_keys = plain_text.filter(lambda k: k != "" and "=" not in k and ":" not in k and k[0] not in "#;[")
ini_data = st.dictionaries(plain_text.filter(bool), st.dictionaries(ini_keys, text_scalars, max_size=5),
                           max_size=4)
properties_data = st.dictionaries(text, text_scalars, max_size=6)

xml_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("\t\n")
xml_text = st.text(xml_chars, min_size=1).map(str.strip).filter(lambda s: s != "" and plain(s))
xml_scalars = xml_text | st.integers() | finite_float | st.booleans()
xml_names = (st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-]{0,8}", fullmatch=True)
             | st.sampled_from(["ns:a", "é", "日本"]))


@st.composite
def xml_element(draw: st.DrawFn, depth: int = 0) -> Any:
    if depth >= 3 or draw(st.booleans()):
        return draw(st.none() | xml_scalars)
    attr_values = st.text(xml_chars).filter(plain) | st.integers() | st.booleans()
    attrs = draw(st.dictionaries(xml_names.map("@".__add__), attr_values, max_size=3))
    children: dict[str, Any] = {}
    for name in draw(st.lists(xml_names, max_size=3, unique=True)):
        many = draw(st.booleans())
        children[name] = ([draw(xml_element(depth + 1)) for _ in range(draw(st.integers(2, 3)))]
                          if many else draw(xml_element(depth + 1)))
    element = {**attrs, **children}
    if element and draw(st.booleans()):
        element["#text"] = draw(xml_scalars)
    return element or None


xml_data = st.builds(lambda root, element: {root: element}, xml_names, xml_element())


# -- round trips -------------------------------------------------------------------------------

@SLOW
@given(yaml_data)
@example({"nan": math.nan, "inf": -math.inf, "date": dt.date(2024, 1, 1), "when": "2024-01-01"})
@example({"yes": "yes", "on": True, 1: "one", "": "", "é": "<<", "x.y": "a\u2028b\x85c \n"})
def test_yaml_round_trips(data: Any) -> None:
    assert same(loads(dumps(data, "yaml"), "yaml"), data)


@SLOW
@given(json_data)
@example({"é": ["", -0.0, 10**30, 1e300, None, True], "a.b": {"": "\u2028\x00"}})
def test_json_round_trips(data: Any) -> None:
    assert same(loads(dumps(data, "json"), "json"), data)


@SLOW
@given(toml_data)
@example({"nan": math.nan, "inf": math.inf, "": {"x.y": [1, "a", {"b": dt.time(1, 2, 3, 4)}]},
          "when": dt.datetime(2024, 1, 1, 10, 0, 0, 5, tzinfo=dt.UTC), "del": "\x7f\x00"})
def test_toml_round_trips(data: Any) -> None:
    assert same(loads(dumps(data, "toml"), "toml"), data)


@SLOW
@given(ini_data)
@example({"DEFAULT": {"Key": "%(x)s", "n": 8080}, "x y": {"a b": "", "c": -1.5, "d": False}})
def test_ini_round_trips(data: Any) -> None:
    written = dumps(data, "ini")
    assert same(coerce_scalars(loads(written, "ini")), data)
    assert dumps(loads(written, "ini"), "ini") == written
    assert same(loads(dumps(loads(written, "ini"), "ini"), "ini"), loads(written, "ini"))


@SLOW
@given(properties_data)
@example({"": "", "a b": "x=y", " lead": "#!", "k:=": "é😀\t", "a.b[0]": 1.5})
def test_properties_round_trips(data: Any) -> None:
    written = dumps(data, "properties")
    assert same(coerce_scalars(loads(written, "properties")), data)
    assert dumps(loads(written, "properties"), "properties") == written
    assert same(loads(dumps(loads(written, "properties"), "properties"), "properties"),
                loads(written, "properties"))


@SLOW
@given(xml_data)
@example({"config": {"@version": " 2\n\t", "server": [{"@id": 1, "port": 80}, {"@id": "é"}],
                     "empty": None, "#text": "note"}})
def test_xml_round_trips(data: Any) -> None:
    written = dumps(data, "xml")
    assert same(coerce_scalars(loads(written, "xml")), data)
    assert dumps(loads(written, "xml"), "xml") == written
    assert same(loads(dumps(loads(written, "xml"), "xml"), "xml"), loads(written, "xml"))


words = st.from_regex(r"[a-z][a-z0-9_-]{0,6}", fullmatch=True)


@SLOW
@given(st.dictionaries(words, nested(text_scalars, words).filter(lambda v: v not in ({}, [])), max_size=4))
def test_properties_write_nested_data_as_dotted_keys(data: dict[str, Any]) -> None:
    try:
        written = dumps(data, "properties")
    except ConfigError as err:  # only empty containers have no .properties form
        assert "empty" in err.message
        return
    assert same(unflatten(coerce_scalars(loads(written, "properties"))), data)


# whatever a text-only format accepts comes back as exactly the text written for each value
@SLOW
@given(st.dictionaries(text, st.dictionaries(text, st.none() | st.booleans() | any_float | text, max_size=4),
                       max_size=3))
def test_ini_reads_back_whatever_it_writes(data: Any) -> None:
    try:
        written = dumps(data, "ini")
    except ConfigError as err:
        assert err.place
        return
    assert same(loads(written, "ini"), text_form(data))


@SLOW
@given(st.dictionaries(text, st.none() | st.booleans() | any_float | st.integers() | text, max_size=6))
def test_properties_read_back_whatever_they_write(data: Any) -> None:
    assert same(loads(dumps(data, "properties"), "properties"), text_form(data))


def xml_reading(element: dict[str, str]) -> Any:
    """What xmltodict reads back for one element written from ``element`` (all values strings)."""
    read = {key: value for key, value in element.items() if key.startswith("@")}
    read |= {key: value or None for key, value in element.items() if key[:1] not in ("@", "#")}
    if element.get("#text"):
        read["#text"] = element["#text"]
    return read["#text"] if list(read) == ["#text"] else read or None


@SLOW
@given(xml_names, st.dictionaries(xml_names | xml_names.map("@".__add__) | st.just("#text") | st.text(), text,
                                  max_size=4))
def test_xml_reads_back_whatever_it_writes(root: str, element: dict[str, str]) -> None:
    try:
        written = dumps({root: element}, "xml")
    except ConfigError as err:
        assert err.place
        return
    assert same(loads(written, "xml"), {root: xml_reading(element)})


def test_text_formats_write_typed_scalars_as_text() -> None:
    assert dumps({"s": {"on": True, "off": False, "none": None, "n": -3, "x": 1e16}}, "ini") == (
        "[s]\non = true\noff = false\nnone = \nn = -3\nx = 1e+16\n")
    assert loads(dumps({"a": None, "b": True}, "properties"), "properties") == {"a": "", "b": "true"}
    assert loads(dumps({"r": {"a": True, "b": None, "c": ""}}, "xml"), "xml") == {
        "r": {"a": "true", "b": None, "c": None}}


def test_ini_keeps_case_default_section_and_percent_signs() -> None:
    text = "[DEFAULT]\nBase = 1\n[Server]\nPort = 80\nPath = %(Base)s/x\nlines = a\n  b\n"
    data = loads(text, "ini")
    assert data == {"DEFAULT": {"Base": "1"}, "Server": {"Port": "80", "Path": "%(Base)s/x", "lines": "a\nb"}}
    assert loads(dumps(data, "ini"), "ini") == data


def test_xml_follows_xmltodict_conventions() -> None:
    data = loads('<?xml version="1.0"?>\n<!-- c -->\n<a x="1"><b>2</b><b>3</b><c/>t</a>', "xml")
    assert data == {"a": {"@x": "1", "b": ["2", "3"], "c": None, "#text": "t"}}
    assert loads(dumps({"a": {"b": ["only"]}}, "xml"), "xml") == {"a": {"b": "only"}}  # one item: no list


def test_yaml_keeps_pyyaml_types() -> None:
    data = loads("d: 2024-01-01\nt: 2024-01-01 10:00:00+02:00\ny: yes\ne: 1e3\nn: .nan\nx: 12:30\n", "yaml")
    assert data["d"] == dt.date(2024, 1, 1) and data["t"].utcoffset() == dt.timedelta(hours=2)
    assert (data["y"], data["e"], data["x"]) == (True, "1e3", 750)  # YAML 1.1, as PyYAML reads it
    assert math.isnan(data["n"])
    assert same(loads(dumps(data, "yaml"), "yaml"), data)
    assert "d: 2024-01-01\n" in dumps(data, "yaml")  # a date stays a date, unquoted


def test_yaml_merge_keys_are_not_duplicates() -> None:
    data = loads("base: &b {x: 1, y: 2}\nmine:\n  <<: *b\n  x: 3\n", "yaml")
    assert data == {"base": {"x": 1, "y": 2}, "mine": {"x": 3, "y": 2}}
    assert loads("", "yaml") is None and loads("", "ini") == {} and loads("", "toml") == {}


# -- coerce_scalars ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("8080", 8080), ("-1.5", -1.5), ("0", 0), ("-7", -7), ("1e+16", 1e16), ("0.1", 0.1),
    ("true", True), ("FALSE", False), ("True", True),
    ("007", "007"), ("1.50", "1.50"), ("+5", "+5"), ("-0", "-0"), ("1e3", "1e3"), ("1_000", "1_000"),
    ("nan", "nan"), ("inf", "inf"), (" 1", " 1"), ("", ""), ("yes", "yes"), ("٣", "٣"),
    ("1" * 5000, "1" * 5000),
])
def test_coerce_scalars_turns_only_exact_text_forms_into_numbers(text: str, value: Any) -> None:
    assert same(coerce_scalars(text), value)


def test_coerce_scalars_recurses_and_leaves_other_values() -> None:
    assert coerce_scalars({"a": ["1", {"b": "x"}], "c": None, "d": 2.5}) == {"a": [1, {"b": "x"}], "c": None,
                                                                            "d": 2.5}


# -- bad input ---------------------------------------------------------------------------------

SAMPLE = {"server": {"port": 8080, "name": "a b", "tags": ["x", "y"]}}
FLAT_SAMPLES = {"ini": {"server": {"port": 8080, "name": "a b"}},
                "directives": {"port": 8080, "name": "a b", "tags": ["x", "y"]}}
SAMPLES = {fmt: dumps(FLAT_SAMPLES.get(fmt, SAMPLE), fmt) for fmt in FORMATS}
SYNTAX = "{}[]<>=:\"'#;!\\/\n\t -.,@&?01aeflnrstu%*|>"


@st.composite
def mutated(draw: st.DrawFn, fmt: str) -> str:
    base = SAMPLES[fmt]
    start = draw(st.integers(0, len(base)))
    end = draw(st.integers(start, min(len(base), start + 8)))
    return base[:start] + draw(st.text(SYNTAX, max_size=6) | st.text(max_size=3)) + base[end:]


@pytest.mark.parametrize("fmt", FORMATS)
@SLOW
@given(data=st.data())
def test_arbitrary_text_is_read_or_refused_with_a_config_error(fmt: str, data: st.DataObject) -> None:
    text = data.draw(st.text() | st.text(SYNTAX) | mutated(fmt), label="text")
    try:
        loads(text, fmt, source="fuzz.cfg")
    except ConfigError as err:
        assert str(err).startswith("fuzz.cfg")


MALFORMED = [
    ("yaml", "a: 1\nb: [2, 3\nc: 4\n", 3),
    ("yaml", "a: 1\nb: \x01\n", 2),
    ("yaml", "a: 1\na: 2\n", 2),
    ("json", '{\n  "a": 1,\n  "b": \n}\n', 4),
    ("toml", "a = 1\n[b]\nc = \n", 3),
    ("toml", "a = 1\nb = [1,\n", 3),
    ("ini", "[s]\na = 1\nnot a pair\n", 3),
    ("ini", "a = 1\n", 1),
    ("ini", "[s]\na = 1\n[s]\n", 3),
    ("ini", "[s]\na = 1\nb = 2\na = 3\n", 4),
    ("xml", "<a>\n  <b>\n</a>\n", 3),
    ("xml", "<a/>\n<b/>\n", 2),
    ("properties", "a=1\nb=\\u12zz\n", 2),
]
SUFFIX = {"yaml": ".yml", "json": ".json", "toml": ".toml", "ini": ".ini", "xml": ".xml",
          "properties": ".properties", "directives": ".conf"}


@pytest.mark.parametrize(("fmt", "text", "line"), MALFORMED)
def test_malformed_file_names_the_file_and_the_line(tmp_path: Path, fmt: str, text: str, line: int) -> None:
    path = tmp_path / f"bad{SUFFIX[fmt]}"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.source == str(path)
    assert caught.value.place is not None and caught.value.place.startswith(f"line {line}")
    assert str(path) in str(caught.value) and f"line {line}" in str(caught.value)


@pytest.mark.parametrize(("text", "fmt", "words"), [
    ('{"a": 1, "a": 2}', "json", "duplicate key 'a'"),
    ('{"a": NaN}', "json", "NaN"),
    ("", "json", "Expecting value"),
    ("", "xml", "no element found"),
    ('<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "xml", "entities"),
    ("a: !!python/object:os.system x", "yaml", "python/object"),
    ("a: 2024-13-01", "yaml", "month"),
    ("a: [" * 5000, "yaml", "deeply"),
    ("[" * 100000, "json", "deeply"),
    ("--- 1\n--- 2\n", "yaml", "single document"),
])
def test_refusals_are_config_errors(text: str, fmt: str, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        loads(text, fmt)


@pytest.mark.parametrize(("data", "fmt", "place"), [
    ({"a": {"b": [1, None]}}, "toml", "a.b[1]"),
    ([1, 2], "toml", None),
    ({"a": {"x.y": math.nan}}, "json", 'a["x.y"]'),
    ({"a": {1: "x"}}, "json", "a[1]"),
    ({"a": (1, math.inf)}, "json", "a[1]"),
    ({"a": [1, (None,)]}, "toml", "a[1][0]"),
    ({"a": {"b": object()}}, "yaml", "a.b"),
    ({"a": {"b": {"c": 1}}}, "ini", "a.b"),
    ({"a": 1}, "ini", "a"),
    (["a"], "ini", None),
    ({"s": {"k=v": 1}}, "ini", "s.k=v"),
    ({"s": {"k": " padded"}}, "ini", "s.k"),
    ({"s": {"k": "a\n#not a comment"}}, "ini", "s.k"),
    ({"s": {"k": dt.date(2024, 1, 1)}}, "ini", "s.k"),
    ({"a": {}}, "properties", "a"),
    ({"a.b": 1, "a": {"b": 2}}, "properties", "a.b"),
    ({"a": {"b": [{}]}}, "properties", "a.b[0]"),
    ({"a": 1, "b": 2}, "xml", None),
    ({"a": [1, 2]}, "xml", "a"),
    ({"a": {"b": [[1]]}}, "xml", "a.b[0]"),
    ({"a": {"b": []}}, "xml", "a.b"),
    ({"a": {"1b": "x"}}, "xml", "a.1b"),
    ({"a": {"@x y": "x"}}, "xml", "a.@x y"),
    ({"a": {"b c": "x"}}, "xml", "a.b c"),
    ({"a": {"b": " x"}}, "xml", "a.b"),
    ({"a": {"b": "x\x00"}}, "xml", "a.b"),
    ({"a": {"#comment": "x"}}, "xml", "a.#comment"),
    ({"a": "\ud800"}, "json", "line 2, column 9"),
    ({"a": 10**5000}, "json", None),
])
def test_unrepresentable_data_is_refused_naming_the_key_path(data: Any, fmt: str, place: str | None) -> None:
    with pytest.raises(ConfigError) as caught:
        dumps(data, fmt, source="out.cfg")
    assert caught.value.source == "out.cfg"
    assert caught.value.place == place


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown configuration format 'hcl'"):
        loads("", "hcl")
    with pytest.raises(ConfigError, match="unknown configuration format"):
        dumps({}, "hcl")


# -- files -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "fmt"), [
    ("a.yaml", "yaml"), ("a.YML", "yaml"), ("a.json", "json"), ("pyproject.toml", "toml"),
    ("setup.cfg", "ini"),
    ("a.ini", "ini"), ("nginx.conf", "ini"), ("pom.xml", "xml"), ("app.properties", "properties"),
    (Path("dir.d/x.json"), "json"),
])
def test_detect_format_by_suffix(name: str | Path, fmt: str) -> None:
    assert detect_format(name) == fmt


@pytest.mark.parametrize("name", ["Makefile", "a.txt", "a.yaml.bak", ".env"])
def test_detect_format_names_the_path_it_cannot_tell(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        detect_format(Path("conf") / name)
    assert caught.value.source == str(Path("conf") / name) and ".yaml" in (caught.value.expected or "")


@pytest.mark.parametrize("fmt", FORMATS)
def test_dump_then_load_gives_the_document_back(tmp_path: Path, fmt: str) -> None:
    data = loads(SAMPLES[fmt], fmt)
    path = tmp_path / f"conf{SUFFIX[fmt]}"
    dump(data, path)
    document = load(path)
    assert document == ConfigDocument(data, fmt, path)
    assert path.read_text(encoding="utf-8") == dumps(data, fmt)
    assert os.listdir(tmp_path) == [path.name]


def test_dump_with_an_explicit_format(tmp_path: Path) -> None:
    dump({"a": 1}, tmp_path / "out.txt", "json")
    assert loads((tmp_path / "out.txt").read_text(encoding="utf-8"), "json") == {"a": 1}


def test_unrepresentable_dump_leaves_no_file_and_no_temp_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        dump({"a": {"b": None}}, tmp_path / "conf.toml")
    assert caught.value.source == str(tmp_path / "conf.toml") and caught.value.place == "a.b"
    assert os.listdir(tmp_path) == []


def test_failed_replace_keeps_the_old_file_and_removes_the_temp_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "conf.json"
    path.write_text('{"old": true}\n', encoding="utf-8")
    path.chmod(0o640)

    def refuse(*args: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(ConfigError, match="cannot write the file: Permission denied"):
        dump({"new": True}, path)
    assert path.read_text(encoding="utf-8") == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["conf.json"]
    monkeypatch.undo()
    dump({"new": True}, path)
    assert load(path).data == {"new": True}
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # the replaced file's permissions are kept


def test_dump_into_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write the file") as caught:
        dump({"a": 1}, tmp_path / "nowhere" / "conf.json")
    assert caught.value.source == str(tmp_path / "nowhere" / "conf.json")


def test_load_reports_missing_and_undecodable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file") as caught:
        load(tmp_path / "missing.yaml")
    assert caught.value.source == str(tmp_path / "missing.yaml")
    path = tmp_path / "latin1.properties"
    path.write_bytes(b"a=1\nname=caf\xe9\n")
    with pytest.raises(ConfigError, match="not valid UTF-8") as caught:
        load(path)
    assert caught.value.place == "line 2, byte 13"


def test_load_accepts_a_byte_order_mark_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "conf.json"
    path.write_bytes(b'\xef\xbb\xbf{\r\n  "a": "\xc3\xa9"\r\n}\r\n')
    assert load(path).data == {"a": "é"}
    ini = tmp_path / "conf.ini"
    ini.write_bytes(b"[s]\r\na = 1\r\nb = x\r\n  y\r\n")
    assert load(ini).data == {"s": {"a": "1", "b": "x\ny"}}


# ---------------------------------------------------------------- depth guards (issue 15, item 12)

def test_xml_900_elements_deep_is_refused_naming_file_and_level(tmp_path: Path) -> None:
    path = tmp_path / "deep.xml"
    path.write_text("<a>" * 900 + "x" + "</a>" * 900, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.source == str(path) and "nests more than 100 levels" in info.value.message
    assert "level 101" in (info.value.place or "")


def test_toml_dotted_key_3000_levels_deep_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    path.write_text(".".join(["k"] * 3000) + " = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert info.value.source == str(path) and info.value.place.startswith("k.k.k")


def test_key_path_of_more_than_100_parts_is_refused() -> None:
    with pytest.raises(ConfigError, match="more than 100 levels"):
        set_path({}, ".".join(["k"] * 3000), 1)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 160), st.sampled_from(["json", "yaml", "toml", "xml"]))
def test_nesting_up_to_the_limit_is_read_and_deeper_is_one_config_error(depth: int, fmt: str) -> None:
    data: Any = "x"
    for _ in range(depth):
        data = {"k": data}
    text = dumps({"root": data} if fmt == "xml" else data, fmt)
    try:
        back = loads(text, fmt)
    except ConfigError as exc:
        assert depth + (fmt == "xml") > 100 and "100 levels" in str(exc)
    else:
        assert depth + (fmt == "xml") <= 100 and back == ({"root": data} if fmt == "xml" else data)
