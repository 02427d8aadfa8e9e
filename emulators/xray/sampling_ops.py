"""The sampling operations: GetSamplingRules and GetSamplingTargets (see :mod:`emulators.xray.sampling`)."""

from __future__ import annotations

from typing import Any

from emulators.xray.errors import invalid_request
from emulators.xray.params import count, timestamp
from emulators.xray.sampling import (
    QUOTA_TTL_SECONDS,
    TARGET_INTERVAL_SECONDS,
    QuotaAllocator,
    SamplingRuleSet,
)
from emulators.xray.store import XRayStore

MAX_STATISTICS_DOCUMENTS = 25


def get_sampling_rules(rules: SamplingRuleSet) -> dict[str, Any]:
    return {"SamplingRuleRecords": [record.to_api() for record in rules.records()]}


def get_sampling_targets(
    rules: SamplingRuleSet, allocator: QuotaAllocator, store: XRayStore, body: dict[str, Any], now: float
) -> dict[str, Any]:
    documents = body.get("SamplingStatisticsDocuments")
    if not isinstance(documents, list):
        raise invalid_request("SamplingStatisticsDocuments is required and must be a list")
    if len(documents) > MAX_STATISTICS_DOCUMENTS:
        raise invalid_request(f"SamplingStatisticsDocuments holds at most {MAX_STATISTICS_DOCUMENTS} documents")
    statistics = [_read_statistics(doc, i) for i, doc in enumerate(documents)]
    targets = []
    unprocessed = []
    for rule_name, client_id, *_ in statistics:
        record = rules.find(rule_name)
        if record is None:
            unprocessed.append(
                {"RuleName": rule_name, "ErrorCode": "400", "Message": f"Sampling rule {rule_name!r} does not exist"}
            )
            continue
        quota = allocator.allocate(rule_name, int(record.rule["ReservoirSize"]), client_id, now)
        targets.append(
            {
                "RuleName": rule_name,
                "FixedRate": record.rule["FixedRate"],
                "ReservoirQuota": quota,
                "ReservoirQuotaTTL": now + QUOTA_TTL_SECONDS,
                "Interval": TARGET_INTERVAL_SECONDS,
            }
        )
    store.add_sampling_statistics(statistics, now)
    return {
        "SamplingTargetDocuments": targets,
        "LastRuleModification": rules.last_modification(),
        "UnprocessedStatistics": unprocessed,
    }


def _read_statistics(doc: Any, index: int) -> tuple[str, str, float, int, int, int]:
    where = f"SamplingStatisticsDocuments[{index}]"
    if not isinstance(doc, dict):
        raise invalid_request(f"{where} must be an object")
    rule_name, client_id = doc.get("RuleName"), doc.get("ClientID")
    if not isinstance(rule_name, str) or not 1 <= len(rule_name) <= 32:
        raise invalid_request(f"{where}: RuleName must be a string of 1-32 characters")
    if not isinstance(client_id, str) or len(client_id) != 24:
        raise invalid_request(f"{where}: ClientID must be 24 characters")
    return (
        rule_name,
        client_id,
        timestamp(doc, "Timestamp"),
        count(doc, "RequestCount", where),
        count(doc, "SampledCount", where),
        count(doc, "BorrowCount", where, required=False),
    )
