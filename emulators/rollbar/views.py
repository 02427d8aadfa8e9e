"""The JSON shapes the Rollbar read API answers with (``result`` bodies of /item/ and /instance/).

Field names follow Rollbar's item and occurrence objects as its API, webhooks and official MCP
server (rollbar/rollbar-mcp-server src/types) show them. Fields the emulator has no notion of
(assignment, resolution, grouping of items) carry the values of a never-touched active item.
"""

from __future__ import annotations

from typing import Any

from emulators.rollbar.store import InstanceRecord, ItemRecord

# Occurrence format version reported with each instance; not confirmed against the live API.
INSTANCE_VERSION = 2


def item_json(item: ItemRecord, project_id: int) -> dict[str, Any]:
    return {
        "id": item.id,
        "project_id": project_id,
        "counter": item.counter,
        "environment": item.environment,
        "framework": item.framework,
        "platform": item.platform,
        "language": item.language,
        "hash": item.fingerprint,
        "title": item.title,
        "level": item.level,
        "status": item.status,
        "total_occurrences": item.total_occurrences,
        "unique_occurrences": None,
        "first_occurrence_id": item.first_occurrence_id,
        "first_occurrence_timestamp": item.first_occurrence_timestamp,
        "activating_occurrence_id": item.first_occurrence_id,
        "last_activated_timestamp": item.first_occurrence_timestamp,
        "last_occurrence_id": item.last_occurrence_id,
        "last_occurrence_timestamp": item.last_occurrence_timestamp,
        "last_resolved_timestamp": None,
        "resolved_in_version": None,
        "assigned_user_id": None,
        "level_lock": 0,
        "title_lock": 0,
        "group_status": 1,
        "group_item_id": None,
        "public_item_id": None,
        "integrations_data": None,
    }


def instance_json(instance: InstanceRecord, project_id: int) -> dict[str, Any]:
    return {
        "id": instance.id,
        "project_id": project_id,
        "item_id": instance.item_id,
        "timestamp": instance.timestamp,
        "version": INSTANCE_VERSION,
        "data": instance.data,
        "billable": 1,
    }
