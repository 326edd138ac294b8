"""A source that cannot be read says so in one line: what was found, and what to do.

Missing files, bad URLs (refused, 404, 403, 5xx, another scheme) and files that are no CSV
(binary, an archive, a damaged gzip, a web page, another separator). URLs carry a password and
a token, which no message may show.
"""

from __future__ import annotations

import gzip
import http.server
import threading

import pytest

from etl.adapters import source
from etl.errors import SourceError
from tests.support import free_port

PASSWORD, TOKEN = "pw-Secret-123", "tok-Secret-456"


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    assert PASSWORD not in message and TOKEN not in message
    return message


def refusal(tmp_path, content: bytes) -> str:
    """The message of ingesting a file of ``content``, named ``in.csv`` in messages."""
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        with source.fetched(str(path), "in.csv") as local:
            source.ingest(local, str(tmp_path / "copy.csv"), str(tmp_path / "raw.parquet"),
                          "in.csv")  # fmt: skip
    return _one_line(err)


def download_refusal(url: str) -> str:
    with pytest.raises(SourceError) as err:
        with source.fetched(url):
            pass
    return _one_line(err)


class _Handler(http.server.BaseHTTPRequestHandler):
    STATUS = {"/missing.csv": 404, "/private.csv": 403, "/broken.csv": 503}

    def do_GET(self):  # noqa: N802 (http.server's name)
        status = self.STATUS.get(self.path.split("?")[0], 200)
        self.send_response(status)
        self.end_headers()
        if status == 200:
            self.wfile.write(b"<!DOCTYPE html>\n<html><body>Sign in</body></html>\n")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "path, said",
    [
        ("missing.csv", "HTTP 404 Not Found (no file at that address): check the path in "
                        "UFO_SOURCE."),
        ("private.csv", "HTTP 403 Forbidden (access refused): check the credentials in "
                        "UFO_SOURCE (a presigned URL expires)."),
        ("broken.csv", "HTTP 503 Service Unavailable (the server failed): try again later, or "
                       "ask whoever runs it."),
    ],
)  # fmt: skip
def test_an_http_error_says_its_status_what_it_means_and_what_to_do(server, path, said):
    url = f"http://alice:{PASSWORD}@{server}/{path}?token={TOKEN}"
    assert download_refusal(url) == (
        f"Cannot download http://alice@{server}/{path}?token=REDACTED: {said}"
    )


def test_a_refused_connection_names_the_address_nothing_listens_at():
    port = free_port()
    url = f"http://alice:{PASSWORD}@127.0.0.1:{port}/x.csv?X-Amz-Signature={TOKEN}"
    assert download_refusal(url) == (
        f"Cannot download http://alice@127.0.0.1:{port}/x.csv?X-Amz-Signature=REDACTED: nothing "
        f"listens at 127.0.0.1:{port} (connection refused): check the host and port in "
        "UFO_SOURCE, or start the server."
    )


def test_a_url_with_a_port_that_is_no_number_is_said_without_a_traceback():
    message = download_refusal(f"http://127.0.0.1:eighty/x.csv?token={TOKEN}")
    assert message == (
        "Cannot download http://127.0.0.1:eighty/x.csv?token=REDACTED: nonnumeric port: "
        "'eighty' (InvalidURL): check the URL in UFO_SOURCE."
    )


def test_another_scheme_and_a_missing_file_say_what_ufo_source_may_be(tmp_path):
    assert download_refusal(f"ftp://alice:{PASSWORD}@127.0.0.1/x.csv?token={TOKEN}") == (
        "UFO_SOURCE='ftp://alice@127.0.0.1/x.csv?token=REDACTED' has an unsupported scheme "
        "'ftp': use a path or a file://, http(s):// or s3:// URL."
    )
    missing = tmp_path / "nope.csv"
    assert download_refusal(str(missing)) == (
        f"The source file {missing} does not exist: set UFO_SOURCE to the NUFORC report index "
        "(a path or a file://, http(s):// or s3:// URL)."
    )


def test_a_web_page_served_instead_of_the_file_is_said_as_such(server, tmp_path):
    url = f"http://{server}/index.csv"
    with source.fetched(url) as local:
        with pytest.raises(SourceError) as err:
            source.ingest(local, str(tmp_path / "c.csv"), str(tmp_path / "r.parquet"), url)
    assert _one_line(err) == (
        f"{url} is a web page (HTML or XML), not CSV: set UFO_SOURCE to the report index, a CSV "
        "file (plain or gzip)."
    )


HEADER = b"Date / Time,City,State,Shape,Duration,Summary,Posted\r\n"
NOT_CSV = ", not CSV: set UFO_SOURCE to the report index, a CSV file (plain or gzip)."


@pytest.mark.parametrize(
    "content, said",
    [
        (bytes(range(256)) * 64, "in.csv is binary data (its first line holds control bytes)"
                                 + NOT_CSV),
        (b"\x00\x00\x01\x02" * 2000, "in.csv is binary data (it holds NUL bytes)" + NOT_CSV),
        (b"\x89PNG\r\n\x1a\n" + bytes(500), "in.csv is a PNG image" + NOT_CSV),
        (b"%PDF-1.7\n" + bytes(500), "in.csv is a PDF document" + NOT_CSV),
        (b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(100),
         "in.csv is a 7-Zip archive, not CSV: extract the CSV from it and set UFO_SOURCE to that."),
        (b"PK\x03\x04" + bytes(100), "in.csv is a ZIP archive (or an Excel workbook), not CSV: "
                                     "extract the CSV from it and set UFO_SOURCE to that."),
        (b"<html><body>Not here</body></html>\n", "in.csv is a web page (HTML or XML)" + NOT_CSV),
        (HEADER.replace(b",", b";") + b"1/1/19;x;CA;;;;1/2/19\r\n",
         "in.csv separates its columns by ';', not commas: save it as CSV with commas."),
        (HEADER.replace(b",", b"\t") + b"1/1/19\tx\tCA\t\t\t\t1/2/19\r\n",
         "in.csv separates its columns by '\\t', not commas: save it as CSV with commas."),
    ],
    ids=["binary", "nul-bytes", "png", "pdf", "7z", "zip", "html", "semicolons", "tabs"],
)  # fmt: skip
def test_a_file_that_is_no_csv_is_said_as_what_it_is(tmp_path, content, said):
    assert refusal(tmp_path, content) == said


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x1f\x8b" + b"not really gzip", "Unknown compression method"),
        (gzip.compress(HEADER * 200)[:60],
         "Compressed file ended before the end-of-stream marker was reached"),
    ],
    ids=["not-gzip", "cut-short"],
)  # fmt: skip
def test_a_damaged_gzip_says_to_fetch_it_again(tmp_path, content, reason):
    assert refusal(tmp_path, content) == (
        f"in.csv starts like a gzip file but cannot be decompressed ({reason}): it is damaged "
        "or cut short; fetch it again, or give the CSV uncompressed."
    )


def test_a_csv_of_something_else_shows_its_header_and_what_the_index_needs(tmp_path):
    message = refusal(tmp_path, b"id,name,email\r\n1,Ann,ann@example.org\r\n")
    assert message == (
        "in.csv: header 'id', 'name', 'email': no known layout; the NUFORC report index needs "
        "'Date / Time', 'City', 'State', 'Shape', 'Duration', 'Summary', 'Posted'. Give such a "
        "file, or declare your layout in UFO_LAYOUTS (docs/how-to/declare-a-layout.md)."
    )


def test_a_url_that_cannot_be_split_is_said_without_a_traceback():
    message = download_refusal(f"http://[::1/x.csv?token={TOKEN}")
    assert message == (
        "UFO_SOURCE='http://[::1/x.csv?token=REDACTED' is no valid URL (Invalid IPv6 URL): give a "
        "path or a file://, http(s):// or s3:// URL."
    )
