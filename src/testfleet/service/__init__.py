"""The coordinator service: ``testfleet serve``, ``testfleet submit``, ``testfleet run --dashboard``.

Approach. One long-lived process owns the store (the only writer; every reader goes through it).
A submitted run is a *child* ``testfleet run`` process in its own workspace (the unpacked
project), with its own console, cwd, report paths and signals, exactly as on a terminal:

* the child writes to a private store, a copy of the server's taken at submission (so history,
  failed-first order and known variants are the same as a local run), and on exit the server
  merges that run's rows into its own store (:mod:`testfleet.service.merge`);
* the child streams its events as JSON lines on an inherited pipe (``--events-fd N``, written by
  :class:`testfleet.service.events.EventWriter`, a run listener beside the console) and its
  console text on stdout; the server numbers both into one sequence per server
  (:class:`testfleet.service.hub.EventHub`) and pushes them to WebSocket clients;
* cancel is SIGTERM to the child: the run is closed as interrupted (exit 2), as Ctrl-C would.

Several runs run side by side up to ``--max-concurrent-runs``; the rest wait in FIFO order.

Modules: ``hub`` (sequenced events, catch-up from a sequence number), ``events`` (the child's
writer), ``runs`` (the run manager: queue, child processes, cancel, merge), ``merge``,
``archive`` (pack honouring .gitignore, unpack safely), ``auth`` (token, Origin), ``errors``
(JSON errors), ``api_read`` (read endpoints over the store), ``api_runs`` (submit, cancel,
WebSocket), ``app`` (the FastAPI application), ``static/`` (the dashboard page), ``client``
(``submit``).

Event (one JSON object per message, the same on the pipe, in the hub and on the WebSocket)::

    {"seq": 17, "run_id": "...", "kind": "result", "t": 1765000000.123, ...fields of the kind}

``seq`` is given by the hub (absent on the pipe); ``t`` is when the child made it (time.time()).

==============  ==================================================================================
kind            fields
==============  ==================================================================================
``run``         ``status`` (queued, running, finished, interrupted, failed), ``argv``, ``paths``,
                ``exit_code`` (when finished)
``collected``   ``total``, ``deselected``, ``workers``
``running``     ``worker``, ``nodeid`` (null: the worker is idle)
``result``      ``nodeid``, ``outcome``, ``attempt``, ``final``, ``flaky``, ``worker``,
                ``duration``, ``message``, ``longrepr`` (failures only), ``origin`` (baseline or
                an exploration source), ``done``, ``total``
``message``     ``text`` (what the console says: a worker lost, stopping after N failures...)
``worker``      ``worker``, ``state`` (started, lost, replaced), ``detail``
``series``      ``worker``, ``t``, ``metric``, ``value`` (lists of the same length: telemetry)
``exploring``   ``budget``
``console``     ``text`` (the child's stdout, as the terminal would show it)
``report``      ``path`` (relative to the project when inside it), ``content``: a report file
                the run wrote (``--junitxml``, ``--json``, ``--md``), for ``submit`` to write
``end``         ``exit_code``
==============  ==================================================================================

WebSocket ``/ws/runs/{run_id}?after=SEQ`` (every event of the run with seq > SEQ, then live) and
``/ws/events?after=SEQ`` (every run's ``run``, ``collected`` and ``end`` events: the runs list).
A reconnecting page passes the last seq it saw and misses nothing.

REST (JSON; OpenAPI at ``/openapi.json``; errors are ``{"error": {"message", "source", "place",
"expected"}}`` with a 4xx status; lists are ``{"items": [...], "next": CURSOR|null}`` with
``?cursor=&limit=``): ``POST /runs`` (body: the project archive, ``application/gzip``; query:
``arg`` repeated, the ``testfleet run`` arguments), ``GET /runs``, ``GET /runs/{id}``,
``POST /runs/{id}/cancel``, ``GET /runs/{id}/results?outcome=&case=&worker=``,
``GET /runs/{id}/telemetry``, ``GET /runs/{id}/coverage``, ``GET /runs/{id}/analysis``,
``GET /runs/{id}/diff?base=``, ``GET /snapshots``, ``GET /specs``; the dashboard at ``/``.
"""
