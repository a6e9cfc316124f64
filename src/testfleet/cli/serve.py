"""``testfleet serve``: a long-lived coordinator on HOST:PORT (see :mod:`testfleet.service`)."""

from __future__ import annotations

import sys

from testfleet.errors import TestfleetError
from testfleet.service.server import ServerOptions, bind, serve_forever, start_state, url_of
from testfleet.settings import load_settings

USAGE = 4


def serve(options: ServerOptions) -> int:
    from testfleet.service.auth import bind_policy

    try:
        token = bind_policy(options.host, options.token)
        generated = token is not None and token != options.token
        options.token = token
        settings, _source = load_settings([], {"store": options.store} if options.store else {})
        sock = bind(options.host, options.port)
        try:
            state = start_state(options, settings.store)
        except BaseException:
            sock.close()
            raise
    except TestfleetError as exc:
        sys.stderr.write(f"ERROR: {exc}\n")
        return USAGE
    host, port = sock.getsockname()[:2]
    url = url_of(host, port)
    print(f"testfleet serving {settings.store} on {url}", flush=True)
    if generated:
        print(f"token (needed by every client off this machine): {token}", flush=True)
        print(f"dashboard: {url}/?token={token}", flush=True)
    else:
        print(f"dashboard: {url}/", flush=True)
    try:
        serve_forever(state, sock)
    except KeyboardInterrupt:
        pass
    return 0
