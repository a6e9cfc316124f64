"""Traffic ingest: HAR, JSON Lines and access logs read into CapturedRequest records, secrets
redacted (session keys survive), paths templated, bad entries counted with their line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.errors import UsageError
from testfleet.generation.records import REDACTED
from testfleet.generation.traffic import (
    TrafficError,
    check_samples,
    group_by_endpoint,
    ingest,
    template_path,
)

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "traffic"
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
GOOD_JSONL = '{"method": "GET", "path": "/health", "status": 200}'
GOOD_LOG = ('10.0.0.1 - - [06/May/2024:09:00:01 +0000] "GET /items/7 HTTP/1.1" 200 61 "-" '
            '"curl/8.5.0" 0.012')


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def har(entries: list[Any]) -> str:
    return json.dumps({"log": {"version": "1.2", "entries": entries}}, indent=2)


def har_entry(method: str = "GET", url: str = "http://h/items/5", **extra: Any) -> dict[str, Any]:
    request = {"method": method, "url": url, "headers": [], "queryString": [], **extra}
    return {"startedDateTime": "2024-05-06T09:00:00.000Z", "time": 12.5, "request": request,
            "response": {"status": 200}}


# --- formats ----------------------------------------------------------------------------------

def test_har_fields(tmp_path: Path) -> None:
    entry = har_entry("post", "https://api.test/orders?src=web&tag=a&tag=b",
                      headers=[{"name": "Content-Type", "value": "application/json"},
                               {"name": ":authority", "value": "api.test"}],
                      queryString=[{"name": "src", "value": "web"}, {"name": "tag", "value": "a"},
                                   {"name": "tag", "value": "b"}],
                      postData={"mimeType": "application/json", "text": '{"item_id": 3, "quantity": 2}'})
    entry["response"]["status"] = 201
    form = har_entry("POST", "http://h/login",
                     postData={"mimeType": "application/x-www-form-urlencoded",
                               "params": [{"name": "user", "value": "ann"}]})
    report = ingest([write(tmp_path, "c.har", har([entry, form]))])
    first, second = report.requests
    assert (first.method, first.path, first.template) == ("POST", "/orders", "/orders")
    assert first.query == {"src": ["web"], "tag": ["a", "b"]}
    assert first.headers == {"content-type": "application/json"}
    assert (first.body, first.body_kind) == ({"item_id": 3, "quantity": 2}, "json")
    assert (first.status, first.latency_ms, first.timestamp) == (201, 12.5, 1714986000.0)
    assert first.source == f"{tmp_path / 'c.har'}:5"  # the line the entry starts on
    assert (second.body, second.body_kind) == ({"user": "ann"}, "form")
    assert first.session is not None and first.session == second.session  # one HAR, one browser
    assert report.malformed == [] and report.files == [str(tmp_path / "c.har")]


def test_jsonl_fields_and_accepted_keys(tmp_path: Path) -> None:
    lines = [
        {"method": "patch", "url": "http://h/items/12?x=1", "query": {"y": [2, 3]},
         "headers": {"Content-Type": "application/json"}, "body": {"price": 9.99}, "status": 200,
         "latency_ms": 4.5, "timestamp": "2024-05-06T09:00:00+00:00", "session": "abc"},
        {"method": "POST", "path": "orders", "body": '{"item_id": 1}',
         "headers": {"content-type": "application/json"}, "duration_ms": 7, "timestamp": 1714986000},
        {"method": "POST", "path": "/notes", "body": "plain words"},
    ]
    report = ingest([write(tmp_path, "r.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")])
    a, b, c = report.requests
    assert (a.method, a.path, a.template, a.path_params) == ("PATCH", "/items/12", "/items/{id}", {"id": "12"})
    assert a.query == {"x": ["1"], "y": ["2", "3"]} and a.body == {"price": 9.99}
    assert (a.status, a.latency_ms, a.timestamp) == (200, 4.5, 1714986000.0)
    assert (b.path, b.body, b.body_kind, b.latency_ms) == ("/orders", {"item_id": 1}, "json", 7.0)
    assert (c.body, c.body_kind, c.status) == ("plain words", "text", None)
    assert a.session and a.session != "abc" and "abc" not in a.session


def test_access_log_fields(tmp_path: Path) -> None:
    apache = ('10.0.0.2 - ann [06/May/2024:09:00:02 +0200] "DELETE /items/9?force=1 HTTP/1.0" 204 - '
              '"https://ui.test/" "Mozilla/5.0" 1500')
    common = '10.0.0.3 - - [06/May/2024:09:00:03 +0000] "GET /health HTTP/1.1" 200 15'
    lines = [GOOD_LOG, apache, common]
    report = ingest([write(tmp_path, "access.log", "\n".join(lines))])
    nginx, ap, cm = report.requests
    assert (nginx.method, nginx.template, nginx.status, nginx.latency_ms) == ("GET", "/items/{id}", 200, 12.0)
    assert nginx.headers == {"user-agent": "curl/8.5.0"} and nginx.body is None
    assert nginx.timestamp == 1714986001.0 and nginx.source.endswith("access.log:1")
    assert (ap.query, ap.status, ap.latency_ms) == ({"force": ["1"]}, 204, 1.5)  # %D: microseconds
    assert ap.headers["referer"] == "https://ui.test/" and ap.timestamp == 1714986002.0 - 7200
    assert (cm.latency_ms, cm.headers) == (None, {})
    assert len({nginx.session, ap.session, cm.session}) == 3


def test_sniffs_formats_without_known_extensions(tmp_path: Path) -> None:
    report = ingest([write(tmp_path, "a.txt", GOOD_LOG), write(tmp_path, "b.txt", GOOD_JSONL),
                     write(tmp_path, "c.json", har([har_entry()]))])
    assert [r.template for r in report.requests] == ["/items/{id}", "/health", "/items/{id}"]


# --- bad input --------------------------------------------------------------------------------

def test_malformed_lines_counted_with_line_numbers(tmp_path: Path) -> None:
    lines = [GOOD_JSONL, "{not json", "", '{"method": "GET"}', "[1, 2]",
             '{"method": "GET", "path": "/x", "status": "teapot"}', GOOD_JSONL]
    text = "\n".join(lines)
    report = ingest([write(tmp_path, "r.jsonl", text)])
    assert len(report.requests) == 2
    assert [(line, reason.split(":")[0]) for _, line, reason in report.malformed] == [
        (2, "not JSON"), (4, "expected 'url' or 'path' as a non-empty string"),
        (5, "expected a JSON object, got list"), (6, "status")]
    log = ingest([write(tmp_path, "a.log", f"{GOOD_LOG}\ngarbage here\n\x16\x03\x01\n{GOOD_LOG}\n")])
    assert [line for _, line, _ in log.malformed] == [2, 3] and len(log.requests) == 2


def test_malformed_har_entries_counted_with_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "c.har", har([har_entry(), {"request": {"url": "http://h/"}}, har_entry(),
                                         "nope"]))
    report = ingest([path])
    assert len(report.requests) == 2
    lines = [line for _, line, _ in report.malformed]
    assert [reason[:16] for _, _, reason in report.malformed] == ["log.entries[1]: ", "log.entries[3]: "]
    text = path.read_text().splitlines()
    assert text[lines[0] - 1].strip() == "{" and '"url": "http://h/"' in text[lines[0] + 1]
    assert text[lines[1] - 1].strip() == '"nope"'


@pytest.mark.parametrize(("text", "place"), [
    ('{"log": {"entries": [\n  {"request": }\n]}}', "line 2, column 15"),
    ('{"log": {"pages": []}}', "log.entries"),
])
def test_unparseable_har_names_file_and_place(tmp_path: Path, text: str, place: str) -> None:
    path = write(tmp_path, "bad.har", text)
    with pytest.raises(TrafficError) as info:
        ingest([path])
    assert isinstance(info.value, UsageError)
    assert info.value.source == str(path) and info.value.place == place
    assert str(path) in str(info.value) and "expected" in str(info.value)


def test_wholly_unparseable_lines_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(TrafficError, match=r"line 1.*no line could be read"):
        ingest([write(tmp_path, "r.jsonl", "nope\nnope too\n")])
    with pytest.raises(TrafficError, match="cannot read the file"):
        ingest([tmp_path / "missing.har"])
    with pytest.raises(TrafficError, match="no requests"):
        ingest([write(tmp_path, "empty.jsonl", "\n\n"), write(tmp_path, "e.har", har([]))])
    with pytest.raises(TrafficError, match="unrecognised traffic format"):
        ingest([write(tmp_path, "what.txt", "hello world")])


def test_too_few_samples(tmp_path: Path) -> None:
    lines = [GOOD_JSONL] * 6 + ['{"method": "POST", "path": "/orders", "body": {}}'] * 2
    path = write(tmp_path, "r.jsonl", "\n".join(lines))
    groups = group_by_endpoint(ingest([path]).requests)
    assert {k: len(v) for k, v in groups.items()} == {"GET /health": 6, "POST /orders": 2}
    assert check_samples(groups, 5) == ["POST /orders: 2 samples, at least 5 needed to learn a model"]
    assert check_samples(groups, 2) == []
    with pytest.raises(TrafficError, match="POST /orders: 2 samples, at least 5 needed"):
        ingest([path], min_samples=5)


# --- redaction and sessions -------------------------------------------------------------------

def test_redaction_of_headers_query_and_body_at_depth(tmp_path: Path) -> None:
    record = {"method": "POST", "path": "/checkout",
              "query": {"access_token": "t0k", "apiKey": "k", "page": "2", "card": "4111-1111-1111-1111"},
              "headers": {"Authorization": "Bearer xyz", "Cookie": "sid=1", "X-Api-Key": "k",
                          "Proxy-Authorization": "Basic b", "X-Session-Token": "s", "Accept": "*/*"},
              "body": {"user": {"name": "ann", "password": "hunter2",
                                "cards": [{"number": "4111 1111 1111 1111", "cvv": "123"}],
                                "ssn_value": "123-45-6789"},
                       "refresh_token": {"nested": "objects go whole"}, "note": None, "count": 3}}
    report = ingest([write(tmp_path, "r.jsonl", json.dumps(record))])
    (req,) = report.requests
    assert req.headers == {"authorization": REDACTED, "cookie": REDACTED, "x-api-key": REDACTED,
                           "proxy-authorization": REDACTED, "x-session-token": REDACTED, "accept": "*/*"}
    assert req.query == {"access_token": [REDACTED], "apiKey": [REDACTED], "page": ["2"], "card": [REDACTED]}
    assert req.body == {"user": {"name": "ann", "password": REDACTED,
                                 "cards": [{"number": REDACTED, "cvv": REDACTED}], "ssn_value": REDACTED},
                        "refresh_token": REDACTED, "note": None, "count": 3}
    assert report.redacted == 5 + 3 + 5
    assert "hunter2" not in json.dumps(req.to_dict()) and "xyz" not in json.dumps(req.to_dict())


def test_user_redact_list_names_and_paths(tmp_path: Path) -> None:
    record = {"method": "POST", "path": "/p", "query": {"Email": "a@b.c", "q": "x"},
              "headers": {"x-tenant": "acme"},
              "body": {"email": "a@b.c", "customer": {"email": "d@e.f", "address": {"street": "Main 1"}},
                       "lines": [{"street": "kept"}, {"sku": "s", "street": "kept"}]}}
    path = write(tmp_path, "r.jsonl", json.dumps(record))
    report = ingest([path], redact=["EMAIL", "customer.address.street", "headers.X-Tenant", "query.q"])
    (req,) = report.requests
    assert req.query == {"Email": [REDACTED], "q": [REDACTED]} and req.headers == {"x-tenant": REDACTED}
    assert req.body == {"email": REDACTED, "customer": {"email": REDACTED, "address": {"street": REDACTED}},
                        "lines": [{"street": "kept"}, {"sku": "s", "street": "kept"}]}
    assert report.redacted == 6
    assert ingest([path], redact=["body.lines.street"]).requests[0].body["lines"][1]["street"] == REDACTED
    with pytest.raises(TrafficError, match=r"redact\[0\]"):
        ingest([path], redact=["a..b"])


def test_session_is_derived_before_redaction_and_stable(tmp_path: Path) -> None:
    def line(headers: dict[str, str], ip: str = "10.0.0.1") -> str:
        return json.dumps({"method": "GET", "path": "/items", "headers": headers, "client_ip": ip})

    lines = [line({"cookie": "theme=dark; sid=AAA"}), line({"cookie": "sid=AAA; theme=light"}),
             line({"cookie": "sid=BBB"}), line({"authorization": "Bearer one"}),
             line({"authorization": "Bearer one"}, ip="10.9.9.9"), line({"authorization": "Bearer two"}),
             line({"user-agent": "ua"}), line({"user-agent": "ua"}), line({"user-agent": "ua"}, ip="10.0.0.2")]
    requests = ingest([write(tmp_path, "r.jsonl", "\n".join(lines))]).requests
    s = [r.session for r in requests]
    assert s[0] == s[1] != s[2]  # the session cookie, not the other cookies
    assert s[3] == s[4] != s[5]  # the same credential from two addresses
    assert s[6] == s[7] != s[8]  # client IP + user agent
    assert len(set(s)) == 6 and all(r.headers.get("cookie", REDACTED) == REDACTED for r in requests)
    assert all(x and x.startswith("s-") and "AAA" not in x for x in s)
    again = ingest([write(tmp_path, "again.jsonl", "\n".join(lines))]).requests
    assert [r.session for r in again] == s


# --- templating -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "template", "params"), [
    ("/health", "/health", {}),
    ("/items", "/items", {}),
    ("/", "/", {}),
    ("/items/42", "/items/{id}", {"id": "42"}),
    ("/users/7/orders/9", "/users/{id}/orders/{id2}", {"id": "7", "id2": "9"}),
    ("/o/123e4567-e89b-12d3-a456-426614174000", "/o/{uuid}", {"uuid": "123e4567-e89b-12d3-a456-426614174000"}),
    ("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8", "/commits/{hex}",
     {"hex": "9fceb02d0ae598e95dc970b74767f19372d61af8"}),
    ("/reports/2024-05-06/summary", "/reports/{date}/summary", {"date": "2024-05-06"}),
    ("/users/ann%40example.com", "/users/{email}", {"email": "ann%40example.com"}),
    ("/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123", "/reset/{token}",
     {"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcDEF123"}),
    ("/api/v1/feedbeef", "/api/v1/feedbeef", {}),  # a hex-letter word is not an id
    ("/docs/getting-started-with-the-inventory", "/docs/getting-started-with-the-inventory", {}),
])
def test_template_path_first_pass(path: str, template: str, params: dict[str, str]) -> None:
    assert template_path(path) == (template, params)


def test_high_cardinality_segments_become_placeholders(tmp_path: Path) -> None:
    names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory"]
    lines = [{"method": "GET", "path": f"/users/{n}"} for n in names]
    lines += [{"method": "GET", "path": f"/users/{n}/posts/{i}"} for i, n in enumerate(names)]
    lines += [{"method": "GET", "path": p} for p in ["/users/me", "/health", "/items"] * 5]
    lines += [{"method": "DELETE", "path": "/users/alice"}]  # another method: its own group
    report = ingest([write(tmp_path, "r.jsonl", "\n".join(json.dumps(x) for x in lines))])
    groups = group_by_endpoint(report.requests)
    assert set(groups) == {"GET /users/{name}", "GET /users/{name}/posts/{id}", "GET /health",
                           "GET /items", "DELETE /users/alice"}
    assert len(groups["GET /users/{name}"]) == 16  # /users/me joins its siblings
    post = groups["GET /users/{name}/posts/{id}"][1]
    assert (post.path, post.path_params) == ("/users/bob/posts/1", {"name": "bob", "id": "1"})


def test_few_distinct_values_stay_literal(tmp_path: Path) -> None:
    lines = [{"method": "GET", "path": f"/api/{r}"} for r in ["users", "orders", "items"] * 10]
    report = ingest([write(tmp_path, "r.jsonl", "\n".join(json.dumps(x) for x in lines))])
    assert set(group_by_endpoint(report.requests)) == {"GET /api/users", "GET /api/orders", "GET /api/items"}


# --- the bundled sample -----------------------------------------------------------------------

def test_bundled_sample_ingests_cleanly() -> None:
    files = sorted(SAMPLE.glob("*.har")) + sorted(SAMPLE.glob("*.jsonl")) + sorted(SAMPLE.glob("*.log"))
    assert [f.name for f in files] == ["inventory.har", "requests.jsonl", "access.log"]
    report = ingest(files)
    assert report.malformed == [] and len(report.requests) == 660
    assert set(group_by_endpoint(report.requests)) == {
        "GET /health", "GET /items", "POST /items", "GET /items/{id}", "PATCH /items/{id}",
        "DELETE /items/{id}", "POST /orders"}
    assert check_samples(group_by_endpoint(report.requests), 20) == []
    assert {r.status for r in report.requests} >= {200, 201, 204, 404, 409, 422}
    assert report.redacted > 0
    dumped = json.dumps([r.to_dict() for r in report.requests])
    assert "Bearer" not in dumped and "sid=" not in dumped and "access_token=" not in dumped
    assert len({r.session for r in report.requests}) >= 10


# --- properties -------------------------------------------------------------------------------

line_text = st.text(st.characters(blacklist_characters="\n", blacklist_categories=["Cs"]), max_size=200)
log_like = st.builds(
    lambda ip, req, status, tail: f'{ip} - - [06/May/2024:09:00:01 +0000] "{req}" {status} 5{tail}',
    st.sampled_from(["1.2.3.4", "::1"]), line_text.filter(lambda t: '"' not in t),
    st.sampled_from(["200", "-", "99"]), st.sampled_from(["", ' "-" "ua"', ' "-" "ua" 0.5', " x"]))
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["method", "url", "path", "query", "headers", "body", "status", "latency_ms",
                         "timestamp", "session", "client_ip", "x"]), inner, max_size=6),
    max_leaves=12)


@FAST
@given(middle=line_text | log_like | json_like.map(json.dumps))
def test_any_line_is_a_request_or_a_counted_malformed_entry(tmp_path: Path, middle: str) -> None:
    for name, good in (("t.jsonl", GOOD_JSONL), ("t.log", GOOD_LOG)):
        path = tmp_path / name
        path.write_bytes(f"{good}\n{middle}\n{good}\n".encode("utf-8", "surrogatepass"))
        report = ingest([path])
        expected = 3 if middle.strip() else 2
        assert len(report.requests) + len(report.malformed) == expected
        assert all(line == 2 for _, line, _ in report.malformed)


@FAST
@given(doc=json_like | st.fixed_dictionaries({"log": st.fixed_dictionaries({"entries": st.lists(
    json_like | st.fixed_dictionaries({"request": json_like}), max_size=4)})}))
def test_any_json_document_as_har_gives_a_report_or_traffic_error(tmp_path: Path, doc: Any) -> None:
    path = tmp_path / "t.har"
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    try:
        report = ingest([path])
    except TrafficError as exc:
        assert exc.source == str(path)
    else:
        assert report.requests and all(r.source.startswith(str(path)) for r in report.requests)
