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
    "eg_custom_event_source",
    "eg_event_subscription",
    "identity_agency",
    "identity_role",
    "smn_topic",
)
DATA_SOURCES = ("eg_event_channels",)
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

    facts = {
        "source": f"https://github.com/huaweicloud/terraform-provider-huaweicloud/tree/{commit}/docs/json",
        "commit": commit,
        "resources": schemas("resources", RESOURCES, "resource_schemas"),
        "data_sources": schemas("data-sources", DATA_SOURCES, "data_source_schemas"),
    }
    OUTPUT.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
