"""The readiness probe the harness sends while the target starts, tagged and recorded like load.

The probe reaches the app, so the app emits telemetry for it; recording it in the sent-ledger
keeps the verifiers' "nothing extra" checks exact instead of excusing unknown items.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import urlsplit

from loadtests.ids import HeaderLookup, ledger_ids, new_request_ids
from loadtests.ledger import LedgerWriter
from verifiers.model import PROBE_ROUTE_NAME, SentRequest

# No proxies: an http_proxy in the environment must not intercept a loopback probe.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def recorded_probe(ledger: LedgerWriter, timeout_s: float = 5.0, traceparent: bool = True) -> Callable[[str], bool]:
    """``traceparent``: send one, as the load does (see ``loadtests.ids.TRACEPARENT_ENV``)."""

    def probe(url: str) -> bool:
        ids = new_request_ids()
        start = time.time()
        status: int | None
        answer: HeaderLookup | None = None
        request = urllib.request.Request(url, headers=ids.headers(traceparent))
        try:
            with _DIRECT.open(request, timeout=timeout_s) as response:
                status = int(response.status)
                answer = response.headers
        except urllib.error.HTTPError as exc:
            status = exc.code
            answer = exc.headers
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            if _refused(exc):
                return False  # nothing listening yet: the probe never reached the app
            # A timed-out probe may still be served later: record it without a status, so its
            # telemetry is ours (never extra) and nothing is expected of it.
            status = None
        ledger.record(
            SentRequest(
                request_id=ids.request_id,
                name=PROBE_ROUTE_NAME,
                method="GET",
                url=url,
                path=urlsplit(url).path,
                start=start,
                end=time.time(),
                status=status,
                worker="tracedrill-probe",
                **ledger_ids(ids, traceparent, answer),
            )
        )
        return status == 200

    return probe


def _refused(exc: BaseException) -> bool:
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | ConnectionResetError)
