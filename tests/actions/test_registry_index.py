"""The action index says, for every action, which module registers it.

`get_action` imports only that module, so the index must be complete and exact: an
action missing from it would be "unknown" to a workflow until something else happened to
import its module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from quarterdeck.core.actions.base import ACTION_INDEX, ACTION_MODULES, registered_actions
from quarterdeck.tui.cli.lazy import FAMILIES


def test_index_names_the_module_that_registers_each_action() -> None:
    registered = {name: spec.fn.__module__ for name, spec in registered_actions().items()}
    assert registered == ACTION_INDEX
    assert sorted(ACTION_MODULES) == sorted(set(ACTION_INDEX.values()))


def test_validating_a_workflow_of_builtins_imports_no_other_action_module(
    tmp_path: Path,
) -> None:
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        textwrap.dedent(
            """\
            name: builtins-only
            stages:
              - id: s
                steps:
                  - {id: a, uses: memory.set, with: {key: k, value: 1}}
                  - {id: b, uses: shell, needs: [a], with: {run: "true"}}
            """
        )
    )
    probe = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        from quarterdeck.core.definition.validate import load_workflow
        from quarterdeck.personas.registry import load_catalog
        load_workflow(Path({str(wf)!r}), load_catalog(Path({str(tmp_path)!r})))
        heavy = ["asyncssh", "git", "cryptography", "httpx"]
        actions = sorted(m for m in sys.modules if m.startswith("quarterdeck.core.actions."))
        print(json.dumps({{"heavy": [m for m in heavy if m in sys.modules], "actions": actions}}))
        """
    )
    seen = _probe(probe)
    assert seen["heavy"] == []
    # helpers of the built-ins (shell_script, paths…) may load; no other action module
    actions = seen["actions"]
    assert isinstance(actions, list)
    assert [m for m in actions if m in ACTION_MODULES] == ["quarterdeck.core.actions.builtin"]


def test_validating_git_http_and_ssh_steps_imports_none_of_their_libraries(
    tmp_path: Path,
) -> None:
    """Validation reads the actions' parameter models only: GitPython, httpx, asyncssh and
    the XML parser load when a step talks to git, HTTP or SSH, or reads a JUnit report;
    Jinja2 loads for the first template, and this workflow has none."""
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        textwrap.dedent(
            """\
            name: remote-steps
            stages:
              - id: s
                steps:
                  - {id: tag, uses: git.tag, with: {name: v1.0.0}}
                  - {id: ping, uses: http.request, with: {url: "http://127.0.0.1:9/health"}}
                  - {id: remote, uses: ssh.run, with: {hosts: [127.0.0.1], command: "true"}}
                  - {id: tests, uses: pytest, with: {path: "."}}
            """
        )
    )
    argv = ["validate", str(wf)]
    heavy = ["git", "httpx", "asyncssh", "cryptography", "xml.etree.ElementTree", "jinja2"]
    assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}


def test_validating_a_bundled_release_workflow_loads_no_event_loop_or_journal(
    tmp_path: Path,
) -> None:
    """`validate` reads the actions' parameter models; asyncio (with ssl) loads with the
    first step, and the journal's event types with the first event an action emits
    (the LLM's token count, a circuit breaker's change)."""
    wf = Path(__file__).resolve().parents[2] / "workflows" / "package-release.yaml"
    heavy = ["asyncio", "ssl", "quarterdeck.core.journal.events", "quarterdeck.core.journal.state"]
    # and what steps use to read or write a project's files: TOML, sdists
    heavy += ["tomlkit", "tomllib", "tarfile"]
    assert _cli_imports(tmp_path, ["validate", str(wf)], heavy) == {"code": 0, "heavy": []}


def test_help_and_runs_load_no_event_loop(tmp_path: Path) -> None:
    """Reading commands never start a run: asyncio (and ctypes, for the process-group
    guard) load with the first step, not with the command line."""
    for argv in (["--help"], ["runs", "--json", "--store", str(tmp_path / "qd.db")]):
        assert _cli_imports(tmp_path, argv, ["asyncio", "ctypes"]) == {"code": 0, "heavy": []}


def test_help_and_runs_load_no_network_or_rotating_log_modules(tmp_path: Path) -> None:
    """The log file's rotating handler (``logging.handlers``: socket, pickle, queue) is
    made at the first record, and the store names its host only when claiming a run."""
    heavy = ["logging.handlers", "socket", "pickle"]
    for argv in (["--help"], ["runs", "--json", "--store", str(tmp_path / "qd.db")]):
        assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}


def test_showing_a_run_that_is_no_incident_loads_no_incident_model(tmp_path: Path) -> None:
    """`show` folds the incident only for an incident run; and the temporary files of
    a signed vote's check (tempfile, random) load only with a signed vote."""
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: plain\nstages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: memory.set, with: {key: k, value: 1}}\n"
    )
    store = str(tmp_path / "qd.db")
    env = {**os.environ, "QUARTERDECK_HOME": str(tmp_path / "home")}
    ran = subprocess.run(
        [sys.executable, "-m", "quarterdeck.tui.cli", "run", str(wf), "--store", store, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    run_id = json.loads(ran.stdout)["id"]
    heavy = ["quarterdeck.core.incidents.model", "tempfile", "random"]
    for extra in ([], ["--json"]):
        argv = ["show", run_id, "--store", store, *extra]
        assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}


def test_a_command_imports_only_its_own_family_of_commands(tmp_path: Path) -> None:
    """The top-level group builds the invoked command alone: `runs` reads no workflow,
    so neither the run nor the catalog commands (nor what they import) load."""
    families = [f"quarterdeck.tui.cli.{name}" for name in FAMILIES]
    argv = ["runs", "--json", "--store", str(tmp_path / "qd.db")]
    assert _cli_imports(tmp_path, argv, families) == {
        "code": 0,
        "heavy": ["quarterdeck.tui.cli.history"],
    }


def _cli_imports(tmp_path: Path, argv: list[str], heavy: list[str]) -> dict[str, object]:
    """Run ``quarterdeck ARGV`` in a fresh interpreter; its exit code and which of
    ``heavy`` it imported."""
    probe = textwrap.dedent(
        f"""
        import json, sys
        sys.argv = ["quarterdeck", *{argv!r}]
        from quarterdeck.tui.cli import main
        try:
            main()
        except SystemExit as exc:
            code = exc.code
        heavy = {heavy!r}
        print(json.dumps({{"code": code, "heavy": [m for m in heavy if m in sys.modules]}}))
        """
    )
    return _probe(probe, {**os.environ, "QUARTERDECK_HOME": str(tmp_path / "home")})


def _probe(code: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter and read the JSON it prints last."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    seen: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return seen


def test_a_headless_run_of_builtins_imports_no_ssh_git_http_or_rich(tmp_path: Path) -> None:
    """The whole command, not only validation: launch-time checks and reports included;
    a log that is not a terminal gets plain lines, without loading rich; metrics and
    reports load only when asked for."""
    wf = tmp_path / "wf.yaml"
    wf.write_text(
        "name: builtins-only\nstages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: memory.set, with: {key: k, value: 1}}\n"
    )
    argv = ["run", "--headless", str(wf), "--store", str(tmp_path / "qd.db")]
    heavy = ["asyncssh", "git", "cryptography", "httpx", "rich", "textual"]
    heavy += ["prometheus_client", "xml.etree.ElementTree", "jinja2", "ctypes"]
    assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}


def test_runs_and_show_read_the_store_without_the_engine(tmp_path: Path) -> None:
    """`runs` and `show` only read the journal: no Jinja2, YAML loader or runner."""
    argv = ["runs", "--json", "--store", str(tmp_path / "qd.db")]
    heavy = ["jinja2", "yaml", "quarterdeck.core.engine.runner", "rich", "textual", "pydantic"]
    assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}


def test_show_reads_the_config_only_for_a_signed_vote(tmp_path: Path) -> None:
    """`show` verifies the run's journal; the config (pydantic, YAML) is read only when a
    signed vote needs its allowed signers, and this run has none."""
    from tests.helpers import run_workflow

    ran = run_workflow(
        tmp_path,
        "name: plain\nstages:\n  - id: s\n    steps:\n"
        "      - {id: a, uses: memory.set, with: {key: k, value: 1}}\n",
    )
    ran.store.close()
    argv = ["show", ran.state.id, "--json", "--store", str(ran.store.path)]
    heavy = ["pydantic", "yaml", "jinja2", "quarterdeck.core.engine.runner"]
    assert _cli_imports(tmp_path, argv, heavy) == {"code": 0, "heavy": []}
