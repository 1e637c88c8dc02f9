"""Where a benchmark figure comes from: date, commit and machine."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime


def provenance() -> dict[str, str]:
    """``date`` (UTC), ``commit`` (short hash, or "unknown") and ``machine``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        commit = done.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
    }
