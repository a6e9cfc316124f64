"""Helpers on anomaly: what testfleet attaches to a SUT process the anomaly monitor flagged.

* :mod:`.settings` -- ``[tool.testfleet.helpers]``, the overhead budget and the attachment limits;
* :mod:`.target` -- which process to attach to (the SUT, or the Python process it wraps);
* :mod:`.profiler` -- py-spy (Python) or perf (native) for a bounded time, a flame graph SVG
  (:mod:`.flame` draws perf's);
* :mod:`.memory` -- tracemalloc through testfleet's sitecustomize (:mod:`.sut_sitecustomize`),
  or RSS and smaps sampling;
* :mod:`.threads` -- a thread dump (py-spy dump, or /proc);
* :mod:`.report` -- the artefacts of a run as lines for the summary and ``testfleet show``.

The coordinator's part that decides when to attach is
:mod:`testfleet.execution.coordinator.probing`.
"""
