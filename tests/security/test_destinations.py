"""Credentials go only to the hosts their config names, over https (or to loopback).

Refusals happen before any connection (the hosts below do not exist); the servers that
must receive a credential are real, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import zipfile
from pathlib import Path
from typing import Any

import pytest

from quarterdeck.core.config import CredentialSettings, Settings
from quarterdeck.core.errors import NonRetryableError
from tests.helpers import make_ctx
from tests.servers import GitHubAPI, LoopbackHTTPServer, Reply, Request, run_action

TOKEN = "ghp_destination_token_0001"


def _run(name: str, params: dict[str, Any], tmp_path: Path, settings: Settings, **kw: Any) -> Any:
    ctx = make_ctx(tmp_path, settings=settings, **kw)
    return asyncio.run(run_action(name, params, ctx))


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_TOKEN", "GITHUB_API_URL", "QUARTERDECK_PYPI_TOKEN", "SVC_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_github_token_is_not_sent_to_a_templated_api_url(tmp_path: Path) -> None:
    settings = Settings(github={"token": TOKEN})
    with pytest.raises(NonRetryableError, match=r"github credential to https://evil\.example"):
        _run(
            "github.release",
            {"repo": "a/b", "tag": "v1", "api_url": "https://evil.example.invalid"},
            tmp_path,
            settings,
        )


def test_github_token_is_not_sent_over_plain_http_to_a_listed_host(tmp_path: Path) -> None:
    settings = Settings(
        github={"token": TOKEN},
        credentials={"github": CredentialSettings(hosts=["ghe.example.invalid"])},
    )
    with pytest.raises(NonRetryableError, match=r"over http://"):
        _run(
            "github.release",
            {"repo": "a/b", "tag": "v1", "api_url": "http://ghe.example.invalid/api/v3"},
            tmp_path,
            settings,
        )


class HostileGitHub(GitHubAPI):
    """Answers with an ``upload_url`` on another host (a compromised or fake API)."""

    def _create(self, repo: str, releases: list[dict[str, Any]], body: dict[str, Any]) -> Reply:
        reply = super()._create(repo, releases, body)
        reply.body["upload_url"] = "https://collector.example.invalid/assets{?name,label}"
        return reply


def test_a_server_returned_upload_url_is_checked(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("asset")
    with HostileGitHub(token=TOKEN) as api:
        settings = Settings(github={"token": TOKEN, "api_url": api.url})
        with pytest.raises(NonRetryableError, match=r"collector\.example\.invalid"):
            _run(
                "github.release",
                {"repo": "a/b", "tag": "v1", "assets": ["a.txt"]},
                tmp_path,
                settings,
            )
        assert api.releases["a/b"]  # the API itself (configured, loopback) got the token


class Redirector(LoopbackHTTPServer):
    def handle(self, request: Request) -> Reply:
        if request.path == "/go":
            return Reply(302, b"", {"Location": "https://collector.example.invalid/steal"})
        return Reply(200, {"auth": request.headers.get("authorization", "")})


def test_http_request_auth_is_bound_to_its_hosts_and_redirects_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SVC_TOKEN", "svc-token-value-1")
    settings = Settings(
        credentials={"svc": CredentialSettings(env="SVC_TOKEN", hosts=["api.example.invalid"])}
    )
    with Redirector() as server:
        ok = _run("http.request", {"url": f"{server.url}/me", "auth": "svc"}, tmp_path, settings)
        assert ok["json"] == {"auth": "Bearer svc-token-value-1"}
        with pytest.raises(NonRetryableError, match=r"collector\.example\.invalid"):
            _run(
                "http.request",
                {"url": f"{server.url}/go", "auth": "svc", "follow_redirects": True},
                tmp_path,
                settings,
            )
    with pytest.raises(NonRetryableError, match=r"not one of its hosts"):
        _run(
            "http.request",
            {"url": "https://other.example.invalid/", "auth": "svc"},
            tmp_path,
            settings,
        )


def test_notify_auth_is_bound_to_its_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SVC_TOKEN", "svc-token-value-1")
    settings = Settings(
        credentials={"chat": CredentialSettings(env="SVC_TOKEN", hosts=["chat.example.invalid"])}
    )
    with pytest.raises(NonRetryableError, match=r"hooks\.example\.invalid"):
        _run(
            "notify.webhook",
            {"url": "https://hooks.example.invalid/T1/B2", "text": "hi", "auth": "chat"},
            tmp_path,
            settings,
        )


def _wheel(directory: Path) -> Path:
    directory.mkdir()
    path = directory / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(
            "pkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n"
        )
    return path


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://index.example.invalid/legacy/", "not one of its hosts"),
        ("http://upload.pypi.org/legacy/", "over http://"),
    ],
)
def test_publish_sends_index_credentials_only_to_its_hosts(
    tmp_path: Path, url: str, why: str
) -> None:
    _wheel(tmp_path / "dist")
    env = {"QUARTERDECK_PYPI_TOKEN": "pypi-token-value-1", "PATH": "/usr/bin:/bin"}
    with pytest.raises(NonRetryableError, match=why):
        _run("python.publish", {"repository_url": url}, tmp_path, Settings(), env=env)
