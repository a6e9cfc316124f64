"""``testfleet generate``, end to end in real processes on the bundled example's traffic: learn,
sample, plan (run for real against a SUT), feed failures back, and drift."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from execution.conftest import make_suite, run_cli, run_testfleet

TRAFFIC = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "traffic"
OPENAPI = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "openapi.yaml"

# a SUT that answers 500 to an item with a huge quantity (the bug a mutated request finds)
FRAGILE = '''
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def _answer(self, status, body=b"{}"):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self._answer(200, b'{"status": "ok"}')
    do_DELETE = do_GET
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            quantity = json.loads(raw or b"{}").get("quantity", 0)
        except (ValueError, AttributeError):
            quantity = 0
        huge = isinstance(quantity, (int, float)) and abs(quantity) > 10**6
        self._answer(500 if huge else 201, b'{"id": 1}')
    do_PATCH = do_POST

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
'''


def test_learn_sample_plan_run_and_feed_back(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    learned = run_cli(tmp_path, "generate", "learn", TRAFFIC / "requests.jsonl", TRAFFIC / "inventory.har",
                      "-o", model)
    assert learned.returncode == 0, learned.log
    assert "ingested 360 requests" in learned.stdout and "learned 7 endpoints" in learned.stdout
    sample = run_cli(tmp_path, "generate", "sample", model, "-n", "20", "--schema", OPENAPI, "--seed", "1")
    assert sample.returncode == 0, sample.log
    lines = [json.loads(line) for line in sample.stdout.splitlines()]
    assert len(lines) == 20 and all(r["source"] == "generated:statistical" for r in lines)
    assert "validity" in sample.stderr
    again = run_cli(tmp_path, "generate", "sample", model, "-n", "20", "--schema", OPENAPI, "--seed", "1")
    assert again.stdout == sample.stdout  # the same seed, the same requests

    project = make_suite(tmp_path / "p", {
        "fragile.py": FRAGILE,
        "pyproject.toml": "[tool.testfleet]\nworkers = 2\n[tool.testfleet.sut]\n"
                          f"command = {json.dumps(sys.executable + ' fragile.py {port}')}\n"
                          "ready = {tcp = \"{port}\"}\n"})
    plan = run_cli(project, "generate", "plan", "--traffic", TRAFFIC / "requests.jsonl", "--model", model,
                   "--count", "60", "--dynamic", "30%", "--target-coverage", "--seed", "5", "-o", "plan")
    assert plan.returncode == 0, plan.log
    assert "plan of 60 scenarios" in plan.stdout and "18 generated" in plan.stdout
    manifest = json.loads((project / "plan" / "plan.json").read_text())
    assert manifest["origins"] == {"production": 28, "mutated": 14, "generated": 18}
    ran = run_testfleet(project, "plan")
    assert ran.returncode == 1, ran.log  # a mutated quantity past 10**6 makes the SUT answer 500
    assert "status 500" in ran.stdout
    again = run_cli(project, "generate", "plan", "--traffic", TRAFFIC / "requests.jsonl", "--model", model,
                    "--count", "10", "--target-coverage", "--store", ran.store, "-o", "plan2")
    assert again.returncode == 0, again.log  # what the first plan ran counts as covered
    assert "counted 60 executions of earlier plans as covered" in again.stdout
    fed = run_cli(project, "generate", "retrain", model, "--plan", "plan", "--store", ran.store)
    assert fed.returncode == 0, fed.log
    feedback = json.loads(Path(str(model) + ".feedback.json").read_text())
    assert feedback["endpoints"] and all(w > 1 for w in feedback["endpoints"].values())


def test_too_few_samples_and_malformed_lines_are_said(tmp_path: Path) -> None:
    lines = (TRAFFIC / "requests.jsonl").read_text().splitlines()[:6] + ["{not json", "[1, 2]"]
    capture = tmp_path / "small.jsonl"
    capture.write_text("\n".join(lines) + "\n")
    ran = run_cli(tmp_path, "generate", "learn", capture, "-o", tmp_path / "m.json", "--min-samples", "5")
    assert ran.returncode == 2, ran.log
    assert "small.jsonl:7" in ran.stdout and "small.jsonl:8" in ran.stdout  # malformed, with lines
    assert ran.stderr.startswith("ERROR:") and "samples" in ran.stderr and "Traceback" not in ran.output
    assert not (tmp_path / "m.json").exists()


def test_drift_against_the_same_and_a_shifted_capture(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli(tmp_path, "generate", "learn", TRAFFIC / "requests.jsonl", "-o", model).returncode == 0
    same = run_cli(tmp_path, "generate", "drift", model, "--against", TRAFFIC / "requests.jsonl",
                   "--generated", "0")
    assert same.returncode == 0, same.log
    shifted = tmp_path / "shifted.jsonl"
    rows = [json.loads(line) for line in (TRAFFIC / "requests.jsonl").read_text().splitlines()]
    for row in rows:
        if isinstance(row.get("body"), dict) and isinstance(row["body"].get("quantity"), int):
            row["body"]["quantity"] = row["body"]["quantity"] * 100 + 5000
    shifted.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    moved = run_cli(tmp_path, "generate", "drift", model, "--against", shifted, "--generated", "0",
                    "--retrain", "--json", tmp_path / "drift.json")
    assert moved.returncode == 1, moved.log
    assert "body.quantity" in moved.stdout and "retrained" in moved.stdout
    report = json.loads((tmp_path / "drift.json").read_text())
    assert any(f["field"] == "body.quantity" and f["drifting"] for f in report["capture"]["fields"])
    after = run_cli(tmp_path, "generate", "drift", model, "--against", shifted, "--generated", "0")
    assert after.returncode == 0, after.log  # the retrained model knows the new production


def test_a_json_schema_of_one_endpoint_constrains_what_is_kept(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert run_cli(tmp_path, "generate", "learn", TRAFFIC / "requests.jsonl", "-o", model).returncode == 0
    (tmp_path / "item.json").write_text(json.dumps({
        "type": "object", "required": ["name", "quantity", "price"],
        "properties": {"quantity": {"type": "integer", "maximum": 5}}}))
    sample = run_cli(tmp_path, "generate", "sample", model, "-n", "300", "--schema", "POST /items=item.json")
    assert sample.returncode == 0, sample.log
    posts = [json.loads(line) for line in sample.stdout.splitlines()]
    posts = [r for r in posts if r["method"] == "POST" and r["template"] == "/items"]
    assert posts and all(r["body"]["quantity"] <= 5 for r in posts)
    assert "left out" in sample.stderr
    (tmp_path / "bad.json").write_text('{"type": "nonsense"}')
    bad = run_cli(tmp_path, "generate", "sample", model, "--schema", "POST /items=bad.json")
    assert bad.returncode == 2 and "not a valid JSON Schema" in bad.stderr and "Traceback" not in bad.output


def test_a_plan_from_an_openai_compatible_endpoint(tmp_path: Path) -> None:
    import threading

    from generation.test_openai_gen import FakeOpenAI

    server = FakeOpenAI()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        for _ in range(4):  # what the model answers: two good requests, then garbage
            server.reply_lines('POST /items {"name":"llm bolt","quantity":2,"price":1.5}',
                               "GET /items ?limit=5", "I am sorry, I cannot do that")
        plan = run_cli(tmp_path, "generate", "plan", "--traffic", TRAFFIC / "requests.jsonl",
                       "--openai", server.base_url, "--openai-model", "fake", "--count", "10",
                       "--dynamic", "20%", "--target-coverage", "-o", "plan")
    finally:
        server.shutdown()
        server.server_close()
    assert plan.returncode == 0, plan.log
    assert "2 generated" in plan.stdout and "rejected" in plan.stdout
    prompt = json.dumps(server.received[0])
    assert "requests to" in prompt or "POST /items" in prompt  # coverage goals and examples went out
    generated = [e for e in json.loads((tmp_path / "plan" / "plan.json").read_text())["entries"]
                 if e["origin"] == "generated"]
    assert {e["endpoint"] for e in generated} <= {"POST /items", "GET /items"}
