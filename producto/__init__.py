"""producto: the web page and JSON API over the UFO product database (read-only)."""
