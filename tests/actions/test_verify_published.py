"""The post-publish check installs exactly what was published: from the target index only
(no user or site pip configuration), compared byte for byte with the built files.

Two real pypiservers on 127.0.0.1 serve different files of the same version.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.workflows.sandbox.servers import PackageIndex
from tests.actions.conftest import Built, run_action
from tests.helpers import cli

pytestmark = pytest.mark.filterwarnings("ignore:.crypt. is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def suite_venv() -> Iterator[None]:
    """The tiny package has no venv: build and check it with the suite's interpreter."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRTUAL_ENV", sys.prefix)
        yield


@pytest.fixture(scope="module")
def indexes(
    built: Built, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[PackageIndex, PackageIndex, Path]]:
    """``good`` serves the built files; ``other`` serves a different wheel of the same
    name and version (a rebuild: one more file inside). Also returns that other wheel."""
    root = tmp_path_factory.mktemp("indexes")
    wheel = Path(built.outputs["wheel"])
    other = root / "rebuilt" / wheel.name
    other.parent.mkdir()
    shutil.copy(wheel, other)
    with zipfile.ZipFile(other, "a") as zf:
        zf.writestr("qd_tinypkg/rebuilt.txt", "not what was built")
    with PackageIndex(root / "good") as good, PackageIndex(root / "other") as bad:
        for path in built.outputs["files"]:
            shutil.copy(path, good.packages)
        shutil.copy(other, bad.packages)
        yield good, bad, other


def sha(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def verify(built: Built, index: PackageIndex, tmp_path: Path) -> dict[str, object]:
    params = {
        "package": "qd-tinypkg",
        "version": "0.3.0",
        "index_url": index.simple,
        "no_deps": True,
        "expect_files": built.outputs["files"],
    }
    out, _ = run_action("python.install_check", params, tmp_path)
    return out


def test_verify_installs_the_built_file_from_the_target_index(
    built: Built, indexes: tuple[PackageIndex, PackageIndex, Path], tmp_path: Path
) -> None:
    good, _, _ = indexes
    out = verify(built, good, tmp_path)
    wheel = Path(built.outputs["wheel"])
    assert (out["file"], out["sha256"], out["matches"]) == (wheel.name, sha(wheel), True)
    assert out["imported"] is True and out["version"] == "0.3.0"


def test_verify_fails_when_the_index_serves_a_different_file(
    built: Built, indexes: tuple[PackageIndex, PackageIndex, Path], tmp_path: Path
) -> None:
    _, other_index, other = indexes
    wheel = Path(built.outputs["wheel"])
    with pytest.raises(NonRetryableError) as info:
        verify(built, other_index, tmp_path)
    message = info.value.message
    assert f"the index serves a different {wheel.name}" in message
    assert f"sha256 {sha(other)}, but the built file has sha256 {sha(wheel)}" in message
    assert info.value.outputs["matches"] is False


def test_verify_ignores_the_users_pip_configuration(
    built: Built, indexes: tuple[PackageIndex, PackageIndex, Path], tmp_path: Path
) -> None:
    """An extra index in pip's config (file or environment) must not stand in for the
    target index: the target has nothing, so the check fails instead of installing the
    other index's file."""
    good, other_index, _ = indexes
    empty = PackageIndex(tmp_path / "empty").start()
    try:
        config = tmp_path / "pip.conf"
        config.write_text(f"[global]\nextra-index-url = {other_index.simple}\n")
        env = {
            **os.environ,
            "PIP_CONFIG_FILE": str(config),
            "PIP_EXTRA_INDEX_URL": other_index.simple,
            "PIP_FIND_LINKS": str(other_index.packages),
        }
        params = {
            "package": "qd-tinypkg",
            "version": "0.3.0",
            "index_url": empty.simple,
            "no_deps": True,
        }
        with pytest.raises(ActionError, match=r"could not download qd-tinypkg==0\.3\.0 from"):
            run_action("python.install_check", params, tmp_path, env=env)
        # the same configuration, the good index as the target: only its file is used
        out, _ = run_action(
            "python.install_check",
            {**params, "index_url": good.simple, "expect_files": built.outputs["files"]},
            tmp_path,
            env=env,
        )
        assert out["matches"] is True
    finally:
        empty.stop()


def test_install_check_refuses_urls_and_paths_as_package_names(tmp_path: Path) -> None:
    path = tmp_path / "direct.yaml"
    path.write_text("""\
name: direct
stages:
  - id: s
    steps:
      - id: url
        uses: python.install_check
        with: {package: "https://example.invalid/evil-1.0-py3-none-any.whl"}
      - id: file
        uses: python.install_check
        with: {package: "./evil.whl"}
      - id: option
        uses: python.install_check
        with: {package: "--index-url=http://elsewhere/"}
      - id: version
        uses: python.install_check
        with: {package: "demo", version: "1.0 ; python_version>'3'"}
      - id: allowed
        uses: python.install_check
        with: {package: "https://example.invalid/ok-1.0-py3-none-any.whl", allow_direct: true}
""")
    result = cli("validate", str(path))
    assert result.returncode == 2, result.stderr
    for line in (7, 10, 13, 16):
        assert f"direct.yaml:{line}:" in result.stderr, (line, result.stderr)
    assert "direct.yaml:19:" not in result.stderr
    assert "needs `allow_direct: true`" in result.stderr
    assert "Traceback" not in result.stderr
