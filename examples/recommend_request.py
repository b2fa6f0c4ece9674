"""Ask a running Journey service what to do next:
`python examples/recommend_request.py URL KEY_FILE CUSTOMER [CUSTOMER ...]`.

Prints each customer's ranked next-best-actions with their reasons, the actions held back and
why, and the event to report once an action is delivered, as a personalization system would
receive them."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any


def show(rec: dict[str, Any]) -> None:
    print(f"\n{rec['customer_id']}  stage {rec['current_stage']}  churn {rec['churn']:.2f}  "
          f"conversion {rec['conversion']:.2f}")
    if not rec["actions"]:
        print(f"  no action: {rec['no_action_reason']}")
    for a in rec["actions"]:
        print(f"  #{a['rank']} {a['action']} ({a['channel']})  expected value "
              f"{a['expected_value']:.2f}")
        for reason in a["reasons"]:
            print(f"      - {reason}")
        print(f"      report when delivered: {json.dumps(a['report_as'])}")
    for s in rec["suppressed"]:
        print(f"  held back {s['action']} [{s['stage']}]: {s['reason']}")


def main() -> None:
    url, key_file, *customers = sys.argv[1:]
    key = Path(key_file).read_text(encoding="utf-8").strip()
    body = json.dumps({"customer_ids": customers, "explore": False}).encode()
    request = urllib.request.Request(f"{url}/v1/recommend", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    print(f"POST {url}/v1/recommend {{\"customer_ids\": {json.dumps(customers)}}} ->")
    for rec in answer["recommendations"]:
        show(rec)
    print(f"\nmodel versions: {answer['model_versions']}")


if __name__ == "__main__":
    main()
