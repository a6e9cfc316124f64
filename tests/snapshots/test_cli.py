"""``testfleet snapshot ...`` end to end: the real ``python -m testfleet`` process, real stores."""

from __future__ import annotations

import json
from pathlib import Path

from execution.conftest import run_cli

from .conftest import make_tree, tree_state


def _ok(ran) -> str:
    assert ran.returncode == 0, ran.log
    assert "Traceback" not in ran.output
    return ran.stdout


def _bad(ran, code: int = 2) -> str:
    assert ran.returncode == code, ran.log
    assert "Traceback" not in ran.output
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), ran.log
    return lines[0]


def test_snapshot_commands_end_to_end(tmp_path: Path):
    src = make_tree(tmp_path / "config")
    store = tmp_path / "a.duckdb"

    def cli(*args: str | Path):
        return run_cli(tmp_path, "snapshot", *args, "--store", store)

    first = _ok(cli("save", src, "--tag", "baseline", "--tag", "ci", "--meta", "env=prod",
                    "--meta", "owner=qa")).strip()
    assert len(first) == 64
    (src / "app.yaml").write_text("server:\n  port: 9090\n  host: example.org\n")
    second = _ok(cli("save", src, "-t", "next")).strip()
    assert second != first

    listed = _ok(cli("list"))
    assert first[:12] in listed and second[:12] in listed and "baseline, ci" in listed
    only = _ok(cli("list", "--tag", "baseline", "--meta", "env=prod", "--since", "2000-01-01"))
    assert first[:12] in only and second[:12] not in only
    assert "no snapshots match" in _ok(cli("list", "--until", "2000-01-01"))

    shown = _ok(cli("show", first[:8]))
    for text in (first, "baseline", "env=prod", "conf/big.bin", "0600",
                 "conf/app-link.yaml -> ../app.yaml", "stored"):
        assert text in shown, shown

    _ok(cli("tag", second[:10], "reviewed"))
    assert "reviewed" in _ok(cli("untag", second[:10], "next"))

    diff = _ok(cli("diff", first[:10], second[:10]))
    assert "app.yaml" in diff and "9090" in diff
    data = json.loads(_ok(cli("diff", first[:10], second[:10], "--json")))
    assert [f["path"] for f in data["files"]] == ["app.yaml"]
    assert _ok(cli("diff", first, first)) is not None  # same snapshot: still exit 0

    out = tmp_path / "restored"
    assert "restored" in _ok(cli("restore", second[:10], out))
    assert tree_state(out) == tree_state(src)
    _bad(cli("restore", second[:10], out))  # not empty now

    archive = tmp_path / "both.tar"
    _ok(cli("export", first[:10], second[:10], "-o", archive))
    other = tmp_path / "b.duckdb"
    imported = run_cli(tmp_path, "snapshot", "import", archive, "--store", other)
    assert sorted(_ok(imported).split()) == sorted([first, second])
    verified = run_cli(tmp_path, "snapshot", "verify", "--store", other)
    assert ": ok" in _ok(verified)
    assert "baseline" in _ok(run_cli(tmp_path, "snapshot", "list", "--store", other))

    assert "freed 0 B" in _ok(cli("gc"))


def test_verify_names_damage_and_exits_1(tmp_path: Path):
    src = make_tree(tmp_path / "config")
    store = tmp_path / "a.duckdb"
    sid = _ok(run_cli(tmp_path, "snapshot", "save", src, "--store", store)).strip()
    [pack] = (tmp_path / "a.snapshots" / "packs").glob("*.pack")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    ran = run_cli(tmp_path, "snapshot", "verify", "--store", store)
    assert ran.returncode == 1, ran.log
    assert f"DAMAGED snapshot {sid[:12]} file conf/big.bin" in ran.stdout
    ran = run_cli(tmp_path, "snapshot", "restore", sid, tmp_path / "out", "--store", store)
    assert f"snapshot {sid[:12]} file 'conf/big.bin'" in _bad(ran, 1)
    assert not (tmp_path / "out").exists()


def test_bad_input_exits_2_with_one_message(tmp_path: Path):
    store = tmp_path / "a.duckdb"
    assert "no such file" in _bad(run_cli(tmp_path, "snapshot", "save", tmp_path / "missing",
                                          "--store", store))
    (tmp_path / "a.conf").write_text("a = 1\n")
    _ok(run_cli(tmp_path, "snapshot", "save", tmp_path / "a.conf", "--store", store))
    assert "no snapshot 'deadbeef'" in _bad(run_cli(tmp_path, "snapshot", "show", "deadbeef",
                                                    "--store", store))
    assert "no snapshot" in _bad(run_cli(tmp_path, "snapshot", "diff", "deadbeef", "cafe",
                                         "--store", store))
    ran = run_cli(tmp_path, "snapshot", "save", tmp_path / "a.conf", "--meta", "novalue",
                  "--store", store)
    assert ran.returncode == 2 and "key=value" in ran.output and "Traceback" not in ran.output
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar")
    assert "not a snapshot archive" in _bad(run_cli(tmp_path, "snapshot", "import", junk,
                                                    "--store", store))


def test_tags_with_control_characters_exit_2_with_one_message(tmp_path: Path):
    store = tmp_path / "a.duckdb"
    (tmp_path / "a.conf").write_text("a = 1\n")
    line = _bad(run_cli(tmp_path, "snapshot", "save", tmp_path / "a.conf", "--tag",
                        "x\x1b]0;pwned\x07", "--store", store))
    assert "control character U+001B" in line and "\x1b" not in line
    sid = _ok(run_cli(tmp_path, "snapshot", "save", tmp_path / "a.conf", "--store",
                      store)).strip()
    assert "control character" in _bad(run_cli(tmp_path, "snapshot", "tag", sid[:12],
                                               "ok\r", "--store", store))
