"""The ``key value`` directive format (redis.conf, sshd_config, postgresql.conf): read, write,
detect, infer a space and fuzz variants from a realistic redis.conf."""

from __future__ import annotations

from pathlib import Path

import pytest
from execution.conftest import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.configs import coerce_scalars, detect_format, dumps, load, loads
from testfleet.configs.infer import infer_from_file
from testfleet.errors import ConfigError

REDIS = Path(__file__).parent / "data" / "redis.conf"


def test_redis_conf_reads_as_directives_with_repeated_keys_as_lists() -> None:
    document = load(REDIS)
    data = document.data
    assert document.format == "directives"
    assert data["port"] == "6379" and data["maxmemory-policy"] == "allkeys-lru"
    assert data["save"] == ["3600 1", "300 100", "60 10000"]
    assert data["requirepass"] == '"s3cret pass"' and data["logfile"] == '""'
    assert data["client-output-buffer-limit"][1] == "replica 256mb 64mb 60"
    assert data["bind"] == "127.0.0.1 -::1"


def test_written_directives_read_back_the_same() -> None:
    data = load(REDIS).data
    text = dumps(data, "directives")
    assert loads(text, "directives") == data
    assert dumps(loads(text, "directives"), "directives") == text
    assert "save 300 100\n" in text and 'requirepass "s3cret pass"\n' in text


def test_postgresql_style_equals_and_inline_comments() -> None:
    text = ("# PostgreSQL\nmax_connections = 100\t\t\t# (change requires restart)\n"
            "shared_buffers = 128MB  # min 128kB\nlisten_addresses = 'localhost'\n"
            "log_line_prefix = '%m [%p] # '\n")
    assert loads(text, "directives") == {"max_connections": "100", "shared_buffers": "128MB",
                                         "listen_addresses": "'localhost'",
                                         "log_line_prefix": "'%m [%p] # '"}


@pytest.mark.parametrize(("name", "text", "fmt"), [
    ("redis.conf", "port 6379\n", "directives"),
    ("postgresql.conf", "port = 5432\n", "directives"),
    ("app.conf", "[server]\nport = 8080\n", "ini"),
    ("sshd_config", "Port 22\nPermitRootLogin no\n", "directives"),
])
def test_detection_by_name_and_content(tmp_path: Path, name: str, text: str, fmt: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert load(path).format == fmt


def test_a_conf_file_to_write_is_directives_unless_every_value_is_a_section() -> None:
    assert detect_format("redis.conf", data={"port": 6379}) == "directives"
    assert detect_format("app.conf", data={"server": {"port": 1}}) == "ini"


@pytest.mark.parametrize(("data", "place"), [
    ({"two words": "x"}, "two words"), ({"k": " padded"}, "k"), ({"k": "a\nb"}, "k"),
    ({"k": "x #tail"}, "k"), ({"k": "=x"}, "k"), ({"k": ["one"]}, "k"), ({"k": {"a": 1}}, "k"),
    ({"k": []}, "k"), ({"[sec]": "x"}, '["[sec]"]'),
])
def test_what_would_read_back_changed_is_refused_naming_the_key(data: dict, place: str) -> None:
    with pytest.raises(ConfigError) as info:
        dumps(data, "directives")
    assert info.value.place == place or (info.value.place or "").startswith(place)


def test_a_line_that_is_no_directive_names_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        loads("port 6379\n\"quoted key\" x\n", "directives", source="redis.conf")
    assert info.value.place == "line 2" and info.value.source == "redis.conf"


_keys = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,12}", fullmatch=True)
_values = st.one_of(st.text(max_size=20), st.integers(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, st.one_of(_values, st.lists(_values, min_size=2, max_size=4)),
                       max_size=8))
def test_any_data_is_written_to_read_back_or_refused(data: dict) -> None:
    try:
        text = dumps(data, "directives")
    except ConfigError as exc:
        assert exc.place
        return
    back = coerce_scalars(loads(text, "directives"))
    assert back == coerce_scalars({k: [str(x) if not isinstance(x, bool) else str(x).lower()
                                        for x in v] if isinstance(v, list) else
                                   (str(v).lower() if isinstance(v, bool) else str(v))
                                   for k, v in data.items()})


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_text_reads_or_is_one_config_error(text: str) -> None:
    try:
        loads(text, "directives", source="x.conf")
    except ConfigError as exc:
        assert exc.place and exc.place.startswith("line ")


def test_a_space_is_inferred_from_redis_conf() -> None:
    config = infer_from_file(REDIS)
    dims = config.space.dimensions
    assert dims["port"].default == 6379 and "maxmemory" in dims and "save[1]" in dims
    baseline = dumps(config.document(config.space.baseline()), "directives")
    back, example = loads(baseline, "directives"), load(REDIS).data
    assert list(back) == list(example)  # the example itself, comments aside; sizes as 64MB
    assert {k: str(v).lower() for k, v in back.items()} == {k: str(v).lower()
                                                            for k, v in example.items()}


def test_space_show_and_fuzz_work_on_redis_conf(tmp_path: Path) -> None:
    shown = run_cli(tmp_path, "space", "show", REDIS)
    assert shown.returncode == 0, shown.output
    assert "maxmemory-policy" in shown.stdout and "invalid INI" not in shown.output
    fuzzed = run_cli(tmp_path, "space", "fuzz", REDIS, "-s", "edge", "-n", "4", "-o", "out")
    assert fuzzed.returncode == 0, fuzzed.output
    files = sorted((tmp_path / "out").glob("*.conf"))
    assert len(files) == 4
    for path in files:
        assert load(path).format == "directives" and "save" in load(path).data
