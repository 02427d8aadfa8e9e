"""Log group and log stream operations: Create/Describe/Delete, PutRetentionPolicy."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from emulators.cloudwatch_logs.errors import (
    ServiceError,
    group_not_found,
    invalid_parameter,
)
from emulators.cloudwatch_logs.settings import RequestContext
from emulators.cloudwatch_logs.store import GroupRow, NewGroup, StreamRow
from emulators.cloudwatch_logs.tokens import page_token, parse_page_token

Params = dict[str, Any]
RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
DEFAULT_LIMIT = 50


def resolve_group(ctx: RequestContext, params: Params) -> GroupRow:
    """The group named by ``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN): exactly one of them."""
    name, identifier = params.get("logGroupName"), params.get("logGroupIdentifier")
    if name is not None and identifier is not None:
        raise invalid_parameter("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
    if name is None and identifier is None:
        raise invalid_parameter("Either logGroupName or logGroupIdentifier must be specified.")
    group_name = str(name) if identifier is None else _name_from_identifier(ctx, identifier)
    group = ctx.store.get_group(ctx.region, group_name)
    if group is None:
        raise group_not_found()
    return group


def _name_from_identifier(ctx: RequestContext, identifier: str) -> str:
    if not identifier.startswith("arn:"):
        return identifier
    parts = identifier.split(":")
    # arn:aws:logs:<region>:<account>:log-group:<name>[:*]
    if len(parts) < 7 or parts[2] != "logs" or parts[5] != "log-group":
        raise invalid_parameter(f"Invalid log group ARN: {identifier}")
    if parts[3] != ctx.region or parts[4] != ctx.settings.account_id:
        raise group_not_found()
    return ":".join(parts[6:]).removesuffix(":*")


def group_json(ctx: RequestContext, group: GroupRow) -> Params:
    arn = ctx.group_arn(group.name)
    out: Params = {
        "logGroupName": group.name,
        "creationTime": group.creation_time,
        "metricFilterCount": 0,
        "arn": f"{arn}:*",
        "storedBytes": group.stored_bytes,
        "logGroupClass": group.log_group_class,
        "logGroupArn": arn,
        "deletionProtectionEnabled": group.deletion_protection,
    }
    if group.retention_days is not None:
        out["retentionInDays"] = group.retention_days
    if group.kms_key_id is not None:
        out["kmsKeyId"] = group.kms_key_id
    return out


def stream_json(ctx: RequestContext, group: GroupRow, stream: StreamRow) -> Params:
    out: Params = {
        "logStreamName": stream.name,
        "creationTime": stream.creation_time,
        "uploadSequenceToken": sequence_token(stream.id, stream.upload_seq),
        "arn": f"{ctx.group_arn(group.name)}:log-stream:{stream.name}",
        "storedBytes": 0,  # the real service has reported 0 for streams since June 2019
    }
    for key, value in (
        ("firstEventTimestamp", stream.first_event_ts),
        ("lastEventTimestamp", stream.last_event_ts),
        ("lastIngestionTime", stream.last_ingestion),
    ):
        if value is not None:
            out[key] = value
    return out


def sequence_token(stream_id: int, upload_seq: int) -> str:
    return f"{stream_id:020d}{upload_seq:036d}"


def paginate(items: list[Params], params: Params, fingerprint: str, key: str) -> Params:
    """One page of ``items`` per ``limit``/``nextToken``; ``fingerprint`` ties tokens to the filters used."""
    limit = params.get("limit", DEFAULT_LIMIT)
    token = params.get("nextToken")
    offset = parse_page_token(token, fingerprint) if token is not None else 0
    out: Params = {key: items[offset : offset + limit]}
    if offset + limit < len(items):
        out["nextToken"] = page_token(offset + limit, fingerprint)
    return out


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def create_log_group(ctx: RequestContext, params: Params) -> Params:
    name = params["logGroupName"]
    if name.startswith("aws/"):
        raise invalid_parameter("Log group names can't start with 'aws/'.")
    created = ctx.store.create_group(
        NewGroup(
            region=ctx.region,
            name=name,
            creation_time=ctx.now_ms,
            log_group_class=params.get("logGroupClass", "STANDARD"),
            kms_key_id=params.get("kmsKeyId"),
            deletion_protection=bool(params.get("deletionProtectionEnabled", False)),
            tags=params.get("tags"),
        )
    )
    if not created:
        raise ServiceError("ResourceAlreadyExistsException", "The specified log group already exists")
    return {}


def describe_log_groups(ctx: RequestContext, params: Params) -> Params:
    prefix, pattern = params.get("logGroupNamePrefix"), params.get("logGroupNamePattern")
    identifiers, group_class = params.get("logGroupIdentifiers"), params.get("logGroupClass")
    if prefix is not None and pattern is not None:
        raise invalid_parameter("LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
    if identifiers is not None and (prefix is not None or pattern is not None):
        raise invalid_parameter(
            "logGroupIdentifiers cannot be combined with logGroupNamePrefix or logGroupNamePattern."
        )
    wanted = {_name_from_identifier(ctx, i) for i in identifiers} if identifiers is not None else None
    low_cost = {"INFREQUENT_ACCESS", "ESSENTIALS"}  # documented: asking for either returns both
    classes = low_cost if group_class in low_cost else {group_class}
    groups = [
        g
        for g in ctx.store.list_groups(ctx.region)
        if (prefix is None or g.name.startswith(prefix))
        and (pattern is None or pattern in g.name)
        and (wanted is None or g.name in wanted)
        and (group_class is None or g.log_group_class in classes)
    ]
    items = [group_json(ctx, g) for g in groups]
    if pattern is not None:  # documented: only these three fields come back with a name pattern
        items = [{k: item[k] for k in ("arn", "creationTime", "logGroupName")} for item in items]
    fingerprint = _fingerprint("groups", prefix, pattern, sorted(wanted or ()), group_class)
    return paginate(items, params, fingerprint, "logGroups")


def delete_log_group(ctx: RequestContext, params: Params) -> Params:
    group = ctx.store.get_group(ctx.region, params["logGroupName"])
    if group is None:
        raise group_not_found()
    if group.deletion_protection:
        raise ServiceError("ValidationException", "Log group deletion protection is enabled; disable it first.")
    ctx.store.delete_group(group.id)
    return {}


def put_retention_policy(ctx: RequestContext, params: Params) -> Params:
    days = params["retentionInDays"]
    if days not in RETENTION_DAYS:
        raise invalid_parameter(
            f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]"
        )
    group = ctx.store.get_group(ctx.region, params["logGroupName"])
    if group is None:
        raise group_not_found()
    ctx.store.set_retention(group.id, days)
    return {}


def create_log_stream(ctx: RequestContext, params: Params) -> Params:
    group = ctx.store.get_group(ctx.region, params["logGroupName"])
    created = None if group is None else ctx.store.create_stream(group.id, params["logStreamName"], ctx.now_ms)
    if created is None:
        raise group_not_found()
    if not created:
        raise ServiceError("ResourceAlreadyExistsException", "The specified log stream already exists")
    return {}


def describe_log_streams(ctx: RequestContext, params: Params) -> Params:
    group = resolve_group(ctx, params)
    prefix = params.get("logStreamNamePrefix")
    order_by = params.get("orderBy", "LogStreamName")
    if order_by == "LastEventTime" and prefix is not None:
        raise invalid_parameter("Cannot order by LastEventTime with a logStreamNamePrefix.")
    descending = bool(params.get("descending", False))
    streams = ctx.store.list_streams(group.id, by_last_event=order_by == "LastEventTime", descending=descending)
    items = [stream_json(ctx, group, s) for s in streams if prefix is None or s.name.startswith(prefix)]
    fingerprint = _fingerprint("streams", group.id, prefix, order_by, descending)
    return paginate(items, params, fingerprint, "logStreams")
