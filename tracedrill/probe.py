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

from loadtests.ids import new_request_ids
from loadtests.ledger import LedgerWriter
from verifiers.model import SentRequest

PROBE_ROUTE_NAME = "readiness_probe"
# No proxies: an http_proxy in the environment must not intercept a loopback probe.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def recorded_probe(ledger: LedgerWriter) -> Callable[[str], bool]:
    def probe(url: str) -> bool:
        ids = new_request_ids()
        start = time.time()
        try:
            with _DIRECT.open(urllib.request.Request(url, headers=ids.headers()), timeout=5) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False  # never reached the app: nothing to account for
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
                trace_id=ids.trace_id,
                parent_span_id=ids.parent_span_id,
                xray_trace_id=ids.xray_trace_id,
                worker="tracedrill-probe",
            )
        )
        return status == 200

    return probe
