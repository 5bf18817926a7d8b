"""Packaging actions against the real thing: a real build, a fresh venv, a real index."""

from __future__ import annotations

import hashlib
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.actions.conftest import Built, Index, make_python_project, run_action
from tests.helpers import cli, run_workflow


@pytest.fixture(autouse=True, scope="module")
def suite_venv() -> Iterator[None]:
    """These projects have no venv of their own: run them as if the suite's venv (which has
    the tools) were activated, the way a developer runs Quarterdeck from a shell. Module
    scope, so the module's shared fixtures (one build per module) see it too."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRTUAL_ENV", sys.prefix)
        yield


def index_env(index: Index) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["QUARTERDECK_PYPI_USERNAME"] = index.username
    env["QUARTERDECK_PYPI_PASSWORD"] = index.password
    return env


def test_build_makes_a_wheel_and_an_sdist(built: Built) -> None:
    out = built.outputs
    assert (out["name"], out["version"]) == ("qd-tinypkg", "0.3.0")
    wheel, sdist = Path(out["wheel"]), Path(out["sdist"])
    assert wheel.name == "qd_tinypkg-0.3.0-py3-none-any.whl"
    assert sdist.name.endswith("-0.3.0.tar.gz")
    assert wheel.parent == built.project / "dist"
    assert sorted(out["files"]) == sorted([str(wheel), str(sdist)])
    with zipfile.ZipFile(wheel) as zf:
        assert "qd_tinypkg/__init__.py" in zf.namelist()
    assert any("built qd_tinypkg-0.3.0-py3-none-any.whl" in line for _, line in built.lines)
    assert len(built.lines) > 3  # the build's own output was streamed


def test_build_failure_is_reported(tmp_path: Path) -> None:
    project = make_python_project(tmp_path / "broken")
    text = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(
        text.replace('packages = ["qd_tinypkg"]', 'packages = ["missing_pkg"]')
    )
    with pytest.raises(ActionError, match="python -m build failed"):
        run_action("python.build", {"project": str(project), "isolation": False}, tmp_path)
    with pytest.raises(NonRetryableError, match=r"no pyproject\.toml"):
        run_action("python.build", {"project": str(tmp_path / "nowhere")}, tmp_path)


def test_install_check_in_a_fresh_venv(built: Built, tmp_path: Path) -> None:
    out, lines = run_action(
        "python.install_check",
        {"wheel": built.outputs["wheel"], "version": "0.3.0", "smoke": ["qd-tiny"]},
        tmp_path,
    )
    assert out["installed"] and out["imported"]
    assert (out["module"], out["version"]) == ("qd_tinypkg", "0.3.0")
    assert out["smoke_exit_code"] == 0
    assert out["smoke_output"] == "qd-tiny says hello"
    assert not list((tmp_path / "run" / "venvs").iterdir())  # the venv is removed
    assert any("installs and imports" in line for _, line in lines)


def test_install_check_catches_a_wheel_that_does_not_import(built: Built, tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="import no_such_module"):
        run_action(
            "python.install_check",
            {"wheel": built.outputs["wheel"], "module": "no_such_module"},
            tmp_path,
        )
    with pytest.raises(ActionError, match="smoke command"):
        run_action(
            "python.install_check",
            {"wheel": built.outputs["wheel"], "smoke": "python -c 'raise SystemExit(3)'"},
            tmp_path,
        )


def test_publish_uploads_once_then_reports_already_published(
    built: Built, pypi_index: Index, tmp_path: Path
) -> None:
    params = {
        "files": [built.outputs["wheel"], built.outputs["sdist"]],
        "repository_url": pypi_index.url,
    }
    env = index_env(pypi_index)
    out, lines = run_action("python.publish", params, tmp_path, env=env)
    assert out["already_published"] is False
    assert sorted(out["uploaded"]) == sorted(
        Path(p).name for p in (built.outputs["wheel"], built.outputs["sdist"])
    )
    stored = sorted(p.name for p in pypi_index.packages.iterdir())
    assert stored == sorted(out["uploaded"])
    assert (pypi_index.packages / Path(built.outputs["wheel"]).name).read_bytes() == Path(
        built.outputs["wheel"]
    ).read_bytes()
    assert not any(pypi_index.password in line for _, line in lines)

    again, lines = run_action(
        "python.publish", params, tmp_path, env=env, idempotency_key="another-run/publish"
    )
    assert again["already_published"] is True
    assert again["uploaded"] == []
    assert sorted(again["skipped"]) == stored
    assert any("already on the index" in line for _, line in lines)

    # and the release installs from the index into a fresh venv
    out, _ = run_action(
        "python.install_check",
        {
            "package": "qd-tinypkg",
            "version": "0.3.0",
            "index_url": pypi_index.simple,
            "no_deps": True,
        },
        tmp_path,
    )
    assert out["version"] == "0.3.0"


def test_publish_finishes_a_half_done_upload(
    built: Built, pypi_index: Index, tmp_path: Path
) -> None:
    # A crash after the wheel went up: the resumed step uploads only the sdist.
    env = index_env(pypi_index)
    run_action(
        "python.publish",
        {"files": [built.outputs["wheel"]], "repository_url": pypi_index.url},
        tmp_path,
        env=env,
    )
    out, _ = run_action(
        "python.publish",
        {
            "files": [built.outputs["wheel"], built.outputs["sdist"]],
            "repository_url": pypi_index.url,
        },
        tmp_path,
        env=env,
    )
    assert out["uploaded"] == [Path(built.outputs["sdist"]).name]
    assert out["skipped"] == [Path(built.outputs["wheel"]).name]
    assert out["already_published"] is False


def test_publish_needs_credentials_and_reports_refusal(
    built: Built, pypi_index: Index, tmp_path: Path
) -> None:
    import os

    params = {"files": [built.outputs["wheel"]], "repository_url": pypi_index.url}
    bare = {k: v for k, v in os.environ.items() if not k.startswith(("QUARTERDECK_PYPI", "TWINE_"))}
    with pytest.raises(NonRetryableError, match="no index credentials"):
        run_action("python.publish", params, tmp_path, env=bare)
    wrong = {**bare, "QUARTERDECK_PYPI_USERNAME": "uploader", "QUARTERDECK_PYPI_PASSWORD": "no"}
    with pytest.raises(NonRetryableError, match="refused the credentials"):
        run_action("python.publish", params, tmp_path, env=wrong)
    assert not list(pypi_index.packages.iterdir())


def test_publish_never_replaces_a_published_file(
    built: Built, pypi_index: Index, tmp_path: Path
) -> None:
    env = index_env(pypi_index)
    wheel = Path(built.outputs["wheel"])
    run_action(
        "python.publish",
        {"files": [str(wheel)], "repository_url": pypi_index.url},
        tmp_path,
        env=env,
    )
    # same file name, different bytes (a rebuild of a released version)
    other = tmp_path / "other" / wheel.name
    other.parent.mkdir()
    shutil.copy(wheel, other)
    with zipfile.ZipFile(other, "a") as zf:
        zf.writestr("qd_tinypkg/extra.txt", "changed")
    listing = httpx.get(f"{pypi_index.simple}qd-tinypkg/").text
    assert "#sha256=" in listing  # the index publishes hashes, so a difference is visible
    with pytest.raises(NonRetryableError, match="already on the index with different") as info:
        run_action(
            "python.publish",
            {"files": [str(other)], "repository_url": pypi_index.url},
            tmp_path,
            env=env,
        )
    theirs, mine = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (wheel, other))
    assert f"sha256 {theirs} there, {mine} built" in info.value.message
    assert info.value.outputs["differs"] == [wheel.name]
    assert (pypi_index.packages / wheel.name).read_bytes() == wheel.read_bytes()


def test_release_workflow_builds_checks_and_publishes(pypi_index: Index, tmp_path: Path) -> None:
    project = make_python_project(tmp_path / "proj", version="1.0.0")
    workflow = f"""
name: py-release
stages:
  - id: package
    steps:
      - id: build
        uses: python.build
        with: {{project: "{project}", isolation: false}}
      - id: check
        uses: python.install_check
        needs: [build]
        with: {{wheel: "{{{{ steps.build.outputs.wheel }}}}", version: "1.0.0"}}
      - id: publish
        uses: python.publish
        needs: [check]
        with:
          files: ["{{{{ steps.build.outputs.wheel }}}}", "{{{{ steps.build.outputs.sdist }}}}"]
          repository_url: "{pypi_index.url}"
"""
    from quarterdeck.core.engine.runner import RunOptions

    env = index_env(pypi_index)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_workflow(tmp_path / "a", workflow, options=RunOptions(started_by="t", env=env))
    assert first.state.status == "succeeded", [(s.id, s.error) for s in first.state.all_steps()]
    publish = {s.id: s for s in first.state.all_steps()}["publish"]
    assert publish.outputs["already_published"] is False
    before = {p.name: p.read_bytes() for p in pypi_index.packages.iterdir()}
    # a second run rebuilds (new timestamps, new bytes) under the same version: refused
    second = run_workflow(tmp_path / "b", workflow, options=RunOptions(started_by="t", env=env))
    assert second.state.status == "failed"
    publish = {s.id: s for s in second.state.all_steps()}["publish"]
    assert "already on the index with different content" in str(publish.error)
    assert {p.name: p.read_bytes() for p in pypi_index.packages.iterdir()} == before


def test_bad_packaging_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""\
name: bad-packaging
stages:
  - id: s
    steps:
      - id: build
        uses: python.build
        with: {sdist: false, wheel: false}
      - id: check
        uses: python.install_check
        with: {module: x}
      - id: publish
        uses: python.publish
        with: {repository_url: "ftp://example.test", password: "hunter2"}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10, 13):
        assert f"bad.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "unknown parameter 'password'" in result.stderr
    assert "Traceback" not in result.stderr


def test_build_without_the_build_package_says_how_to_install_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    bare = tmp_path / "bare-venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60
    )
    project = make_python_project(tmp_path / "p")
    with pytest.raises(NonRetryableError, match="`build` package is not installed"):
        run_action(
            "python.build",
            {"project": str(project), "python": str(bare / "bin" / "python")},
            tmp_path,
        )
