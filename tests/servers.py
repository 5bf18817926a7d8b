"""Real servers on 127.0.0.1 for tests and the demo: they speak the real protocols.

Every server binds a free port on 127.0.0.1, exposes ``.url`` (or ``.host`` for SSH),
records what it received, and stops itself when its ``with`` block (or fixture) ends:

- :class:`HTTPService` — a service with ``/health`` and ``/metrics`` that can be healthy,
  slow, failing or flapping, plus ``/echo`` and ``/status/<code>`` for request tests.
- :class:`GitHubAPI` — a stand-in for the GitHub REST API's release endpoints (the real
  one is not reachable here); product code talks to it through its configurable base URL.
- :class:`WebhookReceiver` — a Slack-compatible incoming webhook that records posts.
- :class:`SSHServer` — an asyncssh server with real host and client keys that runs
  commands with ``/bin/sh -c`` and serves SFTP; :class:`SSHKeys` makes the keys and
  ``known_hosts``.
- :class:`PrometheusServer` — Debian's real ``prometheus`` binary with a temp config and
  data dir, scraping local ``/metrics`` endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import asyncssh
import httpx

from quarterdeck.workflows.sandbox.servers import LOOPBACK, free_port
from quarterdeck.workflows.sandbox.servers import LoopbackHTTPServer as SandboxHTTPServer

# -- HTTP ----------------------------------------------------------------------------------


@dataclass
class Request:
    """One request a server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int = 200
    body: Any = b""  # bytes, str, or anything JSON-serialisable (sent as JSON)
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackHTTPServer(SandboxHTTPServer):
    """The sandbox's loopback server, recording requests; subclasses implement
    :meth:`handle`."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def handle(self, request: Request) -> Reply:  # pragma: no cover - overridden
        return Reply(404, {"message": "Not Found"})

    def hits(self, path: str | None = None, method: str | None = None) -> int:
        """How many requests arrived (for ``path`` / ``method`` when given)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (path is None or r.path == path) and (method is None or r.method == method)
            )

    def exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(path)
        request = Request(method, parts.path, parse_qs(parts.query), headers, body)
        with self._lock:
            self.requests.append(request)
        reply = self.handle(request)
        payload, ctype = _encode(reply.body)
        return reply.status, {"Content-Type": ctype, **reply.headers}, payload


def _encode(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return json.dumps(body).encode(), "application/json"


class HTTPService(LoopbackHTTPServer):
    """A service to deploy against: ``/health``, ``/metrics``, ``/echo``, ``/status/<code>``.

    ``mode`` decides how ``/health`` (and ``/echo``) answer: ``ok``; ``slow`` (sleep
    ``delay`` seconds first); ``failing`` (``fail_status``); ``flapping`` (follow
    ``pattern``, a cycle of True/False, one step per request). Change it any time with
    :meth:`set`. ``/metrics`` serves ``metrics`` in the Prometheus text format.
    """

    def __init__(
        self,
        mode: str = "ok",
        *,
        delay: float = 0.0,
        fail_status: int = 503,
        pattern: tuple[bool, ...] = (True, False),
        metrics: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.metrics: dict[str, float] = dict(metrics or {"demo_up": 1.0})
        self.set(mode, delay=delay, fail_status=fail_status, pattern=pattern)

    def set(
        self,
        mode: str,
        *,
        delay: float | None = None,
        fail_status: int | None = None,
        pattern: tuple[bool, ...] | None = None,
    ) -> None:
        if mode not in ("ok", "slow", "failing", "flapping"):
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self.mode = mode
            if delay is not None:
                self.delay = delay
            if fail_status is not None:
                self.fail_status = fail_status
            if pattern is not None:
                self._flaps = itertools.cycle(pattern)

    def _healthy(self) -> bool:
        with self._lock:
            mode, delay = self.mode, self.delay
            flap = next(self._flaps) if mode == "flapping" else True
        if mode == "slow":
            time.sleep(delay)
        return mode != "failing" and flap

    def handle(self, request: Request) -> Reply:
        if request.path == "/metrics":
            with self._lock:
                lines = [f"{name} {value}" for name, value in self.metrics.items()]
            return Reply(
                200, "\n".join(lines) + "\n", {"Content-Type": "text/plain; version=0.0.4"}
            )
        if request.path.startswith("/status/"):
            return Reply(int(request.path.rsplit("/", 1)[1]), {"status": request.path[8:]})
        if request.path in ("/health", "/echo"):
            if not self._healthy():
                return Reply(self.fail_status, {"status": "unavailable"})
            if request.path == "/health":
                return Reply(200, {"status": "ok"})
            body: Any
            try:
                body = request.json()
            except json.JSONDecodeError:
                body = request.body.decode(errors="replace")
            return Reply(
                200,
                {
                    "method": request.method,
                    "path": request.path,
                    "query": {k: v[-1] for k, v in request.query.items()},
                    "headers": request.headers,
                    "json": body,
                },
            )
        return Reply(404, {"message": "Not Found"})


class GitHubAPI(LoopbackHTTPServer):
    """The release endpoints of the GitHub REST API, in memory.

    Speaks the real paths, status codes and JSON shapes: ``GET/POST
    /repos/{o}/{r}/releases``, ``GET .../releases/tags/{tag}``, ``GET
    .../releases/{id}/assets`` and asset uploads at the release's ``upload_url``
    (``{url}/uploads/repos/{o}/{r}/releases/{id}/assets{?name,label}``). Requests without
    ``Authorization: Bearer <token>`` get 401.
    """

    def __init__(self, token: str = "ghp_test_token_0123456789") -> None:
        super().__init__()
        self.token = token
        self.releases: dict[str, list[dict[str, Any]]] = {}  # "owner/name" → releases
        self.assets: dict[int, list[dict[str, Any]]] = {}  # release id → assets
        self.asset_data: dict[tuple[int, str], bytes] = {}
        self._ids = itertools.count(1)

    def handle(self, request: Request) -> Reply:
        auth = request.headers.get("authorization", "")
        if auth not in (f"Bearer {self.token}", f"token {self.token}"):
            return Reply(
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
            )
        parts = [p for p in request.path.split("/") if p]
        upload = parts[:1] == ["uploads"]
        if upload:
            parts = parts[1:]
        if len(parts) < 4 or parts[0] != "repos" or parts[3] != "releases":
            return Reply(404, {"message": "Not Found"})
        repo = f"{parts[1]}/{parts[2]}"
        rest = parts[4:]
        with self._lock:
            releases = self.releases.setdefault(repo, [])
            if upload and len(rest) == 2 and rest[1] == "assets" and request.method == "POST":
                return self._upload(int(rest[0]), request)
            if not rest and request.method == "GET":
                return Reply(200, releases)
            if not rest and request.method == "POST":
                return self._create(repo, releases, request.json() or {})
            if len(rest) == 2 and rest[0] == "tags" and request.method == "GET":
                found = [r for r in releases if r["tag_name"] == rest[1]]
                return Reply(200, found[0]) if found else Reply(404, {"message": "Not Found"})
            if len(rest) == 2 and rest[1] == "assets" and request.method == "GET":
                return Reply(200, self.assets.get(int(rest[0]), []))
        return Reply(404, {"message": "Not Found"})

    def _create(self, repo: str, releases: list[dict[str, Any]], body: dict[str, Any]) -> Reply:
        tag = body.get("tag_name")
        if not tag:
            return Reply(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"resource": "Release", "code": "missing_field", "field": "tag_name"}
                    ],
                },
            )
        if any(r["tag_name"] == tag for r in releases):
            return Reply(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"resource": "Release", "code": "already_exists", "field": "tag_name"}
                    ],
                },
            )
        rid = next(self._ids)
        release = {
            "id": rid,
            "tag_name": tag,
            "name": body.get("name") or tag,
            "body": body.get("body", ""),
            "draft": bool(body.get("draft", False)),
            "prerelease": bool(body.get("prerelease", False)),
            "target_commitish": body.get("target_commitish", "main"),
            "html_url": f"{self.url}/{repo}/releases/tag/{tag}",
            "url": f"{self.url}/repos/{repo}/releases/{rid}",
            "upload_url": f"{self.url}/uploads/repos/{repo}/releases/{rid}/assets{{?name,label}}",
        }
        releases.append(release)
        self.assets[rid] = []
        return Reply(201, release)

    def _upload(self, rid: int, request: Request) -> Reply:
        name = (request.query.get("name") or [""])[-1]
        if rid not in self.assets:
            return Reply(404, {"message": "Not Found"})
        if not name:
            return Reply(422, {"message": "Validation Failed: name is required"})
        if any(a["name"] == name for a in self.assets[rid]):
            return Reply(
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {"resource": "ReleaseAsset", "code": "already_exists", "field": "name"}
                    ],
                },
            )
        asset = {
            "id": rid * 1000 + len(self.assets[rid]) + 1,
            "name": name,
            "size": len(request.body),
            "state": "uploaded",
            "content_type": request.headers.get("content-type", ""),
        }
        self.assets[rid].append(asset)
        self.asset_data[(rid, name)] = request.body
        return Reply(201, asset)


class WebhookReceiver(LoopbackHTTPServer):
    """A Slack-compatible incoming webhook: records JSON posts, answers ``ok``."""

    def __init__(self, status: int = 200) -> None:
        super().__init__()
        self.status = status

    @property
    def posts(self) -> list[Any]:
        with self._lock:
            return [r.json() for r in self.requests if r.method == "POST"]

    def handle(self, request: Request) -> Reply:
        if request.method != "POST":
            return Reply(405, "method not allowed")
        try:
            payload = request.json()
        except json.JSONDecodeError:
            return Reply(400, "invalid_payload")
        if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
            return Reply(400, "no_text")
        return Reply(self.status, "ok" if self.status == 200 else "server_error")


# -- SSH -----------------------------------------------------------------------------------


@dataclass
class SSHKeys:
    """A host key, a client key (saved to a file) and helpers to write known_hosts."""

    directory: Path
    host_key: asyncssh.SSHKey
    client_key: asyncssh.SSHKey
    client_key_path: Path

    @classmethod
    def generate(cls, directory: Path) -> SSHKeys:
        directory.mkdir(parents=True, exist_ok=True)
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        path = directory / "id_ed25519"
        client_key.write_private_key(str(path))
        path.chmod(0o600)
        client_key.write_public_key(str(path) + ".pub")
        return cls(directory, host_key, client_key, path)

    def write_known_hosts(
        self,
        servers: list[SSHServer],
        key: asyncssh.SSHKey | None = None,
        name: str = "known_hosts",
    ) -> Path:
        """known_hosts trusting ``key`` (default: the real host key) for each server."""
        trusted = key or self.host_key
        public = trusted.export_public_key("openssh").decode().strip()
        path = self.directory / name
        path.write_text("".join(f"[{LOOPBACK}]:{s.port} {public}\n" for s in servers))
        return path

    def settings(self, known_hosts: Path, username: str = "tester") -> Any:
        """A ``quarterdeck.core.config.Settings`` that logs in with this client key, no agent."""
        from quarterdeck.core.config import Settings, SSHSettings

        return Settings(
            ssh=SSHSettings(
                known_hosts=str(known_hosts),
                client_keys=[str(self.client_key_path)],
                username=username,
                use_agent=False,
            )
        )


class ConcurrencyProbe:
    """Counts commands running at once (share one between servers)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.active = 0
        self.max_active = 0

    def enter(self) -> None:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def exit(self) -> None:
        with self._lock:
            self.active -= 1


class SSHServer:
    """An asyncssh server on 127.0.0.1 in its own thread: commands run with ``/bin/sh -c``
    as the current user, SFTP serves the local file system. Only ``keys.client_key`` may
    log in (any user name)."""

    def __init__(
        self, keys: SSHKeys, *, probe: ConcurrencyProbe | None = None, cwd: Path | None = None
    ) -> None:
        self.keys = keys
        self.probe = probe or ConcurrencyProbe()
        self.cwd = cwd
        self.commands: list[str] = []
        self.logins: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as a workflow's ``hosts:`` names it."""
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=15)
        return self

    async def _start(self) -> None:
        server = self
        public = self.keys.client_key.export_public_key("openssh").decode()

        class Auth(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                server.logins.append(username)
                return True

        self._server = await asyncssh.create_server(
            Auth,
            LOOPBACK,
            0,
            server_host_keys=[self.keys.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(public),
            process_factory=self._run,
            sftp_factory=True,
            encoding="utf-8",
        )

    async def _run(self, process: asyncssh.SSHServerProcess[str]) -> None:
        command = process.command
        if command is None:
            process.stderr.write("this test server runs commands only\n")
            process.exit(1)
            return
        self.commands.append(command)
        self.probe.enter()
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=str(self.cwd) if self.cwd else None,
            )

            async def pump(src: asyncio.StreamReader | None, dst: Any) -> None:
                while src is not None and (line := await src.readline()):
                    dst.write(line.decode(errors="replace"))

            await asyncio.gather(
                pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr)
            )
            code = await proc.wait()
        finally:
            self.probe.exit()
        process.exit(code)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- Prometheus ----------------------------------------------------------------------------

PROMETHEUS_PACKAGE = "prometheus"


def prometheus_binary() -> str:
    """The ``prometheus`` binary; skips the test (fails it under ``CI=true``) when missing."""
    import pytest

    found = shutil.which("prometheus")
    if found:
        return found
    message = (
        f"the `prometheus` binary is missing: install the Debian package "
        f"{PROMETHEUS_PACKAGE!r} (apt-get install {PROMETHEUS_PACKAGE})"
    )
    if os.environ.get("CI"):
        pytest.fail(message + " — required under CI")
    pytest.skip(message)


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 scraping ``targets`` (``host:port``) every second."""

    def __init__(
        self,
        targets: list[str],
        workdir: Path,
        *,
        scrape_interval: str = "1s",
        binary: str | None = None,
    ) -> None:
        self.targets = targets
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.binary = binary or prometheus_binary()
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, ready_timeout: float = 30.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            f"  evaluation_interval: {self.scrape_interval}\n"
            "scrape_configs:\n"
            "  - job_name: service\n"
            f"    scrape_interval: {self.scrape_interval}\n"
            f"    scrape_timeout: {self.scrape_interval}\n"
            f"    static_configs:\n      - targets: {json.dumps(self.targets)}\n"
        )
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={LOOPBACK}:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._poll(
                lambda c: c.get(f"{self.url}/-/ready").status_code == 200,
                ready_timeout,
                "become ready",
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _poll(self, check: Callable[[httpx.Client], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._proc is not None and self._proc.poll() is not None:
                    raise RuntimeError(
                        f"prometheus exited ({self._proc.returncode}):\n"
                        + self.log_path.read_text(errors="replace")[-2000:]
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if check(client):
                        return
                time.sleep(0.1)
        raise TimeoutError(
            f"prometheus did not {what} within {timeout:g}s:\n"
            + self.log_path.read_text(errors="replace")[-2000:]
        )

    def wait_for_series(self, query: str, timeout: float = 20.0) -> None:
        """Poll (bounded) until ``query`` returns data, i.e. the first scrape landed."""

        def has_data(client: httpx.Client) -> bool:
            reply = client.get(f"{self.url}/api/v1/query", params={"query": query}).json()
            return bool(reply.get("data", {}).get("result"))

        self._poll(has_data, timeout, f"return data for {query!r}")

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(*servers: Any) -> Iterator[tuple[Any, ...]]:
    """Start several servers; stop them all (in reverse) however the block ends."""
    with contextlib.ExitStack() as stack:
        yield tuple(stack.enter_context(s) for s in servers)


# -- calling actions -----------------------------------------------------------------------


async def run_action(name: str, with_: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Validate ``with_`` with the action's parameter model and run it, as the runner does."""
    from quarterdeck.core.actions.base import get_action

    spec = get_action(name)
    assert spec is not None, f"unknown action {name}"
    params = spec.params.model_validate(with_)
    return dict(await spec.fn(params, ctx))


def assert_invalid(path: Path, expected: dict[int, str]) -> str:
    """``quarterdeck validate path`` exits 2 and reports each ``line: text`` as file:line."""
    from tests.helpers import cli

    result = cli("validate", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for line, text in expected.items():
        hits = [ln for ln in result.stderr.splitlines() if ln.startswith(f"{path}:{line}:")]
        assert any(text in ln for ln in hits), (
            f"expected {path}:{line}: ... {text!r} in:\n{result.stderr}"
        )
    return result.stderr


def step_outputs(ran: Any, step_id: str) -> dict[str, Any]:
    """The outputs a finished run recorded for ``step_id`` (fails clearly when it has none)."""
    step = ran.state.step(step_id)
    assert step is not None, f"no step {step_id!r} in the run"
    return dict(step.outputs)
