"""A canary in every credential source appears nowhere Quarterdeck writes.

The run is real (the CLI in a subprocess, a real SQLite store, GitHub Actions mode, OTel
spans on the console exporter, reports and an event stream); each credential source holds
its own canary, and a step prints them all, writes them as output keys and fails with
them on stderr.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.helpers import cli, write_workflow

ENV_SOURCES = {
    "QUARTERDECK_PYPI_TOKEN": "cnryPypiToken0001",
    "QUARTERDECK_PYPI_PASSWORD": "cnryPypiPassword0002",
    "TWINE_PASSWORD": "cnryTwinePassword0003",
    "MY_INDEX_CRED": "cnryPasswordEnvIndirection0004",  # password_env: MY_INDEX_CRED
    "GITHUB_TOKEN": "cnryGithubToken0005",
    "GH_TOKEN": "cnryGhToken0006",
    "QUARTERDECK_LLM_API_KEY": "cnryLlmKey0007",
    "OPENAI_API_KEY": "cnryOpenaiKey0008",
    "TEAM_MODEL_CRED": "cnryLlmKeyEnvIndirection0009",  # llm.api_key_env
    "QUARTERDECK_SSH_PASSPHRASE": "cnrySshPassphrase0010",
    "DEPLOY_PHRASE_VAR": "cnrySshPassphraseEnv0011",  # ssh.passphrase_env
    "QUARTERDECK_NOTIFY_TOKEN": "cnryNotifyToken0012",
    "PROJECT_DEPLOY_SECRET": "cnryProjectSecret0013",  # looks like a credential
}
CONFIG_SOURCES = {
    "github.token": "cnryConfigGithub0014",
    "pypi.password": "cnryConfigPypi0015",
    "llm.api_key": "cnryConfigLlm0016",
}
CANARIES = [*ENV_SOURCES.values(), *CONFIG_SOURCES.values()]

CONFIG = f"""\
github: {{token: {CONFIG_SOURCES["github.token"]}}}
pypi: {{username: __token__, password: {CONFIG_SOURCES["pypi.password"]}}}
llm: {{api_key: {CONFIG_SOURCES["llm.api_key"]}, api_key_env: TEAM_MODEL_CRED}}
ssh: {{passphrase_env: DEPLOY_PHRASE_VAR}}
"""

WORKFLOW = """\
name: canary
stages:
  - id: leak
    persona: backend-engineer
    steps:
      - id: cat
        uses: shell
        with: {run: "cat secrets.txt"}
      - id: keys
        uses: shell
        with:
          run: "sh -c 'while read s; do echo \\"$s=1\\" >> $QUARTERDECK_OUTPUT; done < secrets.txt'"
      - id: environment
        uses: shell
        with: {run: "sh -c 'env | sort > child-env.txt; echo seen'"}
      - id: boom
        uses: shell
        continue_on_error: true
        with: {run: "sh -c 'cat secrets.txt >&2; exit 3'"}
  - id: publish
    when: "{{ false }}"
    steps:
      - id: upload
        uses: python.publish
        with: {password_env: MY_INDEX_CRED}
"""


def _count(text: str) -> int:
    return sum(text.count(c) for c in CANARIES)


def _found(where: str, text: str) -> list[str]:
    return [f"{where}: {c}" for c in CANARIES if c in text]


def _store_text(db: Path) -> str:
    conn = sqlite3.connect(db)
    parts: list[str] = []
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
        for row in conn.execute(f"SELECT * FROM {table}"):
            parts.append(repr(row))
    conn.close()
    return "\n".join(parts)


def test_a_canary_in_every_credential_source_appears_nowhere(
    tmp_path: Path, isolated_home: Path
) -> None:
    import os

    config_dir = Path(os.environ["QUARTERDECK_CONFIG_DIR"])
    (config_dir / "config.yaml").write_text(CONFIG)
    (tmp_path / "secrets.txt").write_text("\n".join(CANARIES) + "\n")
    wf = write_workflow(tmp_path, WORKFLOW)
    db = tmp_path / "qd.db"
    reports = tmp_path / "reports"
    summary = tmp_path / "step-summary.md"
    env = {
        **ENV_SOURCES,
        "GITHUB_ACTIONS": "true",
        "GITHUB_STEP_SUMMARY": str(summary),
        "OTEL_TRACES_EXPORTER": "console",
    }
    proc = cli(
        "run", str(wf), "--headless", "--store", str(db), "--events", "-",
        "--report-dir", str(reports), env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "::warning" in proc.stderr or "::error" in proc.stderr  # annotations were written
    assert '"name"' in proc.stderr  # spans were exported

    run_id = json.loads(proc.stdout.splitlines()[-1])["run_id"]
    shown = cli("show", run_id, "--store", str(db), env=env, cwd=tmp_path)
    shown_json = cli("show", run_id, "--json", "--store", str(db), env=env, cwd=tmp_path)
    assert shown.returncode == 0 and shown_json.returncode == 0, shown.stderr
    # the step really saw the secrets: its output keys exist, masked
    outputs = json.loads(shown_json.stdout)["stages"][0]["steps"][1]["outputs"]
    assert "***" in outputs

    leaks: list[str] = []
    leaks += _found("stdout", proc.stdout)
    leaks += _found("stderr", proc.stderr)
    leaks += _found("journal", _store_text(db))
    leaks += _found("show", shown.stdout + shown.stderr)
    leaks += _found("show --json", shown_json.stdout)
    leaks += _found("step summary", summary.read_text())
    report_files = sorted(p for p in reports.rglob("*") if p.is_file())
    assert {p.name for p in report_files} >= {"run.json", "junit.xml", "summary.md", "events.jsonl"}
    for path in report_files:
        leaks += _found(path.name, path.read_text())
    run_dir = isolated_home / "runs" / run_id
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        leaks += _found(f"run dir {path.name}", path.read_text(errors="replace"))
    assert leaks == []
    # no child process inherited a credential it did not ask for
    child_env = (tmp_path / "child-env.txt").read_text()
    for name in ENV_SOURCES:
        assert f"{name}=" not in child_env


def test_a_step_asks_for_one_credential_by_name(tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        """\
name: ask
stages:
  - id: s
    persona: backend-engineer
    steps:
      - id: one
        uses: shell
        with:
          run: "sh -c 'env > child-env.txt'"
          secrets: [TWINE_PASSWORD]
""",
    )
    proc = cli(
        "run", str(wf), "--headless", "--store", str(tmp_path / "qd.db"),
        env={"TWINE_PASSWORD": "cnryAsked01", "GITHUB_TOKEN": "cnryNotAsked02"}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    child_env = (tmp_path / "child-env.txt").read_text()
    assert "TWINE_PASSWORD=cnryAsked01" in child_env
    assert "GITHUB_TOKEN" not in child_env


def test_no_canary_in_otel_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-memory exporter sees every span attribute, event and status the run made."""
    import asyncio

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from quarterdeck.core.observability.tracing import TracingSubscriber
    from tests.helpers import make_runner

    for name, value in ENV_SOURCES.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "secrets.txt").write_text("\n".join(ENV_SOURCES.values()) + "\n")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runner = make_runner(tmp_path, WORKFLOW.split("  - id: publish")[0])
    tracer = TracingSubscriber(provider, environ={}, step_env=runner.step_env)
    runner.subscribers.append(tracer)
    state = asyncio.run(runner.run())
    tracer.close()
    spans = exporter.get_finished_spans()
    assert state.status == "succeeded" and spans
    dumped = "\n".join(span.to_json() for span in spans)
    assert "boom" in dumped  # the failed step's span is there
    assert [c for c in ENV_SOURCES.values() if c in dumped] == []


def test_names_that_only_look_like_credentials() -> None:
    from quarterdeck.core.credentials import credential_env_names, credential_values

    env = {
        "FEATURE_TOKEN": "true",  # too short to be one: not masked (it would mask "true")
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "QUARTERDECK_PYPI_TOKEN": "pypi-x",  # known: masked whatever its length
        "PATH": "/usr/bin",
    }
    values = credential_values(env)
    assert "true" not in values and "/usr/bin" not in values
    assert {"wJalrXUtnFEMI/K7MDENG", "pypi-x"} <= set(values)
    assert credential_env_names(env) == {
        "FEATURE_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "QUARTERDECK_PYPI_TOKEN",
    }  # all three stay out of child processes
