"""The documentation: the site builds in strict mode, links resolve, every shown command is run.

``mkdocs build --strict`` fails on any warning, and mkdocs.yml's ``validation`` turns a link to
a missing page or anchor into one; the README, outside the site, has its links checked here.
Every command in a ```sh block of README.md or docs/ must be listed in RUNS with the test that
runs it (or in NOT_RUN with the reason), so a new command nobody runs fails this test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from tests.support import REPO, SHARED_UFO, Terminal

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
         "--site-dir", str(site)],
        cwd=config.parent, env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_site_builds_in_strict_mode_without_a_warning(tmp_path):
    built = build(REPO / "mkdocs.yml", tmp_path / "site")
    assert built.returncode == 0, built.stderr[-4000:]
    assert "WARNING" not in built.stderr, built.stderr[-4000:]
    assert (tmp_path / "site" / "reference" / "settings" / "index.html").exists()


@pytest.mark.parametrize(
    "link, says",
    [("tutorial.md#no-such-anchor", "no-such-anchor"), ("no-such-page.md", "no-such-page.md")],
)
def test_a_broken_link_or_anchor_fails_the_build(tmp_path, link, says):
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(REPO / "docs", tmp_path / "docs")
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as page:
        page.write(f"\nA [broken link]({link}).\n")
    built = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert built.returncode != 0
    assert says in built.stderr


def test_the_generated_reference_pages_are_current():
    checked = subprocess.run(
        [sys.executable, "-m", "etl.tools.docs", "--check"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_the_readme_is_a_landing_page():
    assert len((REPO / "README.md").read_text().splitlines()) <= 300


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings, as MkDocs (Python-Markdown's toc) makes them."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {slugify(re.sub(r"[`*]", "", h), "-") for h in re.findall(r"^#+ (.+)$", text, re.M)}


def test_every_link_of_the_readme_resolves():
    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert any(link.startswith("docs/") for link in links)
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = REPO / path if path else REPO / "README.md"
        assert target.exists(), link
        if anchor:
            assert anchor in anchors(target), link


# --- every shown command is run ----------------------------------------------------------------

PRODUCTO_TEST = "tests/producto/test_readme.py::test_readme_curl_examples_answer_as_documented"
LOCAL = "tests/producto/test_local_product.py"
SAMPLE_TEST = (
    "tests/tools/test_readme_sample.py::test_the_readme_sample_commands_write_what_they_say"
)
REQUEST_TEST = (
    "tests/worker/test_readme_request.py::test_the_readme_request_written_then_renamed_is_run"
)
OPS_TEST = "tests/worker/test_ops_cli.py::test_a_backfill_from_the_command_line_is_run_by_the_worker_and_followed"
FAILING_RUN = "tests/test_docs.py::test_the_tutorials_failing_run_says_what_to_fix_and_its_fix_runs"
E2E = "tests/compose/test_compose_e2e.py"
CURL = "curl -s http://127.0.0.1:8000"
API = 'curl -s "http://127.0.0.1:8000/api/v1/runs/$RUN_DATE'

#: command as shown (comments and repeated spaces dropped) -> (test that runs it, how).
PORTS_TEST = "tests/producto/test_local_ports.py"
RUNS: dict[str, tuple[str, str]] = {
    "make pyspark": (f"{PORTS_TEST}::test_make_pyspark_reads_the_lake_on_the_warm_server", "verbatim in a terminal, on free ports"),
    "make up UFO_RUN_DIR=/tmp/second/.run PORT=9000 LUIGID_PORT=9082 SPARK_HISTORY_PORT=19080 SPARK_CONNECT_PORT=16002 CONSOLE_PORT=9090": (f"{PORTS_TEST}::test_a_second_local_product_runs_beside_the_first_on_make_variables_alone", "with another run directory and free ports"),
    "make stop UFO_RUN_DIR=/tmp/second/.run": (f"{PORTS_TEST}::test_a_second_local_product_runs_beside_the_first_on_make_variables_alone", "with that run directory"),
    ".venv/bin/spark-submit --version": ("tests/tools/test_venvspark.py::test_spark_submit_runs_with_a_path_that_lacks_the_virtualenv", "verbatim, with a PATH that lacks .venv/bin"),
    "PROXY_USERS='alice:$2b$12$...' make up": (f"{LOCAL}::test_make_up_runs_the_product_and_make_stop_stops_everything", "with a real user's hash, on free ports"),
    "make demo": (f"{LOCAL}::test_demo_env_gives_later_commands_the_demos_database_lake_and_date", "verbatim"),
    "make test": (".ci/run", "CI runs it"),
    "UFO_SOURCE=../shared/data/ufo/nuforc_index_2019-03-21.csv make demo": (SAMPLE_TEST, "the same command with a generated export file as UFO_SOURCE"),
    "make up": (f"{LOCAL}::test_make_up_runs_the_product_and_make_stop_stops_everything", "verbatim, on free ports"),
    "make stop": (f"{LOCAL}::test_make_up_runs_the_product_and_make_stop_stops_everything", "verbatim"),
    "make luigid": (f"{LOCAL}::test_readme_luigi_command_runs_with_demo_env_against_make_luigid", "verbatim, on a free port"),
    "make producto PORT=58124": (f"{LOCAL}::test_make_producto_serves_the_readme_examples_and_stops_quietly_on_ctrl_c", "on a free port"),
    "LUIGID_PORT=8083 PORT=8001 make up": (f"{LOCAL}::test_make_up_runs_the_product_and_make_stop_stops_everything", "with free ports"),
    "set -a; . .run/demo.env; set +a": (f"{LOCAL}::test_readme_luigi_command_runs_with_demo_env_against_make_luigid", "verbatim, read from the page"),
    '.venv/bin/python -m luigi --module etl TopStatesToDatabase --date "$RUN_DATE" --scheduler-port 8082': (f"{LOCAL}::test_readme_luigi_command_runs_with_demo_env_against_make_luigid", "read from the page, luigid's port changed"),
    "UFO_SOURCE=../shared/data/ufo/nuforc_index_2019-03-21.csv .venv/bin/python -m luigi --module etl TopStatesToDatabase --date 2019-03-29 --local-scheduler": ("tests/pipeline/test_real_run.py::test_quality_report_matches_and_adds_up", "the same task, date and file, into a test lake and database (the real_run fixture)"),
    "python -m luigi --module etl TopStatesToDatabase --date 2019-03-29 --force-upstream --local-scheduler": ("tests/pipeline/test_forced_rerun.py::test_readers_never_see_a_partial_output", "the same task with --force-upstream, on a generated source"),
    "python -m luigi --module etl TopStatesToDatabase --date 2019-03-29 --force-from TopTenStates --local-scheduler": ("tests/pipeline/test_forced_rerun.py::test_readers_never_see_a_partial_output", "verbatim after the forced run, on a generated source: the Spark step's output kept"),
    "UFO_SOURCE=../shared/data/ufo/nuforc_index_2019-03-21.csv .venv/bin/python -m luigi --module etl RangeDaily --of TopStatesToDatabase --start 2019-01-01 --stop 2019-03-30 --days-back 36500 --task-limit 366 --local-scheduler": ("tests/pipeline/test_backfill.py::test_backfill_a_range_of_run_dates", "RangeDaily with the same options over a shorter range of a generated source"),
    "cat > \"$UFO_STORAGE/requests/.reload.yaml.tmp\" <<'YAML'\ntask: TopStatesToDatabase\nparams: {date: 2019-03-29, force_upstream: true}\nYAML": (REQUEST_TEST, "verbatim, read from the page"),
    'mv "$UFO_STORAGE/requests/.reload.yaml.tmp" "$UFO_STORAGE/requests/reload-2019-03-29.yaml"': (REQUEST_TEST, "verbatim, read from the page"),
    ".venv/bin/python -m etl.tools.sample --rows 100000 --until 2019-03-29": (SAMPLE_TEST, "verbatim, read from the page"),
    ".venv/bin/python -m etl.tools.sample --rows 20000 --layout export --out .run/sample/export.csv": (SAMPLE_TEST, "verbatim, read from the page"),
    ".venv/bin/python -m etl.tools.sample --rows 20000 --layout kaggle --until 2014-05-08 --out .run/sample/scrubbed.csv": (SAMPLE_TEST, "verbatim, read from the page"),
    ".venv/bin/python -m etl.tools.sample --rows 20000 --encoding cp1252 --out .run/sample/index.csv.gz": (SAMPLE_TEST, "verbatim, read from the page"),
    "UFO_SOURCE=.run/sample/export.csv make demo": (SAMPLE_TEST, "verbatim, read from the page"),
    "UFO_SOURCE=nuforc_missing.csv .venv/bin/python -m luigi --module etl ReadUFOs --date 2019-04-01 --local-scheduler": (FAILING_RUN, "verbatim, read from the page"),
    "UFO_SOURCE=../shared/data/ufo/nuforc_index_2019-03-21.csv .venv/bin/python -m luigi --module etl ReadUFOs --date 2019-04-01 --local-scheduler": (FAILING_RUN, "verbatim, read from the page"),
    f"{CURL}/api/v1/runs": (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/top-states?period=all"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/state-sightings?period=2014-07"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/monthly?state=CA"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/rejects?reason=state&limit=3"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/rejects.csv"': (PRODUCTO_TEST, "verbatim, read from the page"),
    f"{CURL}/health": (PRODUCTO_TEST, "verbatim, read from the page"),
    f'{API}/top-states?period=2014-13"': (PRODUCTO_TEST, "verbatim, read from the page, 422"),
    f"{CURL}/api/v1/runs/1553817600": (PRODUCTO_TEST, "verbatim, read from the page, 422"),
    f"{CURL}/api/v1/runs/2001-01-01": (PRODUCTO_TEST, "verbatim, read from the page, 404"),
    "PRODUCTO_DATABASE_URL=postgresql://USER@127.0.0.1:PORT/ufo .venv/bin/python -m producto --host 127.0.0.1 --port 8000": ("tests/producto/conftest.py", "start_server: the same command on a free port, for the real_server fixture"),
    "cp .env.example .env": (f"{E2E}::test_check_env_refuses_the_placeholders_of_env_example", "check-env on a copy of .env.example"),
    "docker compose up -d": (f"{E2E}::test_every_service_is_up_and_healthy", "up --detach with the CI override and two of each scalable service"),
    "docker compose run --rm luigi_worker python -m luigi --module etl TopStatesToDatabase --date 2019-03-29": (f"{E2E}::test_compose_run_against_the_scheduler_runs_nothing_twice", "the same run, with --no-deps -T"),
    "docker compose exec luigi_worker pyspark --master spark://spark-master:7077": (f"{E2E}::test_a_pyspark_shell_on_the_cluster_reads_the_lake_and_the_database", "the shell and the session shown"),
    "docker compose up -d --scale spark-worker=3 --scale luigi_worker=2": (f"{E2E}::test_every_service_is_up_and_healthy", "with two Spark workers and two Luigi workers"),
    ".venv/bin/python -m etl.tools.proxyuser alice": ("tests/tools/test_proxyuser.py::test_the_command_asks_twice_and_prints_only_the_entry", "its main(), the password typed twice"),
    "curl --cacert tls.crt -u alice https://ufo.example.org:8443/api/v1/runs": ("tests/compose/test_compose_access.py::test_every_route_wants_a_login_and_the_right_one_opens_it", "the same request from Python, with the proxy's certificate and a user"),
    ".venv/bin/pytest -k s3a": (".ci/run", "CI's make test runs the s3a tests with the others"),
    ".venv/bin/python -m luigi --module etl TopStatesToDatabase --date 2019-03-29 --accept-checks \"alice: the source shrank because NUFORC removed duplicates\" --local-scheduler": ("tests/pipeline/test_snapshot_checks.py::test_a_shrunken_snapshot_is_held_with_one_alert_then_accepted_and_recorded", "the same task and acceptance on another date, over aggregates written by hand"),
    ".venv/bin/python -m etl.tools.rebuild": ("tests/tools/test_rebuild.py::test_the_database_rebuilt_from_the_lake_equals_what_the_pipeline_loaded", "verbatim, against a dropped and re-created database"),
    ".venv/bin/python -m etl.tools.rebuild --reload": ("tests/tools/test_rebuild.py::test_the_database_rebuilt_from_the_lake_equals_what_the_pipeline_loaded", "verbatim, after the rebuild"),
    ".venv/bin/python -m etl.tools.lake check": ("tests/tools/test_lake_upkeep.py::test_check_reports_the_first_missing_file_and_a_file_of_another_size", "the same module, on a lake with a file cut short and then removed"),
    ".venv/bin/python -m etl.tools.lake sweep": ("tests/tools/test_lake_upkeep.py::test_the_sweep_removes_superseded_and_killed_attempts_never_a_named_file", "the same module, with the default retention and with --retention-hours 0"),
    ".venv/bin/python -m etl.worker runs": (OPS_TEST, "verbatim, in a test lake and database"),
    ".venv/bin/python -m etl.worker runs --from 2019-03-01 --to 2019-03-31 --state failed --json": (OPS_TEST, "the same options over other dates"),
    ".venv/bin/python -m etl.worker rerun 2019-03-29": (OPS_TEST, "the same command on another date, with --task ReadUFOs, run by the worker"),
    ".venv/bin/python -m etl.worker rerun 2019-03-29 --force-upstream --yes --by alice": (OPS_TEST, "verbatim; the request it writes is read back"),
    ".venv/bin/python -m etl.worker rerun 2019-03-29 --from TopTenStates --yes --by alice": (OPS_TEST, "verbatim; the request it writes is read back"),
    ".venv/bin/python -m etl.worker backfill 2019-01-01..2019-03-31 --yes": (OPS_TEST, "the same command over two dates, with --task ReadUFOs, run by the worker"),
    "name=$(.venv/bin/python -m etl.worker backfill 2019-01-01..2019-03-31 --yes)": (OPS_TEST, "the same command over two dates, its printed name kept"),
    '.venv/bin/python -m etl.worker follow "$name" --timeout 7200': (OPS_TEST, "with that name, once before the worker runs it (exit 3) and once after (exit 0)"),
    ".venv/bin/pyspark": ("tests/test_docs.py::test_the_tutorials_pyspark_session_reads_a_dates_counts", "verbatim in a terminal with no virtualenv on PATH, then the page's snippet"),
}  # fmt: skip

#: Shown but run by no test, and why (printed by the test).
NOT_RUN: dict[str, str] = {
    "kubectl apply -f docker-images/kubernetes/namespace.yaml": "no Kubernetes cluster can run on these machines; tests/compose/test_kubernetes.py validates the manifests offline",
    "kubectl -n ufo create secret generic ufo-secrets --from-env-file=ufo-secrets.env": "no Kubernetes cluster can run on these machines; tests/compose/test_kubernetes.py validates the manifests offline",
    "kubectl -n ufo create secret tls ufo-proxy-tls --cert=tls.crt --key=tls.key": "no Kubernetes cluster can run on these machines; tests/compose/test_kubernetes.py validates the manifests offline",
    "kubectl apply -k docker-images/kubernetes/": "no Kubernetes cluster can run on these machines; tests/compose/test_kubernetes.py validates the manifests offline",
    "UFO_SOURCE=https://example.org/nuforc_index.csv.gz make demo": "an example address; http(s) and gzip sources are read by tests/adapters/test_source.py from a local HTTP server",
    "make bench-ingest": "a 10 GB source and a quarter of an hour of timings; no test asserts a timing (bench/ingest.py checks that both reads found every record)",
    "make bench": "about half an hour of timings; no test asserts a timing (bench/run.py checks its results against DuckDB itself)",
    "PROXY_USERS='alice:$2b$12$... bob:$2b$12$...'": "a line of .env, not a command; tests/compose/conftest.py writes such a line",
    "COMPOSE_PROFILES=minio,proxy": "a line of .env, not a command; tests/compose/conftest.py writes such a line",
    "docker compose -f docker-compose.yml -f docker-images/several-hosts/main.yml up -d": "one Docker engine and no network but loopback here; tests/compose/test_several_hosts_files.py checks the compose files with docker compose config, and tests/hosts runs the stack's processes across network namespaces",
    "cp docker-images/several-hosts/join.env.example join.env": "one Docker engine and no network but loopback here; tests/compose/test_several_hosts_files.py checks the compose files with docker compose config, and tests/hosts runs the stack's processes across network namespaces; the test reads join.env.example as copied",
    "docker compose -f docker-images/several-hosts/join.yml --env-file join.env --profile spark up -d": "one Docker engine and no network but loopback here; tests/compose/test_several_hosts_files.py checks the compose files with docker compose config, and tests/hosts runs the stack's processes across network namespaces",
    "docker compose -f docker-images/several-hosts/join.yml --env-file join.env --profile luigi up -d": "one Docker engine and no network but loopback here; tests/compose/test_several_hosts_files.py checks the compose files with docker compose config, and tests/hosts runs the stack's processes across network namespaces",
}  # fmt: skip


def _uncomment(line: str) -> str:
    """The line without a trailing `# comment` (outside quotes), spaces collapsed."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            line = line[:i]
            break
    return " ".join(line.split())


def shown_commands(text: str) -> list[str]:
    """Every command of the page's ```sh blocks: continuation lines joined, here-documents
    whole, interpreter prompts (>>>, ...) and comment lines left out."""
    commands = []
    for block in re.findall(r"^ *```sh\n(.*?)^ *```", text, re.S | re.M):
        lines = iter(block.splitlines())
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith(("#", ">>>", "...")):
                continue
            while line.endswith("\\"):
                line = line[:-1] + " " + next(lines).strip()
            heredoc = re.search(r"<<'?(\w+)'?", line)
            command = _uncomment(line)
            if heredoc:
                body = []
                for more in lines:
                    body.append(more.strip())
                    if more.strip() == heredoc.group(1):
                        break
                command = "\n".join([command, *body])
            commands.append(command)
    return commands


def test_every_shown_command_is_run_by_a_test_or_says_why_not():
    shown = {}
    for page in PAGES:
        for command in shown_commands(page.read_text()):
            shown.setdefault(command, page.relative_to(REPO))
    unlisted = [f"{page}: {c}" for c, page in shown.items() if c not in RUNS and c not in NOT_RUN]
    assert unlisted == [], "add each to RUNS (with the test that runs it) or NOT_RUN (with why)"
    assert sorted(set(RUNS) | set(NOT_RUN)) == sorted(shown), "a listed command is shown no more"
    for command, (where, _how) in RUNS.items():
        path, _, test = where.partition("::")
        assert (REPO / path).exists(), (command, where)
        assert not test or re.search(rf"^def {re.escape(test)}\(", (REPO / path).read_text(), re.M), (
            command, where,
        )  # fmt: skip
    print("\nshown but run by no test:")
    for command, why in NOT_RUN.items():
        print(f"  {command}\n      {why}")


def test_the_tutorials_failing_run_says_what_to_fix_and_its_fix_runs(tmp_path):
    text = (REPO / "docs" / "tutorial.md").read_text()
    step = text.split("## 7. A run that fails, and its fix", 1)[1]
    failing, fixed = [c for c in shown_commands(step) if "ReadUFOs" in c]
    env = {k: v for k, v in os.environ.items() if not k.startswith("UFO_")}
    env["UFO_STORAGE"] = str(tmp_path / "lake")

    ran = subprocess.run(["bash", "-c", failing], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert ran.returncode == 30
    [said] = re.findall(r"^ufo: error: .*$", ran.stdout + ran.stderr, re.M)
    assert said in step  # the page shows the very line
    assert "set UFO_SOURCE" in said

    if not (SHARED_UFO / "nuforc_index_2019-03-21.csv").exists():
        pytest.skip(f"the real NUFORC file is not in {SHARED_UFO}")
    ran = subprocess.run(["bash", "-c", fixed], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert (tmp_path / "lake" / "raw" / "date=2019-04-01" / "_MANIFEST.json").exists()


@pytest.mark.spark
def test_the_tutorials_pyspark_session_reads_a_dates_counts(tmp_path):
    """The tutorial's shell command in a terminal, then its snippet, over a lake of one date."""
    from tests.support import path_without_virtualenv, write_aggregate_lake

    text = (REPO / "docs" / "tutorial.md").read_text()
    step = text.split("## 6. A PySpark session", 1)[1].split("\n## ", 1)[0]
    [command] = [c for c in shown_commands(step) if c.startswith(".venv/bin/pyspark")]
    snippet = re.search(r"```python\n(.*?)```", step, re.S).group(1)
    lake = tmp_path / "lake"
    write_aggregate_lake(lake)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UFO_", "SPARK_"))}
    # As a user who never activated the virtualenv: its bin is not on PATH.
    env["PATH"] = path_without_virtualenv(env.get("PATH", ""))
    env.update(UFO_STORAGE=str(lake), SPARK_LOCAL_IP="127.0.0.1", TERM="dumb")

    with Terminal(["bash", "-c", command], env) as terminal:  # as a user types the command
        terminal.type(*snippet.splitlines(), "exit()")
        terminal.read(timeout=240)
    output = terminal.output
    shown = output.decode(errors="replace")
    # WA 9 before CA 7: the session read the manifest's file and summed it by state.
    assert re.search(r"\|\s*WA\|\s*9\|\s*\r?\n\|\s*CA\|\s*7\|", shown), shown[-3000:]
