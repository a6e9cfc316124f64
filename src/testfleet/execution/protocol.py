"""The message protocol between the coordinator and the worker processes.

Every message is a tuple whose first element is one of the tags below, sent with
``multiprocessing.connection`` (pickled, length-prefixed) over a Unix socket (a named pipe on
Windows). The protocol is deliberately tiny, in the spirit of pytest-xdist's:

collector -> coordinator
    (COLLECTED, payload)            the suite as collected: items, deselected count, errors
    (EXITED, worker_id, pid, code)  (fork zygote only) a forked worker ended; code < 0 is -signal
coordinator -> collector (fork zygote only)
    (FORK, worker_id)               fork one more worker from the collected session
    (STOP,)                         no more workers needed: finish the session and exit
worker -> coordinator
    (HELLO, worker_id, pid)         connected and ready for work
    (STARTED, index, wall_time)     began running item ``index`` (only when a timeout is set)
    (RESULT, index, payload)        item ``index`` ran; payload is a dict (see pytest_worker), with
                                    the mutation engine's ``proposals`` for an explorable item
    (TEARDOWN, index, payload)      fixtures of item ``index`` torn down late (stopped early) failed
    (TELEMETRY, series)             telemetry samples not yet shipped with a result (before BYE)
    (FATAL, worker_id, message, code)  the session must stop (the SUT never started): exit ``code``
    (BYE, worker_id, reason)        leaving after SHUTDOWN/STOP, or because its own pytest session
                                    asked to stop (reason: pytest's shouldfail/shouldstop text)
coordinator -> worker
    (RUN, [index, ...], report_start, explored)
                                    queue these items (indices into the collected list, then the
                                    explored variants'); ``explored`` maps an index to (item index,
                                    its params or None, its ExploreTask or None)
    (RULESET, key, document)        a ruleset version for the worker's mutation engine (at HELLO,
                                    and again whenever the file changes during the run)
    (FLUSH,)                        no more work for now: run the last queued item too
    (STOP,)                         drop the queue, tear fixtures down and exit (``-x``)
    (SHUTDOWN,)                     run what is queued, then exit
"""

COLLECTED = "collected"
EXITED = "exited"
FORK = "fork"
STOP = "stop"
HELLO = "hello"
STARTED = "started"
RESULT = "result"
TEARDOWN = "teardown"
BYE = "bye"
TELEMETRY = "telemetry"
FATAL = "fatal"
RUN = "run"
RULESET = "ruleset"
FLUSH = "flush"
SHUTDOWN = "shutdown"

ENV_ADDRESS = "TESTFLEET_COORDINATOR"
ENV_AUTHKEY = "TESTFLEET_AUTHKEY"
ENV_WORKER_ID = "TESTFLEET_WORKER"
