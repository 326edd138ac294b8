"""What the page and the API say about a run's source: its address without secrets, and its kind.

``redact`` uses the pipeline's own rule (``etl.redact``) where the pipeline is installed beside
the web app (``make up``), so that both say the same thing; the web app's image has no pipeline
code, so a local rule stands in for it there.
"""

from __future__ import annotations

import posixpath
import re
from urllib.parse import urlsplit, urlunsplit

try:
    from etl.redact import redact_source as _pipeline_redact
except ImportError:  # the web app's image: producto alone
    _pipeline_redact = None

# The demo's generated files are named nuforc_sample_<date>.csv (etl/tools/demo.py).
SAMPLE_PREFIX = "nuforc_sample"
GENERATED_SAMPLE = "generated sample"
REAL_DATA = "real data"

LAYOUTS = {
    "index": "NUFORC index layout",
    "export": "NUFORC site export layout",
    "kaggle": "Kaggle UFO Sightings layout",
}

_USERINFO = re.compile(r"^[^/@]*@")


def _local_redact(uri: str) -> str:
    """``uri`` without ``user:password@``, query string or fragment; plain paths unchanged."""
    text = uri.strip()
    parts = urlsplit(text)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (a drive letter is no scheme)
        return text.split("?", 1)[0]
    netloc = _USERINFO.sub("", parts.netloc)
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact(uri: str) -> str:
    """The source's address without credentials or query string."""
    try:
        return (_pipeline_redact or _local_redact)(uri)
    except Exception:  # noqa: BLE001 - fall back to the local rule rather than show the secret
        return _local_redact(uri)


def is_generated_sample(uri: str) -> bool:
    """True when the source is one of the demo's generated sample files."""
    path = urlsplit(_local_redact(uri)).path or uri
    return posixpath.basename(path.rstrip("/")).startswith(SAMPLE_PREFIX)


def kind(uri: str) -> str:
    """``generated sample`` or ``real data``."""
    return GENERATED_SAMPLE if is_generated_sample(uri) else REAL_DATA


def layout_label(layout: str | None) -> str | None:
    """A reader's name for the source layout (None when the loader did not record one)."""
    if layout is None:
        return None
    return LAYOUTS.get(layout, layout)
