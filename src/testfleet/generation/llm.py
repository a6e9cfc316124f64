"""The ``llm`` generator: a causal language model fine-tuned (LoRA, via peft) on serialised traffic.

Each captured request becomes one line (:mod:`testfleet.generation.serialize`); the model learns
to write such lines and :meth:`LLMGenerator.generate` samples new ones, reads them back with
:func:`~testfleet.generation.serialize.from_text` and keeps those the validation callable
accepts. The base model is a local directory or the name of a model already in the Hugging Face
cache (``local_files_only``: nothing is downloaded). With ``base_model=None`` a tiny GPT-2
(2 layers, 64 wide) and a byte-level BPE tokenizer are made from scratch out of the training
text, so the generator works with no model at hand; its embeddings, positions, final norm and
head are trained in full beside the LoRA adapter (a random base has nothing to adapt).

Nothing here imports torch, transformers or peft until a model is trained or loaded, so the
rest of testfleet runs without the ``llm`` extra; without it the generator says how to get it.

A saved model is a directory::

    manifest.json   base model, training-data hash, seed, hyper-parameters, every training's report
    adapter/        the peft adapter (LoRA weights and the fully trained modules)
    tokenizer/      the tokenizer
    base/           only for base_model=None: the tiny random base the adapter was trained on
    train.txt       the serialised training lines (secrets were redacted on ingest)
    feedback.jsonl  the failure-revealing lines added by retrain(), with their weights
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testfleet.generation.records import REDACTED, CapturedRequest
from testfleet.generation.serialize import FORMAT_VERSION, from_text, to_text
from testfleet.errors import LLMError

__all__ = [
    "GenerationResult",
    "LLMError",
    "LLMGenerator",
    "Rejection",
    "TrainReport",
    "Validator",
    "collect",
    "common_headers",
    "data_hash",
    "with_headers",
]

log = logging.getLogger(__name__)

Validator = Callable[[CapturedRequest], "str | None"]
"""Says why a request is invalid (a short reason), or ``None`` when it is valid."""

MANIFEST_FORMAT = "testfleet-llm/1"
INSTALL_HINT = ("the llm generator needs torch, transformers and peft: pip install 'testfleet[llm]' "
                "(for the CPU build of torch here: pip install torch==2.13.0 first)")
TINY = {"n_layer": 2, "n_embd": 64, "n_head": 2}
TINY_VOCAB = 384  # 256 bytes + 3 special tokens + ~125 merges learned from the traffic
MAX_LENGTH_CAP = 512  # tokens of one training line; longer lines are cut (and counted)


# ---------------------------------------------------------------------------------------------
# results, shared with the openai generator
# ---------------------------------------------------------------------------------------------


@dataclass
class Rejection:
    text: str  # what the model wrote (cut to 300 characters)
    reason: str  # "unparseable" or the validator's reason
    round: int  # 0 for the first try, 1.. for the retries


@dataclass
class GenerationResult:
    """What a generator produced: the valid requests, every rejected line with its reason, and
    the counts behind the validity rate (valid / drawn)."""

    requested: int
    requests: list[CapturedRequest] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    drawn: int = 0  # lines the model wrote
    parsed: int = 0  # of those, lines that read as a request
    valid: int = 0  # of those, requests the validator accepted
    rounds: int = 0
    seconds: float = 0.0

    @property
    def validity_rate(self) -> float:
        return self.valid / self.drawn if self.drawn else 0.0

    @property
    def parse_rate(self) -> float:
        return self.parsed / self.drawn if self.drawn else 0.0

    @property
    def shortfall(self) -> int:
        return max(0, self.requested - len(self.requests))

    @property
    def requests_per_second(self) -> float:
        return len(self.requests) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "produced": len(self.requests), "drawn": self.drawn,
                "parsed": self.parsed, "valid": self.valid, "rounds": self.rounds,
                "validity_rate": round(self.validity_rate, 4), "parse_rate": round(self.parse_rate, 4),
                "seconds": round(self.seconds, 3), "rejected": len(self.rejected)}


def _check(validate: Validator | None, req: CapturedRequest) -> str | None:
    if validate is None:
        return None
    try:
        reason = validate(req)
    except Exception as exc:  # noqa: BLE001 - odd model output may trip a validator; that is a reason
        return f"validator raised {type(exc).__name__}: {exc}"
    return None if reason is None else str(reason)


def collect(n: int, draw: Callable[[int, int, list[Rejection]], Iterable[str]], *,
            validate: Validator | None, retries: int, source: str) -> GenerationResult:
    """The loop both generators share: ``draw(k, round, last_rejections)`` writes about ``k``
    candidate lines; each is read with ``from_text`` and checked with ``validate``; what is
    missing is drawn again, at most ``retries`` more times; what still fails is logged."""
    if n < 0:
        raise LLMError(f"cannot generate {n} requests", expected="a count >= 0")
    if retries < 0:
        raise LLMError(f"retries must be >= 0, not {retries}")
    result = GenerationResult(requested=n)
    started = time.perf_counter()
    last: list[Rejection] = []
    for round_ in range(retries + 1):
        missing = n - len(result.requests)
        if missing <= 0:
            break
        result.rounds += 1
        this_round: list[Rejection] = []
        for text in draw(missing, round_, last):
            result.drawn += 1
            req = from_text(text, source=source)
            if req is None:
                this_round.append(Rejection(text[:300], "unparseable", round_))
                continue
            result.parsed += 1
            reason = _check(validate, req)
            if reason is not None:
                this_round.append(Rejection(text[:300], reason, round_))
                continue
            result.valid += 1
            if len(result.requests) < n:
                result.requests.append(req)
        result.rejected.extend(this_round)
        last = this_round
    result.seconds = time.perf_counter() - started
    if result.shortfall:
        reasons: dict[str, int] = {}
        for rej in result.rejected:
            reasons[rej.reason] = reasons.get(rej.reason, 0) + 1
        top = ", ".join(f"{r} ({c})" for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
        log.warning("%s: %d of %d requests still invalid after %d retries; rejected: %s",
                    source, result.shortfall, n, retries, top or "none")
    for rej in result.rejected:
        log.info("%s rejected (round %d): %s -- %s", source, rej.round, rej.reason, rej.text)
    return result


def common_headers(requests: Iterable[CapturedRequest]) -> dict[str, dict[str, str]]:
    """Per endpoint, the header set its requests carry most often (redacted values left out).
    The text form has no headers; generated requests get these, so that they look like the
    traffic to the service and to a schema that covers headers."""
    counts: dict[str, dict[str, int]] = {}
    for req in requests:
        headers = {k: v for k, v in req.headers.items() if v != REDACTED}
        key = json.dumps(headers, sort_keys=True)
        counts.setdefault(req.endpoint, {})
        counts[req.endpoint][key] = counts[req.endpoint].get(key, 0) + 1
    return {ep: json.loads(max(by_key.items(), key=lambda kv: kv[1])[0]) for ep, by_key in counts.items()}


def with_headers(validate: Validator | None, headers: dict[str, dict[str, str]]) -> Validator:
    """A validator that first gives each request its endpoint's usual headers, then checks it."""

    def check(req: CapturedRequest) -> str | None:
        if not req.headers and req.endpoint in headers:
            req.headers = dict(headers[req.endpoint])
        return None if validate is None else validate(req)

    return check


def data_hash(lines: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


@dataclass
class TrainReport:
    kind: str  # "train" or "retrain"
    base_model: str | None  # None: the tiny model made from scratch
    examples: int  # training lines, repeats included
    distinct_examples: int
    truncated: int  # lines cut at max_length tokens
    steps: int
    epochs: float
    batch_size: int
    lr: float
    lora_r: int
    seed: int
    device: str
    seconds: float
    first_loss: float
    final_loss: float  # mean of the last tenth of the steps
    trainable_params: int
    total_params: int
    data_hash: str
    weight: int | None = None  # retrain: how often each feedback line was repeated
    feedback_examples: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# the heavy imports, on demand
# ---------------------------------------------------------------------------------------------


def _libs() -> tuple[Any, Any, Any]:
    try:
        import peft
        import torch
        import transformers
    except ImportError as exc:
        raise LLMError(f"{INSTALL_HINT} ({exc})") from None
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # testfleet shows its own progress
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")
    return torch, transformers, peft


def _device(torch: Any, device: str | None) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise LLMError(f"unknown device {device!r}: {exc}", expected="cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LLMError(f"device {device!r} asked for, but torch sees no CUDA device",
                       expected="device=None or 'cpu'")
    return str(dev)


def _tiny_tokenizer(transformers: Any, lines: Sequence[str], vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>",
                                                eos_token="</s>", pad_token="<pad>")


def _lora_targets(model: Any) -> tuple[list[str] | str, bool]:
    """(target modules, fan_in_fan_out) for LoRA on ``model``."""
    kind = getattr(model.config, "model_type", "")
    if kind in ("gpt2", "gpt_bigcode"):
        return ["c_attn", "c_proj", "c_fc"], kind == "gpt2"
    return "all-linear", False


def _load_pretrained(transformers: Any, name: str) -> tuple[Any, Any]:
    local = Path(name).expanduser()
    where = str(local) if local.exists() else name
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(where, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, EnvironmentError... all mean "not here"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if local.exists():
            raise LLMError(f"base model directory {name!r} cannot be loaded as a causal language "
                           f"model: {detail}", expected="a transformers model directory "
                           "(config.json, weights, tokenizer)") from None
        raise LLMError(f"base model {name!r} is neither a local directory nor in the local Hugging "
                       "Face cache, and nothing is downloaded (no network): download it where "
                       "there is a network and pass its local path, or use base_model=None for a "
                       f"tiny model made from scratch ({detail})") from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def _check_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or (
            any(target.iterdir()) and not (target / "manifest.json").exists())):
        raise LLMError("exists and is not an llm model directory: not overwritten",
                       source=str(target), expected="a new or empty directory, or a saved model")


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else float("nan")


# ---------------------------------------------------------------------------------------------
# the generator
# ---------------------------------------------------------------------------------------------


class LLMGenerator:
    """Train (or load) a model, then :meth:`generate` requests from it."""

    source = "generated:llm"

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.device: str = "cpu"
        self.out_dir: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.lines: list[str] = []
        self.feedback: list[tuple[str, int]] = []
        self._base_state: dict[str, Any] = {}  # the tiny base's weights, before LoRA

    # -- training ------------------------------------------------------------------------------

    def train(self, requests: Sequence[CapturedRequest], *, base_model: str | None, out_dir: str | Path,
              epochs: float = 3, lr: float | None = None, lora_r: int = 8, seed: int = 0,
              device: str | None = None, max_steps: int | None = None, batch_size: int = 16,
              progress: Callable[[int, int, float], None] | None = None) -> TrainReport:
        """Fine-tune on ``requests`` and save the model to ``out_dir``.

        ``lr`` defaults to 3e-3 for the tiny model and 2e-4 for a pretrained base. ``max_steps``
        (optimizer steps), when given, wins over ``epochs``. ``progress(step, steps, loss)`` is
        called after every step."""
        torch, transformers, peft = _libs()
        _check_target(Path(out_dir))
        lines = [to_text(r) for r in requests]
        if not lines:
            raise LLMError("no requests to train on", expected="a non-empty capture")
        if lora_r < 1:
            raise LLMError(f"lora_r must be >= 1, not {lora_r}")
        self.device = _device(torch, device)
        torch.manual_seed(seed)
        if base_model is None:
            tokenizer = _tiny_tokenizer(transformers, lines, TINY_VOCAB)
            longest = max(len(tokenizer.encode(line, add_special_tokens=False)) for line in lines) + 2
            positions = min(MAX_LENGTH_CAP, max(64, 1 << math.ceil(math.log2(longest))))
            config = transformers.GPT2Config(
                vocab_size=len(tokenizer), n_positions=positions, tie_word_embeddings=False,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, **TINY)
            model = transformers.GPT2LMHeadModel(config)
            max_length = positions
            self._base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            modules_to_save = ["wte", "wpe", "ln_f", "lm_head"]
            lr = 3e-3 if lr is None else lr
        else:
            tokenizer, model = _load_pretrained(transformers, base_model)
            limit = getattr(model.config, "max_position_embeddings", None) or getattr(
                model.config, "n_positions", None) or MAX_LENGTH_CAP
            max_length = min(MAX_LENGTH_CAP, int(limit))
            modules_to_save = None
            lr = 2e-4 if lr is None else lr
        targets, fan_in_fan_out = _lora_targets(model)
        lora = peft.LoraConfig(r=lora_r, lora_alpha=2 * lora_r, lora_dropout=0.0,
                               target_modules=targets, fan_in_fan_out=fan_in_fan_out,
                               modules_to_save=modules_to_save, task_type="CAUSAL_LM")
        self.model = peft.get_peft_model(model, lora).to(self.device)
        self.tokenizer = tokenizer
        self.lines = lines
        self.feedback = []
        self.out_dir = Path(out_dir)
        self.manifest = {
            "format": MANIFEST_FORMAT, "serialize_format": FORMAT_VERSION,
            "base_model": base_model, "base": "scratch" if base_model is None else "pretrained",
            "tiny": TINY if base_model is None else None,
            "data_hash": data_hash(lines), "examples": len(lines), "seed": seed,
            "headers": common_headers(requests),
            "max_length": max_length,
            "hyperparameters": {"epochs": epochs, "lr": lr, "lora_r": lora_r,
                                "lora_alpha": 2 * lora_r, "batch_size": batch_size,
                                "max_steps": max_steps},
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "trainings": [],
        }
        report = self._fit(lines, kind="train", epochs=epochs, lr=lr, seed=seed,
                           max_steps=max_steps, batch_size=batch_size, progress=progress)
        self.save()
        return report

    def retrain(self, extra_requests: Sequence[CapturedRequest], *, weight: int = 3,
                epochs: float = 1, lr: float | None = None, seed: int | None = None,
                max_steps: int | None = None, batch_size: int | None = None,
                progress: Callable[[int, int, float], None] | None = None) -> TrainReport:
        """Fine-tune further on the training lines plus ``extra_requests`` (the failure-revealing
        ones), each repeated ``weight`` times; earlier feedback stays in. Saves in place."""
        self._need_model()
        if weight < 1:
            raise LLMError(f"weight must be >= 1, not {weight}")
        extra = [to_text(r) for r in extra_requests]
        if not extra:
            raise LLMError("no failure-revealing requests to retrain with",
                           expected="at least one request")
        self.feedback.extend((line, weight) for line in extra)
        data = list(self.lines) + [line for line, k in self.feedback for _ in range(k)]
        hp = self.manifest.get("hyperparameters", {})
        seed = self.manifest.get("seed", 0) + len(self.manifest.get("trainings", [])) if seed is None else seed
        report = self._fit(data, kind="retrain", epochs=epochs, lr=lr or hp.get("lr", 1e-3),
                           seed=seed, max_steps=max_steps,
                           batch_size=batch_size or hp.get("batch_size", 16), progress=progress,
                           weight=weight, feedback_examples=len(extra))
        self.save()
        return report

    def _fit(self, lines: Sequence[str], *, kind: str, epochs: float, lr: float, seed: int,
             max_steps: int | None, batch_size: int, progress: Callable[[int, int, float], None] | None,
             weight: int | None = None, feedback_examples: int = 0) -> TrainReport:
        torch, _, _ = _libs()
        tok = self.tokenizer
        start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        max_length = int(self.manifest["max_length"])
        encoded: list[list[int]] = []
        truncated = 0
        for line in lines:
            ids = [start_id, *tok.encode(line, add_special_tokens=False), tok.eos_token_id]
            if len(ids) > max_length:
                truncated += 1
                ids = ids[:max_length]
            encoded.append(ids)
        per_epoch = max(1, math.ceil(len(encoded) / batch_size))
        steps = max_steps if max_steps is not None else max(1, math.ceil(epochs * per_epoch))
        model = self.model
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 20)) * max(0.1, 1 - s / steps))
        rng = random.Random(seed)
        torch.manual_seed(seed)
        order: list[int] = []
        losses: list[float] = []
        started = time.perf_counter()
        for step in range(steps):
            if len(order) < batch_size:
                epoch = list(range(len(encoded)))
                rng.shuffle(epoch)
                order.extend(epoch)
            batch = [encoded[i] for i in order[:batch_size]]
            del order[:batch_size]
            width = max(len(ids) for ids in batch)
            input_ids = torch.full((len(batch), width), tok.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, ids in enumerate(batch):
                input_ids[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[row, :len(ids)] = 1
            labels = input_ids.masked_fill(mask == 0, -100)
            out = model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device),
                        labels=labels.to(self.device))
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(float(out.loss.detach()))
            if progress is not None:
                progress(step + 1, steps, losses[-1])
        seconds = time.perf_counter() - started
        model.eval()
        trainable, total = model.get_nb_trainable_parameters()
        tail = losses[-max(1, steps // 10):]
        report = TrainReport(
            kind=kind, base_model=self.manifest.get("base_model"), examples=len(lines),
            distinct_examples=len(set(lines)), truncated=truncated, steps=steps,
            epochs=round(steps / per_epoch, 3), batch_size=batch_size, lr=lr,
            lora_r=int(self.manifest["hyperparameters"]["lora_r"]), seed=seed, device=self.device,
            seconds=round(seconds, 3), first_loss=round(losses[0], 4),
            final_loss=round(_mean(tail), 4), trainable_params=int(trainable),
            total_params=int(total), data_hash=data_hash(lines), weight=weight,
            feedback_examples=feedback_examples)
        self.manifest.setdefault("trainings", []).append(report.to_dict())
        log.info("llm %s: %d steps on %d lines in %.1fs, loss %.3f -> %.3f", kind, steps,
                 len(lines), seconds, report.first_loss, report.final_loss)
        return report

    # -- generation ----------------------------------------------------------------------------

    def generate(self, n: int, seed: int = 0, *, prompt: str | None = None,
                 temperature: float = 0.8, max_new_tokens: int | None = None,
                 validate: Validator | None = None, retries: int = 3,
                 batch_size: int = 64) -> GenerationResult:
        """``n`` requests sampled from the model, each read with ``from_text`` and accepted by
        ``validate`` (a callable giving a reason or ``None``); the rest are sampled again up to
        ``retries`` times, then logged. ``prompt`` starts every line (``"POST /items"`` steers
        the model to that endpoint)."""
        torch, _, _ = _libs()
        self._need_model()
        if temperature <= 0:
            raise LLMError(f"temperature must be > 0, not {temperature}")
        tok = self.tokenizer
        start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        prefix = prompt or ""
        prompt_ids = [start_id, *tok.encode(prefix, add_special_tokens=False)] if prefix else [start_id]
        room = int(self.manifest.get("max_length", MAX_LENGTH_CAP)) - len(prompt_ids)
        new_tokens = max(1, min(room, max_new_tokens or room))
        model = self.model

        def draw(k: int, round_: int, _last: list[Rejection]) -> list[str]:
            texts: list[str] = []
            torch.manual_seed(seed * 1_000_003 + round_)
            while len(texts) < k:
                size = min(batch_size, k - len(texts))
                ids = torch.tensor([prompt_ids] * size, dtype=torch.long, device=self.device)
                with torch.no_grad():
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         do_sample=True, temperature=temperature, top_k=0,
                                         max_new_tokens=new_tokens, pad_token_id=tok.pad_token_id,
                                         eos_token_id=tok.eos_token_id)
                for row in out[:, len(prompt_ids):].tolist():
                    if tok.eos_token_id in row:
                        row = row[:row.index(tok.eos_token_id)]
                    text = prefix + tok.decode(row, skip_special_tokens=True)
                    texts.append(text.split("\n", 1)[0])
            return texts

        check = with_headers(validate, self.manifest.get("headers") or {})
        return collect(n, draw, validate=check, retries=retries, source=self.source)

    # -- persistence ---------------------------------------------------------------------------

    def save(self, out_dir: str | Path | None = None) -> Path:
        """Write adapter, tokenizer, manifest and data to ``out_dir`` (default: where it was
        trained or loaded from). Files are written to a sibling directory first and swapped in,
        so a failed save leaves the previous model whole."""
        self._need_model()
        target = Path(out_dir) if out_dir is not None else self.out_dir
        if target is None:
            raise LLMError("no directory to save the model to", expected="save(out_dir)")
        from testfleet.atomic import atomic_directory

        _check_target(target)
        with atomic_directory(target) as staging:
            self._save_into(staging)
        self.out_dir = target
        return target

    def _save_into(self, staging: Path) -> None:
        self.model.save_pretrained(str(staging / "adapter"))
        self.tokenizer.save_pretrained(str(staging / "tokenizer"))
        if self.manifest.get("base") == "scratch":
            self._save_base(staging / "base")
        (staging / "train.txt").write_text("".join(line + "\n" for line in self.lines), "utf-8")
        (staging / "feedback.jsonl").write_text(
            "".join(json.dumps({"line": line, "weight": k}) + "\n" for line, k in self.feedback),
            "utf-8")
        (staging / "manifest.json").write_text(json.dumps(self.manifest, indent=2) + "\n", "utf-8")

    @classmethod
    def load(cls, path: str | Path, *, device: str | None = None) -> LLMGenerator:
        """A generator from a directory written by :meth:`train` / :meth:`save`, ready to
        generate or retrain."""
        torch, transformers, peft = _libs()
        root = Path(path)
        manifest_path = root / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except FileNotFoundError:
            raise LLMError("not an llm model directory (no manifest.json)", source=str(root)) from None
        except (OSError, ValueError) as exc:
            raise LLMError(f"unreadable manifest: {exc}", source=str(manifest_path)) from None
        if manifest.get("format") != MANIFEST_FORMAT:
            raise LLMError(f"unknown model format {manifest.get('format')!r}", source=str(manifest_path),
                           expected=MANIFEST_FORMAT)
        gen = cls()
        gen.device = _device(torch, device)
        try:
            if manifest.get("base") == "scratch":
                tokenizer = transformers.PreTrainedTokenizerFast.from_pretrained(str(root / "tokenizer"))
                base = transformers.GPT2LMHeadModel.from_pretrained(str(root / "base"))
                gen._base_state = {k: v.detach().clone() for k, v in base.state_dict().items()}
            else:
                _, base = _load_pretrained(transformers, manifest["base_model"])
                tokenizer = transformers.AutoTokenizer.from_pretrained(str(root / "tokenizer"))
            model = peft.PeftModel.from_pretrained(base, str(root / "adapter"), is_trainable=True)
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged directory, whatever the library says
            raise LLMError(f"cannot load the model: {exc}", source=str(root)) from None
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        gen.model = model.to(gen.device)
        gen.model.eval()
        gen.tokenizer = tokenizer
        gen.manifest = manifest
        gen.out_dir = root
        train_txt = root / "train.txt"
        gen.lines = train_txt.read_text("utf-8").splitlines() if train_txt.exists() else []
        feedback = root / "feedback.jsonl"
        if feedback.exists():
            for row in feedback.read_text("utf-8").splitlines():
                item = json.loads(row)
                gen.feedback.append((item["line"], int(item["weight"])))
        return gen

    def _save_base(self, where: Path) -> None:
        """The tiny base as it was before LoRA wrapped it (the wrapped model's own state holds
        the adapter's layers under other names)."""
        _, transformers, _ = _libs()
        base = transformers.GPT2LMHeadModel(self.model.get_base_model().config)
        base.load_state_dict(self._base_state)
        base.save_pretrained(str(where))

    def _need_model(self) -> None:
        if self.model is None:
            raise LLMError("no model: train() or load() one first")
