"""Call a running Journey service: `python examples/predict_request.py URL KEY_FILE CUSTOMER`.

Prints the customer's prediction (stage, next-stage, churn and conversion probabilities, risk
tier, reason codes) as the personalization system would receive it."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path


def main() -> None:
    url, key_file, customer = sys.argv[1:4]
    key = Path(key_file).read_text(encoding="utf-8").strip()
    body = json.dumps({"customer_id": customer}).encode()
    request = urllib.request.Request(f"{url}/v1/predict", data=body, method="POST", headers={
        "Content-Type": "application/json", "X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    print(f"POST {url}/v1/predict {{\"customer_id\": \"{customer}\"}} ->")
    print(json.dumps(answer, indent=2))


if __name__ == "__main__":
    main()
