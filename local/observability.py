"""What operators watch, rendered (`function.observability` in template.yaml): Cloud Eye alarm rules on the figures
each pass reports under CES_NAMESPACE, a Cloud Eye dashboard, and the function's own LTS log group and stream,
with its JSON lines structured for queries and an LTS alarm when no pass is logged for a while.

Facts and their sources (the provider's docs/resources/*.md at the commit tests/provider/schemas.json records):
- An `ALL_INSTANCE` alarm names dimensions without values and covers every series that has them
  (ces_alarmrule.md, "Alarm rule for All instance"), so scopes found at run time (SYNC_SCOPES=accessible) are
  alarmed on without being listed at plan time. No source confirms it for a custom namespace: docs/observability.md.
- A condition's `period` is 1 (raw points), 300, 1200, 3600, 14400 or 86400 s; `count` 1 to 5 (ces_alarmrule.md).
- A widget's dimension `name` joins several dimensions with commas, and `all_instances` takes every value
  (huaweicloudsdkces v2 DimensionInfo.name and filter_type).
- Cloud Eye cannot alarm on data that stops coming (an alarm needs points), so the function's silence is an LTS
  keywords alarm (lts_keywords_alarm_rule.md) on the lines every pass writes; its notification follows the
  provider's SQL alarm example (examples/lts/sql-alarm-rule/main.tf: a template and a user name).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from handler.errors import Halted

from .resources import RESOURCE, go_json

__all__ = ["ALARMS", "CES_ACTIONS", "WIDGETS", "observability_resources"]

# POST /V1.0/{project_id}/metric-data: a pass's figures (CES "Permissions and Supported Actions": CreateMetricData).
CES_ACTIONS = ("ces:metricData:create",)
SCOPE_DIMENSIONS = ("region", "project_id")  # every pass-wide series carries these (handler/metrics.py)
CLUSTER_DIMENSIONS = (*SCOPE_DIMENSIONS, "cluster_id")
PASS_KEYWORD = "reconcile-pass"  # the summary line of every pass (handler/kinds/passes.py)


class Alarm(NamedTuple):
    """One Cloud Eye alarm rule on a pass-wide series: fires when `filter` over `period` seconds meets `value`
    `times` times in a row (period 1: each raw point)."""

    name: str
    metric: str
    filter: str
    value: float
    period: int
    times: int
    level: int  # 1 critical, 2 major, 3 minor, 4 informational
    about: str


ALARMS = (
    Alarm("halted", "halted", "max", 1, 1, 1, 1, "a pass is halted: several pools' latest syncs failed"),
    Alarm("sync-failed", "syncs_failed", "max", 1, 1, 1, 2, "a pass could not start a sync"),
    Alarm("stuck", "pools_stuck", "max", 1, 1, 1, 2, "a sync has run longer than SYNC_STUCK_AFTER_SECONDS"),
    Alarm("unread", "clusters_unread", "min", 1, 1, 2, 2, "two passes in a row could not read a cluster"),
    Alarm("notify-failed", "notify_failed", "max", 1, 1, 1, 3, "a pass could not publish to the SMN topic"),
    # 5 periods of 4 h, each with a drifted pool at every point: drifted for about 20 h
    Alarm("drifted-20h", "pools_drifted", "min", 1, 14400, 5, 3, "a pool has lagged its template for about 20 h"),
)


class Widget(NamedTuple):
    """One dashboard widget: a chart of these series; top_n > 0 ranks clusters (a bar chart)."""

    title: str
    metrics: tuple[str, ...]
    top_n: int = 0


WIDGETS = (
    Widget("Fleet convergence: pools drifted, syncing, stuck", ("pools_drifted", "pools_syncing", "pools_stuck")),
    Widget("Worst clusters: pools lagging (top 10)", ("cluster_pools_lagging",), top_n=10),
    Widget("Syncs per pass", ("syncs_started", "syncs_deferred", "syncs_backing_off", "syncs_failed", "syncs_refused")),
    Widget("Guards: halted, open wave", ("halted", "wave_open")),
    Widget(
        "Pass health: duration (ms), throttling, unread clusters", ("pass_duration", "api_throttled", "clusters_unread")
    ),
)
# A sample pass line and the fields LTS structures from it (lts_structuring_custom_configuration.md, JSON method).
SAMPLE_LINE = {
    "message": PASS_KEYWORD,
    "project_id": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "cluster_id": "7c3e1b2a-5d4f-11ee-9a3b-0255ac100b04",
    "nodepool_id": "np-web-0001",
    "name": "web",
    "class": "drifted",
    "action": "started",
    "jobid": "6ac022f7-9bb4-4b48-89a1-52b1ae8827fb",
    "error_code": Halted.code,
    "trigger": "timer",
    "outcome": "reconciled",
    "started": 1,
    "failed": 0,
    "duration_ms": 812.5,
}


def _alarm(namespace: str, alarm: Alarm, topic: str | None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "alarm_name": f"{RESOURCE.replace('_', '-')}-{alarm.name}",
        "alarm_description": alarm.about,
        "alarm_type": "ALL_INSTANCE",
        "alarm_enabled": True,
        "alarm_action_enabled": topic is not None,
        "metric": [{"namespace": namespace}],
        "resources": [{"dimensions": [{"name": name} for name in SCOPE_DIMENSIONS]}],
        "condition": [
            {
                "metric_name": alarm.metric,
                "period": alarm.period,
                "filter": alarm.filter,
                "comparison_operator": ">=",
                "value": alarm.value,
                "count": alarm.times,
                "unit": "count",
                "suppress_duration": 3600,  # again every hour while it lasts
                "alarm_level": alarm.level,
            }
        ],
    }
    if topic is not None:  # the same list for both, as the provider requires
        rule["alarm_actions"] = [{"type": "notification", "notification_list": [topic]}]
        rule["ok_actions"] = [{"type": "notification", "notification_list": [topic]}]
    return rule


def _widget(namespace: str, widget: Widget, index: int) -> dict[str, Any]:
    dimensions = CLUSTER_DIMENSIONS if widget.top_n else SCOPE_DIMENSIONS
    rendered: dict[str, Any] = {
        "dashboard_id": f"${{huaweicloud_ces_dashboard.{RESOURCE}.id}}",
        "title": widget.title,
        "view": "bar" if widget.top_n else "line",
        "metric_display_mode": "multiple" if len(widget.metrics) > 1 else "single",
        "metrics": [
            {
                "namespace": namespace,
                "metric_name": metric,
                "dimensions": [{"name": ",".join(dimensions), "filter_type": "all_instances"}],
            }
            for metric in widget.metrics
        ],
        "location": [{"left": (index % 2) * 12, "top": (index // 2) * 6, "width": 12, "height": 6}],
    }
    if widget.top_n:
        rendered["properties"] = [{"top_n": widget.top_n, "filter": "topN", "order": "desc"}]
    return rendered


def _logs(observability: dict[str, Any], topic: tuple[str, str] | None) -> dict[str, Any]:
    """The function's LTS group and stream, its lines structured, and the alarm when no pass line appears."""
    name = observability["log_group"]
    days = observability.get("log_ttl_days", 30)
    group = f"huaweicloud_lts_group.{RESOURCE}"
    stream = f"huaweicloud_lts_stream.{RESOURCE}"
    ids = {"log_group_id": f"${{{group}.id}}", "log_stream_id": f"${{{stream}.id}}"}
    fields = [
        {"field_name": key, "content": str(value), "type": _field_type(value), "is_analysis": True}
        for key, value in SAMPLE_LINE.items()
    ]
    minutes = observability.get("silence_minutes", 30)
    silence: dict[str, Any] = {
        "name": f"{RESOURCE.replace('_', '-')}-silent",
        "description": f"no {PASS_KEYWORD} line for {minutes} minutes: the function is not running its passes",
        "alarm_level": "MAJOR",
        "keywords_requests": [
            {
                "keywords": PASS_KEYWORD,
                "condition": "<",
                "number": 1,
                **ids,
                "search_time_range_unit": "minute",
                "search_time_range": minutes,
            }
        ],
        "frequency": [{"type": "FIXED_RATE", "fixed_rate_unit": "minute", "fixed_rate": 5}],
        "send_notifications": topic is not None,
        "send_recovery_notifications": topic is not None,
    }
    resources: dict[str, Any] = {
        "huaweicloud_lts_group": {RESOURCE: {"group_name": name, "ttl_in_days": days}},
        "huaweicloud_lts_stream": {
            RESOURCE: {"group_id": ids["log_group_id"], "stream_name": name, "ttl_in_days": days}
        },
        "huaweicloud_lts_structuring_custom_configuration": {
            RESOURCE: {**ids, "content": go_json(SAMPLE_LINE), "layers": 1, "demo_fields": fields}
        },
        "huaweicloud_lts_keywords_alarm_rule": {"silent": silence},
    }
    if topic is not None:
        template = f"huaweicloud_lts_notification_template.{RESOURCE}"
        resources["huaweicloud_lts_notification_template"] = {
            RESOURCE: {
                "name": "nodepool_sync_silent",
                "source": "LTS",
                "locale": "en-us",
                "templates": [
                    {
                        "sub_type": "email",
                        "content": "nodepool-sync has logged no pass: $${event_name}; "
                        "Severity: $${event_severity}; Occurred: $${starts_at};",
                    }
                ],
            }
        }
        rule = {
            "template_name": f"${{{template}.name}}",
            "user_name": "${var.lts_alarm_user_name}",
            "language": "en-us",
            "topics": [{"name": topic[1], "topic_urn": topic[0]}],
        }
        silence["dynamic"] = {
            "notification_save_rule": {"for_each": '${var.lts_alarm_user_name == "" ? [] : [1]}', "content": rule}
        }
        silence["send_notifications"] = '${var.lts_alarm_user_name != ""}'
        silence["send_recovery_notifications"] = '${var.lts_alarm_user_name != ""}'
    return resources


def _field_type(value: Any) -> str:
    return "string" if isinstance(value, str) else "float" if isinstance(value, float) else "long"


def observability_resources(
    observability: dict[str, Any] | None, namespace: str, topic: tuple[str, str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The resources of `function.observability` (alarms and dashboard only with CES_NAMESPACE), and what the
    function gets from them (its log group and stream). `topic`: the SMN topic's URN (an expression) and name."""
    if observability is None:
        return {}, {}
    resources = _logs(observability, topic)
    if namespace and observability.get("alarms", False):
        resources["huaweicloud_ces_alarmrule"] = {
            alarm.name.replace("-", "_"): _alarm(namespace, alarm, topic[0] if topic else None) for alarm in ALARMS
        }
    if namespace and observability.get("dashboard"):
        resources["huaweicloud_ces_dashboard"] = {RESOURCE: {"name": observability["dashboard"], "row_widget_num": 2}}
        resources["huaweicloud_ces_dashboard_widget"] = {
            f"w{index}": _widget(namespace, widget, index) for index, widget in enumerate(WIDGETS)
        }
    name = observability["log_group"]
    function = {
        "enable_lts_log": True,
        "log_group_id": f"${{huaweicloud_lts_group.{RESOURCE}.id}}",
        "log_group_name": name,
        "log_stream_id": f"${{huaweicloud_lts_stream.{RESOURCE}.id}}",
        "log_stream_name": name,
    }
    return resources, function
