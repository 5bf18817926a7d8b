"""``python.publish`` uploads with twine: the index receives every metadata field the
distribution declares (PEP 639's ``license_expression`` and ``license_files`` too), and
there is no default upload URL."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path

import pytest

from quarterdeck.core.errors import NonRetryableError
from tests.actions.conftest import run_action
from tests.servers import LoopbackHTTPServer, Reply, Request

PEP639_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "qd-licensed"
version = "2.0.0"
description = "A package with a PEP 639 license expression"
license = "MIT OR Apache-2.0"
license-files = ["LICENSE"]
requires-python = ">=3.9"

[tool.setuptools]
py-modules = ["qd_licensed"]
"""


@pytest.fixture(autouse=True, scope="module")
def suite_venv() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIRTUAL_ENV", sys.prefix)
        yield


class RecordingIndex(LoopbackHTTPServer):
    """An index that has nothing yet and records each upload's form fields."""

    def __init__(self) -> None:
        super().__init__()
        self.uploads: list[dict[str, list[str]]] = []

    def handle(self, request: Request) -> Reply:
        if request.method == "GET":
            return Reply(404, b"not found")
        head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request.body)
        fields: dict[str, list[str]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                fields.setdefault(str(name), []).append(str(part.get_filename()))
            else:
                fields.setdefault(str(name), []).append(str(part.get_content()))
        self.uploads.append(fields)
        return Reply(200, b"OK")


def test_publish_sends_the_pep639_license_fields(tmp_path: Path) -> None:
    project = tmp_path / "licensed"
    project.mkdir()
    (project / "pyproject.toml").write_text(PEP639_PYPROJECT)
    (project / "LICENSE").write_text("MIT or Apache-2.0, your choice\n")
    (project / "qd_licensed.py").write_text("VALUE = 1\n")
    built, _ = run_action(
        "python.build", {"project": str(project), "isolation": False, "sdist": False}, tmp_path
    )
    env = {**os.environ, "QUARTERDECK_PYPI_TOKEN": "pypi-test-token"}
    with RecordingIndex() as index:
        out, lines = run_action(
            "python.publish",
            {"files": [built["wheel"]], "repository_url": f"{index.url}/legacy/"},
            tmp_path,
            env=env,
        )
    assert out["uploaded"] == [Path(built["wheel"]).name]
    assert out["index_url"] == f"{index.url}/simple/"  # next to the upload URL; verify uses it
    [fields] = index.uploads
    assert fields["license_expression"] == ["MIT OR Apache-2.0"]
    assert fields["license_file"] == ["LICENSE"]  # the upload API's name for License-File
    assert fields["name"] == ["qd-licensed"] and fields["version"] == ["2.0.0"]
    assert fields["content"] == [Path(built["wheel"]).name]
    assert not any("pypi-test-token" in line for _, line in lines)


def test_publish_has_no_default_index(tmp_path: Path) -> None:
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    with pytest.raises(NonRetryableError, match="no repository_url"):
        run_action("python.publish", {"files": [str(wheel)]}, tmp_path)
