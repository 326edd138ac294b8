#!/opt/venv/bin/python
"""Health check: exit 0 when every URL given answers HTTP 200 within 5 s."""

import sys
import urllib.request

try:
    for url in sys.argv[1:]:
        with urllib.request.urlopen(url, timeout=5) as response:
            if response.status != 200:
                sys.exit(f"{url}: HTTP {response.status}")
except Exception as err:  # noqa: BLE001 - any failure means unhealthy
    sys.exit(f"unhealthy: {err}")
