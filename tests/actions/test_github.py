"""github.release against a local stand-in speaking the GitHub REST API (real one unreachable)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.config import Settings
from quarterdeck.core.errors import ActionError, NonRetryableError
from tests.helpers import make_ctx, run_workflow, write_workflow
from tests.servers import GitHubAPI, assert_invalid, run_action, step_outputs

TOKEN = "ghp_s3cret_token_for_tests_42"


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubAPI]:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    with GitHubAPI(token=TOKEN) as api:
        yield api


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "pkg-1.2.0.tar.gz").write_bytes(b"sdist bytes")
    (tmp_path / "dist" / "pkg-1.2.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    return tmp_path / "dist"


def configured(api: GitHubAPI, token: str = TOKEN) -> Settings:
    return Settings(github={"token": token, "api_url": api.url})


def release(tmp_path: Path, settings: Settings, **with_: Any) -> tuple[dict[str, Any], list[str]]:
    ctx = make_ctx(tmp_path, settings=settings)
    params = {"repo": "acme/pkg", "tag": "v1.2.0", **with_}
    out = asyncio.run(run_action("github.release", params, ctx))
    return out, [line for _, line in ctx.lines]  # type: ignore[attr-defined]


ASSETS = ["dist/pkg-1.2.0.tar.gz", "dist/pkg-1.2.0-py3-none-any.whl"]


def test_creates_a_release_with_notes_and_assets(
    github: GitHubAPI, dist: Path, tmp_path: Path
) -> None:
    out, lines = release(
        tmp_path,
        configured(github),
        name="pkg 1.2.0",
        notes="## Added\n- export",
        target="main",
        assets=ASSETS,
    )
    assert out["created"] is True and out["skipped"] is False
    assert out["uploaded"] == ["pkg-1.2.0.tar.gz", "pkg-1.2.0-py3-none-any.whl"]
    made = github.releases["acme/pkg"][0]
    assert made["tag_name"] == "v1.2.0" and made["name"] == "pkg 1.2.0"
    assert made["body"] == "## Added\n- export" and made["target_commitish"] == "main"
    assert out["url"] == made["html_url"] and out["id"] == made["id"]
    assert github.asset_data[(made["id"], "pkg-1.2.0.tar.gz")] == b"sdist bytes"
    assert github.asset_data[(made["id"], "pkg-1.2.0-py3-none-any.whl")] == b"wheel bytes"
    first = github.requests[0]
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["accept"] == "application/vnd.github+json"
    assert f"created release v1.2.0: {made['html_url']}" in lines
    assert TOKEN not in " ".join(lines) + json.dumps(out)


def test_existing_release_is_reported_not_duplicated(
    github: GitHubAPI, dist: Path, tmp_path: Path
) -> None:
    release(tmp_path, configured(github), assets=ASSETS)
    out, lines = release(tmp_path, configured(github), assets=ASSETS)
    assert out["created"] is False and out["uploaded"] == []
    assert out["existing_assets"] == ["pkg-1.2.0.tar.gz", "pkg-1.2.0-py3-none-any.whl"]
    assert len(github.releases["acme/pkg"]) == 1
    assert github.hits("/repos/acme/pkg/releases", "POST") == 1
    assert any(line.startswith("release v1.2.0 already exists") for line in lines)


def test_resumed_step_uploads_only_missing_assets(
    github: GitHubAPI, dist: Path, tmp_path: Path
) -> None:
    # an earlier attempt created the release and uploaded one asset, then crashed
    release(tmp_path, configured(github), assets=ASSETS[:1])
    out, _ = release(tmp_path, configured(github), assets=ASSETS)
    assert out["created"] is False
    assert out["existing_assets"] == ["pkg-1.2.0.tar.gz"]
    assert out["uploaded"] == ["pkg-1.2.0-py3-none-any.whl"]
    rid = github.releases["acme/pkg"][0]["id"]
    assert [a["name"] for a in github.assets[rid]] == [
        "pkg-1.2.0.tar.gz",
        "pkg-1.2.0-py3-none-any.whl",
    ]


def test_skipped_without_a_token(github: GitHubAPI, tmp_path: Path) -> None:
    out, lines = release(tmp_path, Settings(github={"api_url": github.url}))
    assert out["skipped"] is True and out["created"] is False
    assert "no GitHub token configured" in out["reason"] and "GITHUB_TOKEN" in out["reason"]
    assert lines == [f"skipped: {out['reason']}"]
    assert github.requests == []


def test_token_and_base_url_from_the_environment(
    github: GitHubAPI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    out, _ = release(tmp_path, Settings())
    assert out["created"] is True and github.releases["acme/pkg"][0]["tag_name"] == "v1.2.0"


def test_bad_token_and_missing_asset(github: GitHubAPI, dist: Path, tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        release(tmp_path, configured(github, token="ghp_wrong_token_000"))
    assert info.value.message == (
        "GitHub: looking up release v1.2.0 failed: 401 Bad credentials — check github.token "
        "in the config or $GITHUB_TOKEN"
    )
    assert "ghp_wrong_token_000" not in info.value.message
    before = len(github.requests)
    with pytest.raises(NonRetryableError, match=r"release asset not found: .*nope\.zip"):
        release(tmp_path, configured(github), assets=["dist/nope.zip"])
    assert len(github.requests) == before  # checked before contacting GitHub


def test_release_in_a_workflow_keeps_the_token_out_of_the_journal(
    github: GitHubAPI, dist: Path, tmp_path: Path
) -> None:
    ran = run_workflow(
        tmp_path,
        """
name: publish
inputs:
  version: {type: string, default: "1.2.0"}
stages:
  - id: release
    steps:
      - id: gh
        uses: github.release
        with:
          repo: acme/pkg
          tag: "v{{ inputs.version }}"
          notes: "Release {{ inputs.version }}"
          assets: ["dist/pkg-1.2.0.tar.gz"]
""",
        settings=configured(github),
    )
    assert ran.state.status == "succeeded", ran.state.to_json()
    assert step_outputs(ran, "gh")["uploaded"] == ["pkg-1.2.0.tar.gz"]
    assert github.releases["acme/pkg"][0]["body"] == "Release 1.2.0"
    journal = " ".join(e.to_json() for e in ran.store.events(ran.state.id))
    assert TOKEN not in journal


def test_bad_parameters_fail_validation_with_lines(tmp_path: Path) -> None:
    path = write_workflow(
        tmp_path,
        """\
name: bad-gh
stages:
  - id: s
    steps:
      - id: a
        uses: github.release
        with:
          repo: acme/pkg
          tag: v1
          token: ghp_in_a_workflow_file
      - id: b
        uses: github.release
        with:
          repo: "not a repo"
          tag: v1
      - id: c
        uses: github.release
        with:
          repo: acme/pkg
          tag: v1
          api_url: "api.github.com"
""",
    )
    assert_invalid(
        path,
        {
            10: "unknown parameter 'token'",
            14: "should match pattern",
            21: "not an http(s) URL",
        },
    )
