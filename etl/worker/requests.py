"""Run requests: YAML files dropped under ``{UFO_STORAGE}/requests/``, read and checked.

    task: TopStatesToDatabase        # one of the pipeline's tasks
    params: {date: 2019-03-29, force: true}   # or force_upstream: true, or
                                              # force_from: AggregateUFOsByState
    env: {UFO_SOURCE: s3://incoming/nuforc_index.csv}   # optional; only UFO_SOURCE
    requested_by: alice                   # optional, the audit record: who asked
    requested_at: 2019-03-30T08:00:00+00:00   # optional: when (an ISO timestamp)

Nothing in a request is executed: the task name and parameter names are checked against the
pipeline's, values are parsed by Luigi's parameter types, and the command is an argument list
(no shell). A request that is a symlink or not a regular file, is over 64 KiB or is not UTF-8
is refused with the reason.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import unicodedata
from dataclasses import dataclass, field

import yaml

from etl.adapters.lake import Lake, NotAFile, TooLarge
from etl.errors import shown
from etl.redact import source_secrets
from etl.settings import load_settings

REQUESTS = "requests"
ALLOWED_TASKS = ("ReadUFOs", "AggregateUFOsByState", "TopTenStates", "TopStatesToDatabase")
ALLOWED_ENV = ("UFO_SOURCE",)
#: Who asked for a request and when: copied into its result, never used to run it.
AUDIT_KEYS = ("requested_by", "requested_at")
MAX_REQUESTER_CHARS = 100
RESULT_SUFFIXES = (".done.yaml", ".error.yaml")
MAX_REQUEST_BYTES = 64 * 1024
# Credentials in the environment: never written to a result or a log line.
_SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD", "UFO_SMTP_PASSWORD", "UFO_ALERT_WEBHOOK",
)  # fmt: skip


class _RequestLoader(yaml.SafeLoader):
    """Safe YAML whose dates stay text, so that Luigi's parameter types judge them, and without
    aliases: a request under 1 KiB of nested aliases would expand to gigabytes."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in a request",
                self.peek_event().start_mark,
            )  # fmt: skip
        return super().compose_node(parent, index)


_RequestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class Incomplete(ValueError):
    """A request file that is not whole yet (no ``task`` or no ``params``): left for later."""


class BadRequest(ValueError):
    """A request file that cannot be run; the message says why (``size``: its bytes, if known)."""

    def __init__(self, message: str, size: int | None = None):
        super().__init__(message)
        self.size = size


@dataclass(frozen=True)
class Request:
    """A validated run request: a pipeline task, its parameters as text, and its environment."""

    task: str
    params: dict[str, str]
    env: dict[str, str]
    audit: dict[str, str] = field(default_factory=dict)  # requested_by, requested_at if given

    @property
    def forced(self) -> bool:
        """Whether it runs a task again even if done (force, force_upstream or force_from)."""
        flags = ("force", "force_upstream")
        return any(self.params.get(p) == "__flag__" for p in flags) or bool(
            self.params.get("force_from")
        )

    def argv(self, scheduler: list[str]) -> list[str]:
        args = [sys.executable, "-m", "luigi", "--module", "etl", self.task, *scheduler]
        for name, value in self.params.items():
            flag = "--" + name.replace("_", "-")
            if value == "__flag__":
                args.append(flag)
            elif value != "__off__":
                args += [flag, value]
        return args


def parse_request(text: str) -> Request:
    """Validate a request file's text; raise BadRequest with the reason."""
    import etl

    try:
        doc = yaml.load(text, Loader=_RequestLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError) as err:  # ValueError: an integer of 5,000 digits
        raise BadRequest("not valid YAML: " + " ".join(str(err).split())[:300]) from err
    if doc is None:
        raise Incomplete(_INCOMPLETE.format(missing="nothing in it yet"))
    if not isinstance(doc, dict):
        raise BadRequest("a request must be a mapping with 'task' and 'params'")
    unknown = set(doc) - {"task", "params", "env", *AUDIT_KEYS}
    if unknown:
        names = ", ".join(shown(k) for k in sorted(map(str, unknown))[:5])
        raise BadRequest(
            f"unknown key(s) [{names}]: use task, params, env (and requested_by, requested_at)"
        )
    audit = {key: check_audit(key, doc[key]) for key in AUDIT_KEYS if key in doc}
    if "task" not in doc:
        raise Incomplete(_INCOMPLETE.format(missing="no task"))
    task = doc.get("task")
    if task not in ALLOWED_TASKS:
        raise BadRequest(f"task {shown(task)} is not one of {', '.join(ALLOWED_TASKS)}")
    env = _env(doc.get("env") or {})
    if "params" not in doc:
        raise Incomplete(_INCOMPLETE.format(missing="no params"))
    cls = getattr(etl, task)
    params_in = doc.get("params") or {}
    if not isinstance(params_in, dict):
        raise BadRequest("'params' must be a mapping of parameter names to values")
    known = dict(cls.get_params())
    params: dict[str, str] = {}
    for name, value in params_in.items():
        if name not in known:
            raise BadRequest(
                f"{task} has no parameter {shown(name)} (it has {', '.join(sorted(known))})"
            )
        if isinstance(value, (dict, list)) or value is None:
            raise BadRequest(f"parameter {shown(name)} must be a single value")
        param = known[name]
        text_value = str(value)
        if "\0" in text_value:
            raise BadRequest(f"parameter {shown(name)} must not contain a NUL byte")
        try:
            parsed = param.parse(text_value)
        except (ValueError, TypeError) as err:
            raise BadRequest(
                f"parameter {shown(name)}: {shown(text_value)} is not valid "
                f"({' '.join(str(err).split())[:200]})"
            ) from err
        if isinstance(parsed, bool):
            params[name] = "__flag__" if parsed else "__off__"
        else:
            params[name] = param.serialize(parsed)
    _check_force_from(task, params.get("force_from"))
    return Request(task=task, params=params, env=env, audit=audit)


def _check_force_from(task: str, first: str | None) -> None:
    """force_from names a task at or before the one requested: one after it would never run."""
    if first and ALLOWED_TASKS.index(first) > ALLOWED_TASKS.index(task):
        raise BadRequest(
            f"force_from {first} comes after {task} in the chain, so nothing would run again: "
            f"request TopStatesToDatabase (or a task from {first} on) instead"
        )


_INCOMPLETE = (
    "the request has {missing}: write it under another name (such as .NAME.tmp) and rename it "
    "into requests/ once it is whole; 'params: {{}}' runs the task's defaults"
)


def _env(env_in) -> dict[str, str]:
    if not isinstance(env_in, dict) or set(env_in) - set(ALLOWED_ENV):
        raise BadRequest(f"'env' may only set {', '.join(ALLOWED_ENV)}")
    env = {name: str(value) for name, value in env_in.items()}
    for name, value in env.items():
        # The operating system cannot pass it on: subprocess would raise "embedded null byte".
        if "\0" in value:
            raise BadRequest(f"env {shown(name)} must not contain a NUL byte")
    return env


def check_audit(key: str, value: object) -> str:
    """A request's ``requested_by`` (short text without control characters) or
    ``requested_at`` (an ISO timestamp), as text; BadRequest saying why not."""
    if key == "requested_at":
        try:
            if not isinstance(value, str) or len(value) > 40:
                raise ValueError(value)
            return dt.datetime.fromisoformat(value).isoformat()
        except ValueError:
            raise BadRequest(
                f"requested_at {shown(value)} is not an ISO timestamp such as "
                "2019-03-30T08:00:00+00:00"
            ) from None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REQUESTER_CHARS:
        raise BadRequest(
            f"requested_by {shown(value)} must be a name of 1 to {MAX_REQUESTER_CHARS} characters"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise BadRequest(f"requested_by {shown(value)} must not contain control characters")
    return value


def request_audit(text: str) -> dict[str, str]:
    """The valid audit fields of a request's text (even if the rest of it is refused)."""
    try:
        doc = yaml.load(text, Loader=_RequestLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError):
        return {}
    found = {}
    for key in AUDIT_KEYS if isinstance(doc, dict) else ():
        try:
            if key in doc:
                found[key] = check_audit(key, doc[key])
        except BadRequest:
            continue  # the request's error says so when it is parsed
    return found


def request_secrets(text: str) -> list[str]:
    """The secret parts of the sources a request's text names (even if it is malformed)."""
    try:
        doc = yaml.load(text, Loader=_RequestLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError:
        return []  # not YAML: redact_text's scan for URLs still covers it
    env = doc.get("env") if isinstance(doc, dict) else None
    if not isinstance(env, dict):
        return []
    return [s for value in env.values() for s in source_secrets(str(value))]


def environment_secrets() -> list[str]:
    """What of this process's own settings must not appear in what the worker writes: the
    secret parts of its source and database URLs, and the cloud and database credentials."""
    settings = load_settings()
    urls = (settings.source or "", settings.database_url or "")
    found = [s for url in urls for s in source_secrets(url)]
    return found + [os.environ[name] for name in _SECRET_ENV if os.environ.get(name)]


def read_request(lake: Lake, rel: str) -> str:
    """A request file's text; BadRequest if it cannot be read as a request."""
    try:
        data = lake.read_limited(rel, MAX_REQUEST_BYTES)
    except NotAFile as err:
        raise BadRequest("requests must be regular files, not symlinks") from err
    except TooLarge as err:
        raise BadRequest(
            f"request is {err.size} bytes, the limit is {MAX_REQUEST_BYTES // 1024} KiB",
            size=err.size,
        ) from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRequest(
            f"request is not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start})"
        ) from err
