"""The JSONPath Compliance Test Suite (RFC 9535), every case through compile_path().

The suite is vendored under tests/data/jsonpath-cts (see its LICENSE and NOTICE).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flowbus.expr import ExpressionSyntaxError, compile_path

CTS = Path(__file__).resolve().parents[2] / "data" / "jsonpath-cts" / "cts.json"
CASES: list[dict[str, Any]] = json.loads(CTS.read_text(encoding="utf-8"))["tests"]


def canonical(value: object) -> str:
    """JSON text that tells 1 from 1.0 from true, which == in Python does not."""
    return json.dumps(value, sort_keys=True)


def test_the_suite_has_every_case():
    assert len(CASES) == 703


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_compliance_case(case: dict[str, Any]):
    if case.get("invalid_selector"):
        with pytest.raises(ExpressionSyntaxError):
            compile_path(case["selector"])
        return
    path = compile_path(case["selector"])
    found = canonical(path.find(case["document"]))
    if "result" in case:
        assert found == canonical(case["result"])
    else:
        assert found in [canonical(result) for result in case["results"]]
