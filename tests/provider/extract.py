"""Write tests/provider/schemas.json: the facts the rendering tests use from the provider's published schemas.

Run against a checkout of huaweicloud/terraform-provider-huaweicloud (dev-only, never deployed):
    python tests/provider/extract.py PATH_TO_PROVIDER_REPO
It keeps attribute and block names with their types and required / optional / computed / deprecated flags,
never the descriptions, and records the commit they come from.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

RESOURCES = (
    "fgs_function",
    "fgs_function_trigger",
    "fgs_async_invoke_configuration",
    "eg_custom_event_source",
    "eg_event_subscription",
    "identity_agency",
    "identity_role",
    "smn_topic",
    "ces_alarmrule",
    "ces_dashboard",
    "ces_dashboard_widget",
    "lts_group",
    "lts_stream",
    "lts_keywords_alarm_rule",
    "lts_notification_template",
    "lts_structuring_custom_configuration",
)
DATA_SOURCES = ("eg_event_channels", "apig_environments", "apig_groups", "cts_operations", "identity_projects")
# What docs/json does not say but the provider's Go code does: attributes it marks internal (left out of the
# published schema) and ExactlyOneOf groups. Each entry names the file it comes from.
GO_FACTS = {
    "huaweicloud_identity_agency": {
        "source": "huaweicloud/services/iam/resource_huaweicloud_identity_agency.go",
        # "delegated_domain_name": ExactlyOneOf: []string{"delegated_service_name"}; the read sets any
        # `^op_svc_[A-Za-z]+$` trust domain into delegated_service_name, an internal parameter.
        "internal": {"delegated_service_name": {"type": "string", "optional": True}},
        "exactly_one_of": [["delegated_domain_name", "delegated_service_name"]],
    },
}
FLAGS = ("required", "optional", "computed", "deprecated")
OUTPUT = Path(__file__).resolve().parent / "schemas.json"


def _block(block: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        name: {"type": spec["type"], **{flag: True for flag in FLAGS if spec.get(flag)}}
        for name, spec in sorted(block.get("attributes", {}).items())
    }
    blocks = {
        name: {
            "nesting": spec.get("nesting_mode"),
            **({"min_items": spec["min_items"]} if spec.get("min_items") else {}),
            **({"max_items": spec["max_items"]} if spec.get("max_items") else {}),
            **_block(spec["block"]),
        }
        for name, spec in sorted(block.get("block_types", {}).items())
    }
    return {"attributes": attributes, "blocks": blocks}


def main(repo: str) -> None:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, check=True).stdout

    commit = git("rev-parse", "HEAD").strip()

    def schemas(folder: str, names: tuple[str, ...], key: str) -> dict[str, Any]:
        found = {}
        for name in names:
            published = json.loads(git("show", f"HEAD:docs/json/{folder}/{name}.json"))
            [(full_name, schema)] = published["provider_schemas"]["huaweicloud/huaweicloud"][key].items()
            found[full_name] = _block(schema["block"])
        return found

    resources = schemas("resources", RESOURCES, "resource_schemas")
    for name, go in GO_FACTS.items():
        block = resources[name]
        go_source = git("show", f"HEAD:{go['source']}")
        for attribute, spec in go["internal"].items():
            assert f'"{attribute}"' in go_source, f"{go['source']} no longer has {attribute}"
            block["attributes"][attribute] = {**spec, "internal": True}
        for group in go["exactly_one_of"]:
            for attribute in group:
                block["attributes"][attribute].pop("required", None)
                block["attributes"][attribute]["optional"] = True
        block["exactly_one_of"] = go["exactly_one_of"]
        block["go_source"] = (
            f"https://github.com/huaweicloud/terraform-provider-huaweicloud/blob/{commit}/{go['source']}"
        )
    facts = {
        "source": f"https://github.com/huaweicloud/terraform-provider-huaweicloud/tree/{commit}/docs/json",
        "commit": commit,
        "resources": resources,
        "data_sources": schemas("data-sources", DATA_SOURCES, "data_source_schemas"),
    }
    OUTPUT.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
