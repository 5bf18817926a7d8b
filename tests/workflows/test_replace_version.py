"""The release's docs step moves only version mentions meant to move."""

from __future__ import annotations

import asyncio
from pathlib import Path

from quarterdeck.workflows.steps import replace_version

README = """\
# demo

[![PyPI](https://img.shields.io/badge/pypi-v2.4.0-blue)](https://pypi.org/project/demo/2.4.0/)

    pip install demo==2.4.0

Version 2.4.0 and later are compatible with Python 3.11; 12.4.0 and 2.4.0.1 are not ours.

<!-- version -->
Latest release: 2.4.0
<!-- /version -->

Current version: 2.4.0
"""


def test_only_moving_mentions_change_and_history_stays(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text(README)
    out = asyncio.run(
        replace_version(str(tmp_path), "2.4.0", "2.5.0", ["README.md", "docs/index.md"])
    )
    text = (tmp_path / "README.md").read_text()
    assert "Version 2.4.0 and later are compatible" in text  # a historical sentence
    assert "12.4.0 and 2.4.0.1 are not ours" in text
    assert "pip install demo==2.5.0" in text
    assert "badge/pypi-v2.5.0-blue" in text
    assert "https://pypi.org/project/demo/2.4.0/" in text  # a link to the old release page
    assert "Latest release: 2.5.0" in text and "Current version: 2.5.0" in text
    assert out == {"files": ["README.md"], "replaced": 4, "missing": ["docs/index.md"]}
    again = asyncio.run(replace_version(str(tmp_path), "2.4.0", "2.5.0", ["README.md"]))
    assert again["files"] == [] and (tmp_path / "README.md").read_text() == text
