"""Credentials in a source URI or in a blob of text never survive redaction."""

from __future__ import annotations

import pytest

from etl.redact import redact_source, redact_text, source_secrets

PRESIGNED = (
    "https://ufo-bucket.s3.eu-west-1.amazonaws.com/incoming/nuforc_index.csv"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20190329%2Feu-west-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20190329T000000Z&X-Amz-Expires=3600"
    "&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLETOKEN"
    "&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=9f2c4e5b8a1d7c3e6f0a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e2f4a6b8c0d2e"
)


def test_a_presigned_url_keeps_its_parameter_names_but_no_values():
    assert redact_source(PRESIGNED) == (
        "https://ufo-bucket.s3.eu-west-1.amazonaws.com/incoming/nuforc_index.csv"
        "?X-Amz-Algorithm=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Date=REDACTED"
        "&X-Amz-Expires=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-SignedHeaders=REDACTED"
        "&X-Amz-Signature=REDACTED"
    )


@pytest.mark.parametrize(
    "uri, expected",
    [
        # userinfo: the user name stays, the password goes
        ("https://alice:hunter2@example.org/index.csv", "https://alice@example.org/index.csv"),
        # an unescaped "/" in the password: "AKIAX:wJalr" is no host:port, so it is userinfo
        ("s3://AKIAX:wJalr/K7MDENG@bucket/key.csv", "s3://AKIAX@bucket/key.csv"),
        ("https://host:8080/people/bob@example.org", "https://host:8080/people/bob@example.org"),
        ("s3://bucket/dir/user@example.org.csv", "s3://bucket/dir/user@example.org.csv"),
        ("ftp://bob:p%40ss@host:21/x", "ftp://bob@host:21/x"),
        ("https://bob:p@ss@host/x", "https://bob@host/x"),  # an unescaped @ in the password
        ("https://alice@example.org/x", "https://alice@example.org/x"),  # no password to remove
        # query parameters named like secrets, any case, ; or & separated
        ("https://h/f.csv?token=abc123&page=2", "https://h/f.csv?token=REDACTED&page=2"),
        ("https://h/f?api_key=k1;sig=s1", "https://h/f?api_key=REDACTED;sig=REDACTED"),
        ("https://h/f?AWSAccessKeyId=AK&Signature=S&Expires=1", "https://h/f?AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1"),
        ("https://h/f?X-Goog-Signature=ab&x=1", "https://h/f?X-Goog-Signature=REDACTED&x=1"),
        ("https://h/f?password=pw&user=u", "https://h/f?password=REDACTED&user=u"),
        ("https://h/f?client_secret=cs", "https://h/f?client_secret=REDACTED"),
        ("https://h/f#access_token=tok&state=1", "https://h/f#access_token=REDACTED&state=1"),
        ("https://h/f?flag&token=", "https://h/f?flag&token="),  # nothing to hide
        # plain paths and harmless URLs are returned unchanged
        ("/data/ufo/nuforc_index.csv", "/data/ufo/nuforc_index.csv"),
        ("file:///data/ufo/index.csv", "file:///data/ufo/index.csv"),
        ("s3://incoming/nuforc_index.csv", "s3://incoming/nuforc_index.csv"),
        ("https://h/f.csv?page=2&date=2019-03-29", "https://h/f.csv?page=2&date=2019-03-29"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_source(uri, expected):
    assert redact_source(uri) == expected


def test_a_password_is_hidden_even_where_it_appears_without_its_url():
    uri = "s3://AKIAX:wJalr/K7MDENG@bucket/key.csv"
    assert "wJalr/K7MDENG" in source_secrets(uri)
    out = redact_text("boto: secret wJalr/K7MDENG rejected", source_secrets(uri))
    assert out == "boto: secret REDACTED rejected"


@pytest.mark.parametrize(
    "garbage",
    [
        "http://[::1",  # urllib.parse raises ValueError on this one
        "http://[abc/?token=x",
        "://@@@?&&==#",
        "?token",
        "\x00\udcff\n\t",
        "https://" + "a" * 10_000 + "?sig=" + "b" * 10_000,
    ],
)
def test_redact_source_never_raises(garbage):
    out = redact_source(garbage)
    assert isinstance(out, str)
    assert "token=x" not in out and "b" * 100 not in out


def test_redact_source_accepts_what_it_is_given_even_if_not_text():
    assert redact_source(None) == "None"  # type: ignore[arg-type]
    assert redact_source(42) == "42"  # type: ignore[arg-type]


def test_redact_text_replaces_given_secrets_and_urls_with_credentials():
    text = (
        "ufo: error: ReadUFOs(date=2019-03-29): Cannot download "
        f"{PRESIGNED} (connection refused)\n"
        "db password was hunter2, token in quotes: 'https://h/f?token=abc123'\n"
    )
    out = redact_text(text, ["hunter2"])
    assert "hunter2" not in out
    assert "9f2c4e5b8a1d" not in out and "FwoGZXIvYXdz" not in out and "AKIAIOSFODNN7" not in out
    assert "abc123" not in out
    assert "X-Amz-Signature=REDACTED" in out
    assert "'https://h/f?token=REDACTED'" in out  # the quote is not swallowed
    assert "Cannot download https://ufo-bucket.s3.eu-west-1.amazonaws.com/incoming/" in out


def test_redact_text_hides_a_secret_printed_without_its_url():
    url = "https://h/x.csv?sig=Zm9vYmFyYmF6cXV4"
    out = redact_text("luigi: signature Zm9vYmFyYmF6cXV4 rejected", source_secrets(url))
    assert out == "luigi: signature REDACTED rejected"


def test_redact_text_replaces_a_secret_url_with_its_redacted_form():
    url = "https://alice:hunter2@example.org/index.csv"
    assert redact_text(f"source {url}.", [url]) == "source https://alice@example.org/index.csv."


def test_redact_text_with_nothing_to_hide_changes_nothing():
    text = "INFO ReadUFOs 2019-03-29: 1 records from /data/index.csv\n"
    assert redact_text(text, []) == text
    assert redact_text(text, ["", None]) == text  # type: ignore[list-item]


def test_source_secrets_are_the_sensitive_parts_raw_and_decoded():
    secrets = source_secrets("https://bob:p%40ss@h/f?X-Amz-Credential=AK%2F2019&page=2")
    assert "p%40ss" in secrets and "p@ss" in secrets
    assert "AK%2F2019" in secrets and "AK/2019" in secrets
    assert "2" not in secrets and "page" not in secrets
    assert source_secrets("/data/ufo/index.csv") == []
    assert source_secrets("") == []


# Redaction sits on every error path: its time must grow with its input, not its square.
# 2,000,000 characters take well under a second when linear (40,000 took 6.9 s quadratic).
LONG = 2_000_000


@pytest.mark.parametrize(
    "text",
    [
        "a" * LONG,  # one long word: a URL's scheme is tried at every position
        "x" + "b" * LONG + "://",  # a scheme as long as the text
        "https://host/?" + "a" * LONG,  # parameters without "="
        "https://host/?" + "a=" * (LONG // 2),  # many parameters
        "s3://" + "k:" * (LONG // 2) + "@b",  # userinfo that keeps looking like a port
        ("word " * (LONG // 5)),
        "http://" * (LONG // 7),
    ],
    ids=["word", "scheme", "no-equals", "params", "userinfo", "words", "schemes"],
)
def test_redacting_two_million_characters_takes_well_under_a_second(text):
    import time

    start = time.perf_counter()
    redact_text(text, ["hunter2!"])
    redact_source(text)
    source_secrets(text)
    assert time.perf_counter() - start < 1.5


def test_a_url_inside_a_long_word_is_still_redacted():
    text = "x" * 50_000 + " see https://alice:hunter2@example.org/x?token=abc123 " + "y" * 50_000
    shown = redact_text(text, [])
    assert "hunter2" not in shown and "abc123" not in shown
    assert "https://alice@example.org/x?token=REDACTED" in shown
