"""A stand-in for a hosted LLM: an OpenAI-compatible chat-completions server on 127.0.0.1.

A hosted model cannot run here, so tests (and the demo) talk to this server exactly as
product code talks to the real thing: ``POST {base_url}/chat/completions`` with a bearer
key, answering in the chat-completions JSON shape. Replies are scripted, in order; when
the script runs out the server answers normally (echoing the prompt, with ``usage``).

Scripted replies cover what a real provider does on a bad day: a reply without
``usage``, ``429`` with ``Retry-After``, ``500``, a malformed body, a hang past the
client's timeout, and an error body that echoes the caller's credentials (to prove they
are redacted). Every request is recorded (path, headers, JSON body) for assertions.

Run standalone for the demo: ``python -m tests.llm_server --port 0 --lifetime 3600``
prints its base URL and stops by itself after ``--lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG_LIMIT_SECONDS = 30.0


@dataclass
class Reply:
    """One scripted answer. ``kind`` picks the behaviour; the other fields tune it."""

    kind: str = "ok"  # ok | no_usage | rate_limit | error | malformed | hang | echo_auth
    content: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    status: int | None = None
    retry_after: str | None = "1"
    body: str | None = None


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes = b""


@dataclass
class _Shared:
    script: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)


def _count_tokens(text: str) -> int:
    """The server's own (deterministic) token count: words, at least one."""
    return max(1, len(text.split()))


def _last_user_message(body: dict[str, Any] | None) -> str:
    for message in reversed((body or {}).get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class _Handler(BaseHTTPRequestHandler):
    server_version = "llm-stand-in/1.0"
    shared: _Shared  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output quiet

    def _send(
        self,
        status: int,
        payload: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(
        self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})
            return
        self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        shared = self.shared
        with shared.lock:
            shared.requests.append(Request(self.path, dict(self.headers.items()), body, raw))
            reply = shared.script.popleft() if shared.script else Reply()
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        if body is None or not isinstance(body.get("messages"), list):
            self._json(400, {"error": {"message": "messages is required", "type": "invalid"}})
            return
        self._answer(reply, body)

    def _answer(self, reply: Reply, body: dict[str, Any]) -> None:
        kind = reply.kind
        if kind == "hang":
            # Hold the connection without answering, until the server stops (bounded).
            shared = self.shared
            shared.stopping.wait(HANG_LIMIT_SECONDS)
            return
        if kind == "rate_limit":
            headers = {"Retry-After": reply.retry_after} if reply.retry_after is not None else {}
            self._json(
                reply.status or 429,
                {"error": {"message": "Rate limit reached", "type": "rate_limit"}},
                headers,
            )
            return
        if kind == "error":
            self._json(
                reply.status or 500,
                {
                    "error": {
                        "message": reply.content or "The server had an error",
                        "type": "server_error",
                    }
                },
            )
            return
        if kind == "malformed":
            payload = reply.body if reply.body is not None else '{"id": "x", "choices": ['
            self._send(reply.status or 200, payload.encode())
            return
        if kind == "echo_auth":
            auth = self.headers.get("Authorization", "")
            self._json(
                reply.status or 401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {auth}",
                        "type": "invalid_request_error",
                    }
                },
            )
            return
        prompt_text = " ".join(
            str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict)
        )
        if reply.content is not None:
            content = reply.content
        else:
            fmt = body.get("response_format") or {}
            if isinstance(fmt, dict) and fmt.get("type") == "json_object":
                content = json.dumps({"echo": _last_user_message(body)})
            else:
                content = f"echo: {_last_user_message(body)}"
        data: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.shared.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stand-in"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
        if kind != "no_usage":
            prompt = (
                reply.prompt_tokens
                if reply.prompt_tokens is not None
                else _count_tokens(prompt_text)
            )
            completion = (
                reply.completion_tokens
                if reply.completion_tokens is not None
                else _count_tokens(content)
            )
            data["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        self._json(reply.status or 200, data)


class LLMServer:
    """The stand-in server, serving on a background thread; use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._shared = _Shared()
        handler = type("Handler", (_Handler,), {"shared": self._shared})
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[Request]:
        with self._shared.lock:
            return list(self._shared.requests)

    def script(self, *replies: Reply) -> None:
        """Queue replies, answered in order before the default normal reply."""
        with self._shared.lock:
            self._shared.script.extend(replies)

    def start(self) -> LLMServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._shared.stopping.set()  # release hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--lifetime", type=float, default=3600.0, help="stop by itself after this many seconds"
    )
    args = parser.parse_args(argv)
    server = LLMServer(port=args.port).start()
    sys.stdout.write(f"{server.base_url}\n")
    sys.stdout.flush()
    try:
        time.sleep(args.lifetime)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
