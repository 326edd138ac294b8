"""What the page and the API say about a run's source: its address without secrets, and its kind.

``redact`` uses the pipeline's own ``etl/redact.py`` when it is there, so that both say the same
thing; the web app's image has no pipeline code, so a local rule stands in for it.
"""

from __future__ import annotations

import functools
import importlib.util
import posixpath
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# The demo's generated files are named nuforc_sample_<date>.csv (etl/demo.py).
SAMPLE_PREFIX = "nuforc_sample"
GENERATED_SAMPLE = "generated sample"
REAL_DATA = "real data"

LAYOUTS = {
    "index": "NUFORC index layout",
    "export": "NUFORC site export layout",
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


@functools.cache
def _etl_redact() -> Callable[[str], str] | None:
    # Loaded from its file rather than imported: importing the etl package configures the
    # pipeline's logging (and its log file) in this process, which the web app must not do.
    spec = importlib.util.find_spec("etl")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "redact.py"
    if not path.is_file():
        return None
    module_spec = importlib.util.spec_from_file_location("producto._etl_redact", path)
    if module_spec is None or module_spec.loader is None:
        return None
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - a broken pipeline module must not take the page down
        return None
    found = getattr(module, "redact_source", None)
    return found if callable(found) else None


def redact(uri: str) -> str:
    """The source's address without credentials or query string."""
    try:
        return (_etl_redact() or _local_redact)(uri)
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
