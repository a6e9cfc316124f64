"""What every pytest a test starts (plain pytest for parity, testfleet's collector and workers)
leaves out: the plugins that test dependencies and this machine's image autoload, which none of
the suites the tests build uses.

Each costs every child process its imports, measured for a one-test pytest on a 2-core machine
(best of 4, CPU seconds): all loaded 2.28; without Hypothesis's plugin (it imports all of
Hypothesis at the terminal summary) 1.34; then without Locust's 1.03; pytest-benchmark's 0.93;
anyio's 0.59. A suite that starts a few hundred runs pays minutes for them. Hypothesis itself
still works in a child without its plugin (``@given`` is the library's; the plugin adds options,
statistics and the health check on fixtures); no child suite uses anyio's, Locust's or the
benchmark's fixtures. pytest-randomly, where installed, would reorder collection and break the
tests of order.
"""

CHILD_PLUGINS_OFF = ("randomly", "schemathesis", "hypothesispytest", "anyio", "locust", "benchmark")

CHILD_PYTEST_ADDOPTS = " ".join(f"-p no:{name}" for name in CHILD_PLUGINS_OFF)
