"""The llm generator: a tiny GPT-2 made from scratch, LoRA-trained on CPU for a few steps.

Skipped without the ``llm`` extra (torch, transformers, peft). Nothing is downloaded."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from safetensors.torch import load_file

from testfleet.generation.llm import LLMError, LLMGenerator
from testfleet.generation.records import CapturedRequest
from testfleet.generation.serialize import to_text

NAMES = ["bolt", "nut", "washer", "screw", "gear", "spring"]
ENDPOINTS = {"POST /items", "GET /items", "GET /items/{id}", "PATCH /items/{id}"}


def inventory_traffic(n: int, seed: int = 0) -> list[CapturedRequest]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        roll, item = rng.random(), str(rng.randint(1, 300))
        if roll < 0.4:
            body = {"name": rng.choice(NAMES), "quantity": rng.randint(0, 50),
                    "price": round(rng.uniform(0.1, 20), 2)}
            out.append(CapturedRequest("POST", "/items", "/items", body=body, body_kind="json",
                                       headers={"content-type": "application/json"}))
        elif roll < 0.65:
            out.append(CapturedRequest("GET", "/items", "/items",
                                       query={"limit": [str(rng.choice([10, 20, 50]))]}))
        elif roll < 0.9:
            out.append(CapturedRequest("GET", f"/items/{item}", "/items/{id}", {"id": item}))
        else:
            out.append(CapturedRequest("PATCH", f"/items/{item}", "/items/{id}", {"id": item},
                                       body={"price": round(rng.uniform(0.1, 20), 2)},
                                       body_kind="json"))
    return out


def only_listing(req: CapturedRequest) -> str | None:
    return None if req.endpoint == "GET /items" else f"not a listing: {req.endpoint}"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[LLMGenerator, Path, object]:
    out = tmp_path_factory.mktemp("llm") / "model"
    gen = LLMGenerator()
    report = gen.train(inventory_traffic(200), base_model=None, out_dir=out, epochs=1, lr=6e-3,
                       lora_r=8, seed=1, device="cpu", max_steps=80)
    return gen, out, report


def test_training_learns_and_writes_a_model_directory(trained) -> None:
    _, out, report = trained
    assert report.steps == 80 and report.device == "cpu" and report.base_model is None
    assert report.final_loss < report.first_loss / 2  # it learned something
    assert 0 < report.trainable_params < report.total_params
    assert {p.name for p in out.iterdir()} >= {"manifest.json", "adapter", "tokenizer", "base",
                                                "train.txt", "feedback.jsonl"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["base_model"] is None and manifest["base"] == "scratch"
    assert manifest["seed"] == 1 and manifest["examples"] == 200
    assert manifest["data_hash"].startswith("sha256:") and manifest["data_hash"] == report.data_hash
    assert manifest["trainings"][0]["seconds"] == report.seconds
    lines = (out / "train.txt").read_text().splitlines()
    assert lines == [to_text(r) for r in inventory_traffic(200)]


def test_generated_lines_parse_and_the_validator_is_honoured(trained) -> None:
    gen, _, _ = trained
    result = gen.generate(40, seed=5, temperature=0.8, validate=only_listing, retries=2)
    assert result.drawn >= 40 and result.parse_rate > 0
    assert result.requests, result.rejected[:5]
    assert all(r.endpoint == "GET /items" for r in result.requests)
    assert all(r.source == "generated:llm" for r in result.requests)
    validator_said = [r for r in result.rejected if r.reason != "unparseable"]
    assert all(r.reason.startswith("not a listing: ") for r in validator_said)
    assert result.valid + len(validator_said) == result.parsed
    assert result.validity_rate == result.valid / result.drawn


def test_a_prompt_steers_and_headers_come_from_the_traffic(trained) -> None:
    gen, _, _ = trained
    result = gen.generate(10, seed=2, prompt="POST /items {", retries=1)
    assert result.drawn >= 10
    assert all(r.endpoint == "POST /items" for r in result.requests)
    assert all(r.headers == {"content-type": "application/json"} for r in result.requests)


def test_save_and_load_round_trip(trained, tmp_path: Path) -> None:
    gen, _, _ = trained
    copy = gen.save(tmp_path / "copy")
    loaded = LLMGenerator.load(copy, device="cpu")
    assert loaded.manifest == gen.manifest and loaded.lines == gen.lines
    a = gen.generate(8, seed=11, retries=0)
    b = loaded.generate(8, seed=11, retries=0)
    assert [to_text(r) for r in a.requests] == [to_text(r) for r in b.requests]
    assert [r.text for r in a.rejected] == [r.text for r in b.rejected]


def test_retrain_changes_the_adapter_and_records_the_feedback(trained, tmp_path: Path) -> None:
    gen, _, _ = trained
    work = LLMGenerator.load(gen.save(tmp_path / "work"), device="cpu")
    before = load_file(str(tmp_path / "work" / "adapter" / "adapter_model.safetensors"))
    failing = [CapturedRequest("PATCH", "/items/7", "/items/{id}", {"id": "7"},
                               body={"price": -1}, body_kind="json")]
    report = work.retrain(failing, weight=5, max_steps=5)
    assert report.kind == "retrain" and report.weight == 5 and report.feedback_examples == 1
    assert report.examples == 200 + 5
    after = load_file(str(tmp_path / "work" / "adapter" / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    manifest = json.loads((tmp_path / "work" / "manifest.json").read_text())
    assert [t["kind"] for t in manifest["trainings"]] == ["train", "retrain"]
    feedback = (tmp_path / "work" / "feedback.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in feedback] == [
        {"line": 'PATCH /items/{id=7} {"price":-1}', "weight": 5}]
    again = LLMGenerator.load(tmp_path / "work")
    assert again.feedback == [('PATCH /items/{id=7} {"price":-1}', 5)]


def test_a_missing_base_model_name_says_nothing_is_downloaded(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LLMError) as info:
        LLMGenerator().train(inventory_traffic(5), base_model="no-such-org/no-such-model-7b",
                             out_dir=tmp_path / "m", epochs=1, lr=1e-3, lora_r=4, seed=0)
    message = str(info.value)
    assert "'no-such-org/no-such-model-7b' is neither a local directory nor in the local " \
           "Hugging Face cache" in message
    assert "no network" in message and not (tmp_path / "m").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LLMError, match="cannot be loaded as a causal language model"):
        LLMGenerator().train(inventory_traffic(5), base_model=str(empty), out_dir=tmp_path / "m",
                             epochs=1, lr=1e-3, lora_r=4, seed=0)


def test_a_local_pretrained_base_gets_a_plain_lora_adapter(trained, tmp_path: Path) -> None:
    gen, _, _ = trained
    base_dir = tmp_path / "base-model"  # any local causal LM will do: a tiny GPT-2 here
    config = transformers.GPT2Config(vocab_size=len(gen.tokenizer), n_positions=128, n_embd=32,
                                     n_layer=1, n_head=2, bos_token_id=gen.tokenizer.bos_token_id,
                                     eos_token_id=gen.tokenizer.eos_token_id)
    transformers.GPT2LMHeadModel(config).save_pretrained(str(base_dir))
    gen.tokenizer.save_pretrained(str(base_dir))
    tuned = LLMGenerator()
    report = tuned.train(inventory_traffic(40), base_model=str(base_dir), out_dir=tmp_path / "t",
                         epochs=1, lr=1e-3, lora_r=4, seed=0, max_steps=3)
    assert report.base_model == str(base_dir) and report.steps == 3
    assert not (tmp_path / "t" / "base").exists()  # the base stays where the user keeps it
    loaded = LLMGenerator.load(tmp_path / "t")
    assert loaded.manifest["base"] == "pretrained"
    assert loaded.generate(3, seed=0, retries=0).drawn == 3


def test_bad_arguments_and_no_model(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match="train\\(\\) or load\\(\\)"):
        LLMGenerator().generate(1)
    with pytest.raises(LLMError, match="no requests to train on"):
        LLMGenerator().train([], base_model=None, out_dir=tmp_path / "x")
    with pytest.raises(LLMError, match="no manifest.json"):
        LLMGenerator.load(tmp_path)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(LLMError, match="not an llm model directory: not overwritten"):
        LLMGenerator().train([CapturedRequest("GET", "/a", "/a")], base_model=None,
                             out_dir=tmp_path, max_steps=1)
    assert (tmp_path / "keep.txt").read_text() == "mine"
