"""A user's repository may have its own ``core/`` and ``workflows/`` packages.

Quarterdeck's folders install as ``quarterdeck.*``, so nothing of Quarterdeck's shadows a
project's ``core`` any more. ``workflows.steps`` is the one legacy name: it resolves to
the project's own ``workflows`` package when there is one, and to Quarterdeck's bundled
steps (``quarterdeck.workflows.steps``) when there is not. Runs go through the real CLI
in a subprocess whose working directory is the user's repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WORKFLOW = """\
name: user-packages
stages:
  - id: work
    steps:
      - id: hello
        uses: python
        with: {call: "core.tasks:hello", args: {name: "deck"}}
      - id: notes
        uses: python
        with:
          call: workflows.steps:write_markdown
          args: {directory: "notes", filename: "n.md", title: "T", sections: {A: "b"}}
"""


def make_user_repo(root: Path, *, own_workflows: bool) -> Path:
    (root / "core").mkdir(parents=True)
    (root / "core" / "__init__.py").write_text("")
    (root / "core" / "tasks.py").write_text(
        "def hello(name):\n    return {'greeting': f'hello {name}', 'from': __file__}\n"
    )
    if own_workflows:
        (root / "workflows").mkdir()
        (root / "workflows" / "__init__.py").write_text("")
        (root / "workflows" / "steps.py").write_text(
            "def write_markdown(**kwargs):\n    return {'by': 'the project', 'from': __file__}\n"
        )
    (root / "release.yaml").write_text(WORKFLOW)
    return root


def run(repo: Path, home: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {**os.environ, "QUARTERDECK_HOME": str(home), "QUARTERDECK_CONFIG_DIR": str(home)}
    env.pop("CI", None)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "quarterdeck.tui.cli",
            "run",
            "release.yaml",
            "--headless",
            "--json",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    data = json.loads(result.stdout)
    outputs = {s["id"]: s["outputs"] for stage in data["stages"] for s in stage["steps"]}
    return result, outputs


def test_the_projects_own_core_and_workflows_packages(tmp_path: Path) -> None:
    repo = make_user_repo(tmp_path / "repo", own_workflows=True)
    result, outputs = run(repo, tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert outputs["hello"]["greeting"] == "hello deck"
    assert outputs["hello"]["from"] == str(repo / "core" / "tasks.py")
    assert outputs["notes"] == {"by": "the project", "from": str(repo / "workflows" / "steps.py")}


def test_workflows_steps_falls_back_to_quarterdecks_bundled_steps(tmp_path: Path) -> None:
    repo = make_user_repo(tmp_path / "repo", own_workflows=False)
    result, outputs = run(repo, tmp_path / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    assert outputs["hello"]["from"] == str(repo / "core" / "tasks.py")
    written = Path(outputs["notes"]["path"])
    assert written.read_text() == "# T\n\n## A\n\nb\n"
