"""Actions that take a path keep it inside the workspace; the error names the resolved path.

Real git repositories in temp dirs; the "outside" target is always a file next to the
repo, so the old behaviour (appending a changelog section to it) is visible without
touching the machine's real /etc/passwd: ``/etc/passwd`` itself is only ever given to
:func:`confined`, which writes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.actions.paths import confined
from quarterdeck.core.errors import NonRetryableError
from tests.actions.conftest import Repo, run_action
from tests.helpers import run_workflow


def test_the_passwd_traversal_is_refused_naming_the_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(NonRetryableError, match=r"file: /etc/passwd is outside the workspace"):
        confined(tmp_path, "../../../../../../../../etc/passwd", [tmp_path], "file")
    with pytest.raises(NonRetryableError, match=r"/etc/passwd is outside"):
        confined(tmp_path, "/etc/passwd", [tmp_path], "file")
    assert (
        confined(tmp_path, "docs/../CHANGELOG.md", [tmp_path], "f")
        == (tmp_path / "CHANGELOG.md").resolve()
    )


def test_a_symlink_out_of_the_workspace_is_refused(tmp_path: Path) -> None:
    inside = tmp_path / "ws"
    inside.mkdir()
    (inside / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NonRetryableError, match=r"elsewhere/CHANGELOG\.md is outside"):
        confined(inside, "link/CHANGELOG.md", [inside], "file")


def test_changelog_file_outside_the_repo_is_refused_and_untouched(
    repo: Repo, tmp_path: Path
) -> None:
    victim = repo.path.parent / "victim.txt"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    repo.commit("feat: something")
    params = {"repo": str(repo.path), "version": "1.1.0", "file": "../victim.txt"}
    with pytest.raises(NonRetryableError, match=f"file: {victim.resolve()} is outside"):
        run_action("git.changelog", params, tmp_path)
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_templated_traversal_fails_the_step_in_a_run(repo: Repo, tmp_path: Path) -> None:
    victim = repo.path.parent / "victim.txt"
    victim.write_text("untouched\n")
    repo.commit("feat: something")
    ran = run_workflow(
        tmp_path,
        f"""\
name: cl
inputs:
  changelog: {{type: string}}
stages:
  - id: s
    steps:
      - id: notes
        uses: git.changelog
        with: {{repo: "{repo.path}", version: "1.1.0", file: "{{{{ inputs.changelog }}}}"}}
""",
        # a deep ../ walk to the root and back down to the victim: never the real
        # /etc/passwd, so running this against code without the fix harms nothing
        inputs={"changelog": "../" * 12 + str(victim.resolve()).lstrip("/")},
    )
    assert ran.state.status == "failed"
    error = ran.state.step("notes").error  # type: ignore[union-attr]
    assert f"{victim.resolve()} is outside the workspace" in error
    assert victim.read_text() == "untouched\n"


def test_bump_version_file_outside_the_repo_is_refused(repo: Repo, tmp_path: Path) -> None:
    outside = repo.path.parent / "pyproject.toml"
    outside.write_text('[project]\nname = "x"\nversion = "1.0.0"\n')
    repo.commit("feat: something")
    params = {"repo": str(repo.path), "file": "../pyproject.toml"}
    with pytest.raises(NonRetryableError, match="is outside the workspace"):
        run_action("git.bump_version", params, tmp_path)
    assert 'version = "1.0.0"' in outside.read_text()


def test_build_outdir_outside_the_project_is_refused_before_building(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "pyproject.toml").write_text('[project]\nname = "p"\nversion = "1"\n')
    params = {"project": str(project), "outdir": "../../../../../../../../tmp/qd-elsewhere"}
    with pytest.raises(NonRetryableError, match=r"outdir: /tmp/qd-elsewhere is outside"):
        run_action("python.build", params, tmp_path)
    assert not Path("/tmp/qd-elsewhere").exists()
