"""Hash chains for registers that must show an edit made behind the application's back (the
approvals' trail, the archive's destruction register): each entry's hash is SHA-256 over the
previous entry's hash and the entry itself in a canonical JSON form."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def chain_hash(previous: str, entry: dict[str, Any]) -> str:
    text = json.dumps(entry, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((previous + text).encode()).hexdigest()
