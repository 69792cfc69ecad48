"""The table of AI-tool markers and IPTC digital source types (`markers.json`, one source per
entry), so that it can be updated without code changes."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from importlib import resources
from typing import Any


@functools.cache
def _table() -> dict[str, Any]:
    table = json.loads(resources.files("synthscan.provenance").joinpath("markers.json").read_text("utf-8"))
    for marker in table["markers"]:
        marker["regex"] = re.compile(marker["pattern"], re.IGNORECASE)
    table["types"] = {t["code"].lower(): t["claims"] for t in table["digital_source_types"]}
    return table


def digital_source_type(value: str | None) -> str | None:
    """"generated", "capture" or "edited" for an IPTC digital source type (a code or its URL)."""
    if not value:
        return None
    return _table()["types"].get(value.strip().rsplit("/", 1)[-1].lower())


def match_markers(field: str, values: Iterable[str | None]) -> list[dict[str, Any]]:
    """The markers for `field` that match any of `values`, each once, with the matching value."""
    found = []
    for marker in _table()["markers"]:
        if marker["field"] != field:
            continue
        value = next((v for v in values if v and marker["regex"].search(v)), None)
        if value is not None:
            found.append({"tool": marker["tool"], "claims": marker["claims"], "field": field,
                          "value": value[:200], "source": marker["source"]})
    return found
