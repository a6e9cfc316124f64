"""The built-in generators of ``testfleet generate learn``, registered through the plugin hook
``testfleet_add_generators``: ``statistical`` (a JSON file) and ``llm`` (a directory)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from testfleet.plugins import GeneratorSpec, hookimpl

__all__ = ["testfleet_add_generators"]


def _statistical(requests: list[Any], out: str, options: Mapping[str, Any]) -> Iterator[str]:
    from testfleet.generation.statistical import learn

    model = learn(requests, min_samples=options.get("min_samples", 5))
    model.save(out)
    for endpoint, why in sorted(model.skipped.items()):
        yield f"not modelled {endpoint}: {why}"
    yield f"learned {len(model.endpoints)} endpoints -> {out}"


def _llm(requests: list[Any], out: str, options: Mapping[str, Any]) -> Iterator[str]:
    from testfleet.generation.llm import LLMGenerator

    trained = LLMGenerator().train(requests, base_model=options.get("base_model"), out_dir=out,
                                   epochs=options.get("epochs", 15), seed=options.get("seed", 0))
    yield f"trained {trained} -> {out}"


@hookimpl
def testfleet_add_generators() -> dict[str, GeneratorSpec]:
    return {
        "statistical": GeneratorSpec("statistical", _statistical,
                                     description="per-endpoint value distributions (a JSON file)"),
        "llm": GeneratorSpec("llm", _llm, folder=True,
                             description="a causal LM fine-tuned on the traffic (testfleet[llm])"),
    }
