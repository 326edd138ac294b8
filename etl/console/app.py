"""The console's web app: the run dates, one run date whole, a request, the audit list, actions.

Routes (under the console's root, ``/console`` behind the proxy):

* ``GET /``: the run dates of a range (default: the 90 days up to yesterday and, ticked, every
  date ever loaded), newest first, 100 a page, with their state and what explains it;
* ``GET /dates/DATE``: one run date: its state, luigid's tasks for it, the requests that named
  it and how they ended, its Spark applications, its figures in producto;
* ``GET /requests/NAME``: a request: waiting, running, done or failed, its log (uploaded while
  it runs; ``/log``: whole) and its tasks' Spark output when they kept some (``/spark-log``);
* ``GET /audit``: who asked for what, and when;
* ``POST /actions/rerun``, ``POST /actions/backfill``: write a run request (a forced one, or one
  of more than one date, is confirmed first) and go to its page.

Every answer carries a Content-Security-Policy that allows the console's own stylesheet only:
the pages have no script (a page that waits on a request reloads itself).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from etl.adapters.lake import Lake
from etl.console.guard import COOKIE, Guard, Refused
from etl.console.settings import ConsoleSettings
from etl.console.views import AUDIT_PAGE, Views
from etl.errors import UfoError
from etl.worker.ops import DEFAULT_TASK, draft, submit
from etl.worker.requests import ALLOWED_TASKS, REQUESTS, BadRequest
from etl.worker.rundates_view import STATES, RunDatesView

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
PAGE = 100
MAX_FORM = 16 * 1024
#: A log served whole at most (a run's log is a few kilobytes; a runaway one stays in the lake).
LOG_WHOLE = 32 * 1024 * 1024
REQUEST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.ya?ml")
PREFIX = re.compile(r"(/[A-Za-z0-9._-]+)*")
#: How a re-run may be forced: not, the task alone, with all it needs, or anew from a task of the
#: chain on (up to the task asked for).
FORCING = {
    "": "not forced",
    "force": "forced",
    "force_upstream": "forced with all it needs",
    **{f"from:{task}": f"anew from {task} on" for task in ALLOWED_TASKS},
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def create_app(lake: Lake, settings: ConsoleSettings, dates: RunDatesView,
               guard: Guard | None = None) -> FastAPI:  # fmt: skip
    """The console over ``lake`` (its requests), the run dates of ``dates``."""
    guard = guard or Guard(settings.trust_proxy, proxy_key=settings.proxy_key)
    views = Views(lake, settings, dates)

    @asynccontextmanager
    async def warm(_app: FastAPI) -> AsyncIterator[None]:
        # The first page is as quick as the next: its templates compiled and the requests'
        # results read (each is read once) while the server starts, in the background.
        threading.Thread(target=_warm, args=(views,), name="warm", daemon=True).start()
        yield

    app = FastAPI(title="UFO pipeline console", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=warm)  # fmt: skip
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def root(request: Request) -> str:
        prefix = request.headers.get("x-forwarded-prefix", "") if settings.trust_proxy else ""
        return prefix.rstrip("/") if PREFIX.fullmatch(prefix) else ""

    def render(request: Request, name: str, context: dict, status: int = 200) -> Response:
        value, new = guard.cookie(request)
        user = guard.user(request)
        answer = templates.TemplateResponse(request, name, {
            **context, "root": root(request), "user": user, "links": links(),
            "token": guard.form_token(value, user), "tasks": ALLOWED_TASKS,
            "default_task": DEFAULT_TASK, "forcing": FORCING,
        }, status_code=status)  # fmt: skip
        if new:
            answer.set_cookie(COOKIE, value, httponly=True, samesite="strict",
                              secure=settings.trust_proxy, path=root(request) or "/")  # fmt: skip
        return answer

    def links() -> dict[str, str]:
        found = {"producto": settings.producto_url, "luigid": settings.luigid_url,
                 "history": settings.history_url}  # fmt: skip
        return {k: v for k, v in found.items() if v is not None}

    @app.middleware("http")
    async def headers(request: Request, call_next):
        if request.url.path != "/health" and not guard.from_proxy(request):
            # Behind the proxy, whatever reaches the port without the proxy's key (a local
            # user, another container) is refused: it could name any user.
            answer = PlainTextResponse(
                "refused: this console answers through its proxy only\n", status_code=403
            )
        else:
            answer = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            answer.headers.setdefault(key, value)
        return answer

    @app.exception_handler(UfoError)
    async def unavailable(request: Request, err: UfoError) -> Response:
        return render(
            request, "error.html", {"title": "Not available now", "message": str(err)}, 503
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> Response:
        return render(request, "error.html", {"title": "Not found" if err.status_code == 404
                                              else "Bad request", "message": err.detail},
                      err.status_code)  # fmt: skip

    @app.get("/health", include_in_schema=False)
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def run_dates(request: Request) -> Response:
        query = request.query_params
        try:
            start, end = _date(query.get("from")), _date(query.get("to"))
            chosen = tuple(s for s in query.getlist("state") if s)
            offset = int(query.get("offset") or 0)
            all_loaded = query.get("all_loaded", "1") == "1"
            page = dates.page(start, end, all_loaded=all_loaded, states=chosen, offset=offset,
                              limit=PAGE)  # fmt: skip
        except ValueError as err:
            raise HTTPException(400, f"{err}") from None
        kept = {"from": query.get("from") or "", "to": query.get("to") or "",
                "all_loaded": "1" if all_loaded else "0"}  # fmt: skip

        def href(**changed) -> str:
            params = {**kept, "state": list(chosen), "offset": offset, **changed}
            return "?" + urlencode({k: v for k, v in params.items() if v not in ("", [], 0)},
                                   doseq=True)  # fmt: skip

        recent, _total = views.audit()
        return render(request, "dates.html", {
            "page": page, "states": STATES, "chosen": chosen, "kept": kept, "href": href,
            "recent": recent[:10], "first": page.start, "last": page.end,
        })  # fmt: skip

    @app.get("/dates/{day}", response_class=HTMLResponse)
    def run_date(request: Request, day: str) -> Response:
        try:
            found = _date(day)
        except ValueError as err:
            raise HTTPException(404, str(err)) from None
        return render(request, "date.html", {"day": found, "run": views.run_date(found)})

    @app.get("/requests/{name}", response_class=HTMLResponse)
    def request_page(request: Request, name: str) -> Response:
        _check_name(name)
        status, result, listed = views.request(name)
        if status == "unknown":
            raise HTTPException(404, f"no request {name} in {REQUESTS}/")
        return render(request, "request.html", {
            "name": name, "status": status, "result": result or {}, "listed": listed,
            "log": views.log(name), "ended": status in ("done", "error"),
            "spark_log": views.has_spark_log(name),
        })  # fmt: skip

    @app.get("/requests/{name}/log", response_class=PlainTextResponse)
    def request_log(name: str) -> Response:
        return whole_log(name, "log")

    @app.get("/requests/{name}/spark-log", response_class=PlainTextResponse)
    def request_spark_log(name: str) -> Response:
        return whole_log(name, "spark")

    def whole_log(name: str, kind: str) -> Response:
        _check_name(name)
        log = views.log(name, LOG_WHOLE, kind)
        if log is None:
            what = "Spark output" if kind == "spark" else "log"
            raise HTTPException(404, f"{name} has no {what} (yet)")
        text = log.text
        if log.cut:
            where = lake.uri(views.log_path(name, kind))
            text += f"\n[the log goes on: {log.size:,} bytes in all, at {where}]\n"
        return PlainTextResponse(text)

    @app.get("/audit", response_class=HTMLResponse)
    def audit(request: Request) -> Response:
        try:
            offset = max(int(request.query_params.get("offset") or 0), 0)
        except ValueError:
            raise HTTPException(400, "offset: give a whole number") from None
        shown, total = views.audit(offset)
        return render(request, "audit.html", {"requests": shown, "total": total,
                                              "offset": offset, "step": AUDIT_PAGE})  # fmt: skip

    @app.post("/actions/{verb}", response_class=HTMLResponse)
    async def action(request: Request, verb: str) -> Response:
        if verb not in ("rerun", "backfill"):
            raise HTTPException(404, f"no action {verb}: rerun or backfill")
        body = await request.body()
        if len(body) > MAX_FORM:
            raise HTTPException(400, "the form is too large")
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        try:
            user = guard.check(request, form.get("token", ""))
        except Refused as err:
            return render(request, "error.html", {"title": "Refused", "message": str(err)}, 403)
        task, forcing = form.get("task", DEFAULT_TASK), form.get("forcing", "")
        if verb == "rerun":
            days = form.get("date", "").strip()
        else:
            days = f"{form.get('first', '').strip()}..{form.get('last', '').strip()}"
        if forcing not in FORCING or task not in ALLOWED_TASKS:
            raise HTTPException(400, f"task: one of {', '.join(ALLOWED_TASKS)}; forcing: "
                                     "force, force_upstream or from:TASK, or none")  # fmt: skip
        try:
            if verb == "rerun" and (".." in days or "," in days):
                raise BadRequest("a re-run takes one date: backfill a range")
            request_ = draft(verb, days, task=task, force=forcing == "force",
                             force_upstream=forcing == "force_upstream",
                             force_from=forcing.removeprefix("from:") or None
                             if forcing.startswith("from:") else None, by=user)  # fmt: skip
        except BadRequest as err:
            return render(request, "error.html", {
                "title": "Not requested", "message": f"the worker would refuse it: {err}",
            }, 400)  # fmt: skip
        if (request_.forced or len(request_.dates) > 1) and form.get("confirm") != "yes":
            return render(request, "confirm.html", {
                "verb": verb, "form": form, "draft": request_, "forcing_label": FORCING[forcing],
            })  # fmt: skip
        name = submit(lake, request_)
        return RedirectResponse(f"{root(request)}/requests/{name}", status_code=303)

    return app


def _warm(views: Views) -> None:
    for name in ("dates.html", "date.html", "request.html", "audit.html", "confirm.html",
                 "error.html"):  # fmt: skip
        templates.get_template(name)
    try:
        views.requests.all()
    except Exception:  # the lake is down: the first page says so
        pass


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date: give YYYY-MM-DD") from None


def _check_name(name: str) -> None:
    if not REQUEST_NAME.fullmatch(name) or name.startswith("."):
        raise HTTPException(404, "no such request")
