"""The demo sandbox's services, all on 127.0.0.1, all stoppable (and stopped) by their owner.

- :class:`ProductionService` — the "production" HTTP service: ``/health`` and ``/metrics``
  answer from the release currently deployed (``<deploy_dir>/current/release.json``), so a
  deploy or a rollback over SSH changes what they say.
- :class:`DeployHost` — an asyncssh server with a generated host key that only accepts a
  generated client key; commands run with ``/bin/sh -c`` as the current user and SFTP
  serves the local file system. :class:`SSHKeys` writes the keys and a ``known_hosts``.
- :class:`DemoModel` — an OpenAI-compatible chat-completions endpoint with scripted,
  clearly labelled replies (model ``demo-model``, every reply starts with ``[demo model]``).
- :class:`PackageIndex` — a real pypiserver in a child process.
- :class:`Prometheus` — the real ``prometheus`` binary scraping the service (optional: the
  demo runs without it when it is not installed).

These are product code (``quarterdeck demo`` uses them), so they live here rather than in
the test suite; the tests use the same classes. Child processes die with their parent
(``PR_SET_PDEATHSIG`` on Linux), so even a killed demo leaves nothing listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import asyncssh
import httpx

from quarterdeck.workflows.sandbox.model_script import DEMO_PREFIX, demo_reply

LOOPBACK = "127.0.0.1"
DEMO_MODEL = "demo-model"
__all__ = ["DEMO_PREFIX", "demo_reply"]


def free_port() -> int:
    """A port nothing listens on right now (also what a "dead port" test connects to)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """In a child process: get SIGTERM when the parent dies, however it dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait_until(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    alive: Callable[[], str | None] | None = None,
) -> None:
    """Poll ``check`` (bounded) until it holds; fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None:
            problem = alive()
            if problem:
                raise RuntimeError(problem)
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not start within {timeout:g}s")


# -- HTTP ----------------------------------------------------------------------------------


class LoopbackHTTPServer:
    """A threaded HTTP server on 127.0.0.1 answering through :meth:`respond`.

    :meth:`exchange` is the whole answer (status, headers, body); override it when a
    server needs more than a content type (the test servers record requests there).
    """

    def __init__(self) -> None:
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0  # still known after stop(), e.g. to prove nothing listens there

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def respond(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        return 404, "application/json", b'{"message": "Not Found"}'

    def exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        status, ctype, payload = self.respond(method, path, body, headers)
        return status, {"Content-Type": ctype}, payload

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, reply_headers, payload = server.exchange(
                    self.command, self.path, body, headers
                )
                self.send_response(status)
                for name, value in reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ProductionService(LoopbackHTTPServer):
    """The service the incident demo deploys to.

    Each request reads ``<deploy_dir>/current/release.json`` (``{"version", "healthy",
    "error_ratio"}``): ``/health`` is 200 when the deployed release is healthy, 503 when it
    is not (or nothing is deployed); ``/metrics`` serves ``demo_up``,
    ``demo_error_ratio`` and ``demo_requests_total`` in the Prometheus text format. Every
    request also appends a line to ``log_file`` (what ``tail`` over SSH shows in triage).
    """

    def __init__(self, deploy_dir: Path, log_file: Path) -> None:
        super().__init__()
        self.deploy_dir = deploy_dir
        self.log_file = log_file
        self._lock = threading.Lock()
        self.requests = 0

    def release(self) -> dict[str, Any]:
        try:
            data = json.loads((self.deploy_dir / "current" / "release.json").read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def version(self) -> str:
        """The deployed release's name: ``releases/<name>/service`` behind ``current``."""
        current = self.deploy_dir / "current"
        if not current.exists():
            return "none"
        return Path(os.path.realpath(current)).parent.name

    def _log(self, line: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._lock, self.log_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {line}\n")

    def respond(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        release = self.release()
        healthy = bool(release.get("healthy", False))
        ratio = float(release.get("error_ratio", 1.0 if not release else 0.0))
        version = self.version()
        with self._lock:
            self.requests += 1
            count = self.requests
        if path == "/metrics":
            text = (
                f"demo_up {1 if healthy else 0}\n"
                f"demo_error_ratio {ratio}\n"
                f"demo_requests_total {count}\n"
                f'demo_release_info{{version="{version}"}} 1\n'
            )
            return 200, "text/plain; version=0.0.4", text.encode()
        if path == "/health":
            if healthy:
                if ratio > 0.05:
                    self._log(
                        f"WARN checkout: {ratio:.0%} of requests failing "
                        f"(release {version}): upstream rate cache returned stale rates"
                    )
                else:
                    self._log(f"INFO health ok (release {version})")
                return (
                    200,
                    "application/json",
                    json.dumps({"status": "ok", "version": version}).encode(),
                )
            self._log(f"ERROR health check failed (release {version})")
            return (
                503,
                "application/json",
                json.dumps({"status": "unavailable", "version": version}).encode(),
            )
        return 404, "application/json", b'{"message": "Not Found"}'


# -- the demo model --------------------------------------------------------------------------


class DemoModel(LoopbackHTTPServer):
    """An OpenAI-compatible ``/v1/chat/completions`` with scripted replies.

    Product code reaches it exactly as a hosted model: ``llm.base_url`` in the config.
    Replies say ``model: demo-model`` and start with ``[demo model]`` so nobody mistakes
    them for a real model's output; usage is counted in words (deterministic).
    """

    def __init__(self) -> None:
        super().__init__()
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def respond(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, str, bytes]:
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return (
                200,
                "application/json",
                json.dumps(
                    {"object": "list", "data": [{"id": DEMO_MODEL, "object": "model"}]}
                ).encode(),
            )
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, "application/json", b'{"error": {"message": "no such route"}}'
        try:
            request = json.loads(body or b"null")
            messages = request["messages"]
        except (ValueError, KeyError, TypeError):
            return 400, "application/json", b'{"error": {"message": "messages is required"}}'
        prompt = next(
            (
                str(m.get("content", ""))
                for m in reversed(messages)
                if isinstance(m, dict) and m.get("role") == "user"
            ),
            "",
        )
        system = " ".join(
            str(m.get("content", ""))
            for m in messages
            if isinstance(m, dict) and m.get("role") == "system"
        )
        with self._lock:
            self.prompts.append(prompt)
            count = len(self.prompts)
        fmt = request.get("response_format") or {}
        content = demo_reply(prompt, system)
        if isinstance(fmt, dict) and fmt.get("type") == "json_object":
            content = json.dumps({"model": DEMO_MODEL, "text": content})
        words = sum(len(str(m.get("content", "")).split()) for m in messages if isinstance(m, dict))
        completion = len(content.split())
        reply = {
            "id": f"chatcmpl-demo-{count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": DEMO_MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": words,
                "completion_tokens": completion,
                "total_tokens": words + completion,
            },
        }
        return 200, "application/json", json.dumps(reply).encode()


# -- SSH -------------------------------------------------------------------------------------


class SSHKeys:
    """A host key and a client key, written to ``directory``, plus a ``known_hosts``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key_path = directory / "id_ed25519"
        self.client_key.write_private_key(str(self.client_key_path))
        self.client_key_path.chmod(0o600)
        self.client_key.write_public_key(str(self.client_key_path) + ".pub")
        self.known_hosts = directory / "known_hosts"

    def trust(self, port: int) -> Path:
        """Write ``known_hosts`` trusting exactly this host key at ``127.0.0.1:port``."""
        public = self.host_key.export_public_key("openssh").decode().strip()
        self.known_hosts.write_text(f"[{LOOPBACK}]:{port} {public}\n")
        return self.known_hosts


class DeployHost:
    """An SSH deploy target on 127.0.0.1 (its own thread and event loop)."""

    def __init__(self, keys: SSHKeys, cwd: Path) -> None:
        self.keys = keys
        self.cwd = cwd
        self.commands: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncssh.SSHAcceptor | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "deploy host not started"
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, as a workflow's ``hosts`` input names it."""
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, daemon=True, name="demo-ssh")
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=15)
        self.keys.trust(self.port)
        return self

    async def _start(self) -> None:
        public = self.keys.client_key.export_public_key("openssh").decode()
        self._server = await asyncssh.create_server(
            asyncssh.SSHServer,
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
            process.stderr.write("this deploy host runs commands only\n")
            process.exit(1)
            return
        self.commands.append(command)
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=str(self.cwd),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

        async def pump(src: asyncio.StreamReader | None, dst: Any) -> None:
            while src is not None and (line := await src.readline()):
                dst.write(line.decode(errors="replace"))

        await asyncio.gather(pump(proc.stdout, process.stdout), pump(proc.stderr, process.stderr))
        process.exit(await proc.wait())

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


# -- child processes -------------------------------------------------------------------------


class _Child:
    """A server in a child process: started, waited for, and always stopped."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def argv(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def ready(self, client: httpx.Client) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

        def alive() -> str | None:
            if self.proc is not None and self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-1500:]
                return f"{self.name} exited ({self.proc.returncode}):\n{tail}"
            return None

        try:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                _wait_until(lambda: self.ready(client), timeout, self.name, alive)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PackageIndex(_Child):
    """pypiserver on 127.0.0.1: uploads at ``url + '/'``, the simple API at ``simple``.

    Uploads need a user name and password (an htpasswd file with a generated password);
    downloads do not, as on PyPI. Re-uploading an existing file is refused.
    """

    name = "pypiserver"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.packages = workdir / "packages"
        self.username = "uploader"
        self.password = secrets.token_urlsafe(18)

    @property
    def simple(self) -> str:
        return f"{self.url}/simple/"

    @property
    def upload_url(self) -> str:
        return f"{self.url}/"

    def argv(self) -> list[str]:
        from passlib.apache import HtpasswdFile

        self.packages.mkdir(parents=True, exist_ok=True)
        htpasswd = self.workdir / "htpasswd"
        users = HtpasswdFile(str(htpasswd), new=True, default_scheme="apr_md5_crypt")
        users.set_password(self.username, self.password)
        users.save()
        htpasswd.chmod(0o600)
        return [
            sys.executable,
            "-m",
            "pypiserver",
            "run",
            "-p",
            str(self.port),
            "-i",
            LOOPBACK,
            "-a",
            "update",
            "-P",
            str(htpasswd),
            "--disable-fallback",
            str(self.packages),
        ]

    def ready(self, client: httpx.Client) -> bool:
        return client.get(self.simple).status_code == 200

    def files(self) -> list[str]:
        """The distribution files the index holds."""
        return sorted(p.name for p in self.packages.rglob("*") if p.is_file())


class Prometheus(_Child):
    """The real Prometheus (Debian package ``prometheus``) scraping ``targets`` every second."""

    name = "prometheus"

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        super().__init__(workdir)
        self.targets = targets

    @staticmethod
    def available() -> str | None:
        return shutil.which("prometheus")

    def argv(self) -> list[str]:
        config = self.workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: production\n    scrape_interval: 1s\n"
            f"    scrape_timeout: 1s\n    static_configs:\n"
            f"      - targets: {json.dumps(self.targets)}\n"
        )
        binary = self.available() or "prometheus"
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn",
        ]

    def ready(self, client: httpx.Client) -> bool:
        return client.get(f"{self.url}/-/ready").status_code == 200

    def wait_for(self, query: str, timeout: float = 20.0) -> None:
        """Bounded wait until ``query`` returns data (the first scrape landed)."""

        def has_data() -> bool:
            with httpx.Client(timeout=2.0, trust_env=False) as client:
                reply = client.get(f"{self.url}/api/v1/query", params={"query": query}).json()
            return bool(reply.get("data", {}).get("result"))

        _wait_until(has_data, timeout, f"data for {query!r} in prometheus")
