"""Alert intake: an Alertmanager webhook receiver that opens incidents.

``quarterdeck listen --alertmanager 127.0.0.1:PORT`` serves the webhook Alertmanager posts
to (its documented JSON, ``version: "4"``: ``groupKey``, ``status`` firing|resolved,
``alerts[]`` with ``labels``/``annotations``/``startsAt``, ``commonLabels``…). Each new
alert group starts one incident-response run, headless, as a background task of the
listener process, journaled to the shared store:

- Deduplication is by ``groupKey``: while a group's incident is open (not resolved by
  people), further notifications of that group start nothing. The claim is one
  ``INSERT OR IGNORE`` into the ``alert_groups`` table, so two listeners sharing a store
  cannot both start a run for one group.
- Severity comes from the ``severity`` label: critical→SEV1, high/error→SEV2,
  warning→SEV3, info→SEV4, anything else→SEV3
  (:data:`quarterdeck.core.incidents.severity.LABEL_SEVERITY`).
- The run's inputs: ``alert`` (the whole notification, JSON) and ``severity`` (``SEVn``),
  plus ``group_key``, ``alertname`` and ``summary`` when the workflow declares them, and
  any declared input named like a common label or annotation gets its value. Inputs the
  workflow does not declare are never passed.
- A ``resolved`` notification records an ``alert`` incident action (``status: resolved``)
  by ``alertmanager`` on the group's run: the war room shows it; people still resolve.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quarterdeck.core.errors import InvalidInput, QuarterdeckError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.incidents.guard import ListenGuard, open_guard
from quarterdeck.core.incidents.read import load
from quarterdeck.core.incidents.record import record
from quarterdeck.core.incidents.severity import label_severity, severity_name
from quarterdeck.core.journal import alert_groups
from quarterdeck.core.journal.store import Store
from quarterdeck.core.journal.transactions import immediate

ALERT_ACTOR = "alertmanager"
MAX_BODY = 4 * 1024 * 1024
HEADER_LIMIT = 64 * 1024
READ_TIMEOUT = 30.0


class _Loose(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class AlertItem(_Loose):
    status: str = "firing"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = ""  # Alertmanager's field names, as it sends them
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerPayload(_Loose):
    """Alertmanager's webhook body (https://prometheus.io/docs/alerting/latest/configuration/
    #webhook_config); extra fields are kept."""

    version: str = "4"
    groupKey: str = Field(min_length=1)
    status: str
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    truncatedAlerts: int = 0
    alerts: list[AlertItem] = Field(default_factory=empty_list)


def parse_payload(body: bytes) -> AlertmanagerPayload:
    """The webhook body, or :class:`InvalidInput` saying what is wrong with it."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(
            f"the body is not JSON: {exc}", hint="post Alertmanager's webhook JSON (version 4)"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            "the body is not a JSON object", hint="post Alertmanager's webhook JSON (version 4)"
        )
    try:
        payload = AlertmanagerPayload.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise InvalidInput(
            f"not an Alertmanager webhook payload: {problems}",
            hint="expected version, groupKey, status and alerts[]",
        ) from None
    if payload.status not in ("firing", "resolved"):
        raise InvalidInput(f"status {payload.status!r} is neither 'firing' nor 'resolved'")
    if not payload.version.startswith("4"):
        raise InvalidInput(
            f"webhook payload version {payload.version!r} is not supported",
            hint="Quarterdeck reads Alertmanager's version 4 payload",
        )
    return payload


def payload_labels(payload: AlertmanagerPayload) -> dict[str, str]:
    """The labels every alert of the group shares (first alert's, when none are common)."""
    if payload.commonLabels:
        return dict(payload.commonLabels)
    return dict(payload.alerts[0].labels) if payload.alerts else dict(payload.groupLabels)


def run_inputs(
    payload: AlertmanagerPayload,
    declared: dict[str, Any],
    label_inputs: Collection[str] | None = None,
) -> dict[str, Any]:
    """The inputs of the run an alert group starts, limited to what the workflow declares.

    Labels and annotations are written by whoever can reach Alertmanager: with
    ``label_inputs`` given (``listen`` always gives it), they fill only the inputs named
    there; Quarterdeck's own derived values (``alert``, ``severity``, ``group_key``,
    ``alertname``, ``summary``) are always offered. The caller's ``-i`` values win."""
    labels = payload_labels(payload)
    annotations = dict(payload.commonAnnotations)
    if not annotations and payload.alerts:
        annotations = dict(payload.alerts[0].annotations)
    candidates: dict[str, Any] = {}
    for source in (annotations, labels):  # labels win over annotations of the same name
        candidates.update(
            {k: v for k, v in source.items() if label_inputs is None or k in label_inputs}
        )
    candidates.update(
        {
            "alert": payload.model_dump(mode="json"),
            "severity": severity_name(label_severity(labels)),
            "group_key": payload.groupKey,
            "alertname": labels.get("alertname", ""),
            "summary": annotations.get("summary", ""),
        }
    )
    out: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in candidates:
            continue
        value = candidates[name]
        kind = getattr(spec, "type", "string")
        if kind == "json":
            out[name] = value
        elif isinstance(value, dict | list):
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


@dataclass
class Outcome:
    """What one notification did (also the HTTP reply)."""

    action: str  # started | duplicate | resolved | ignored
    group_key: str
    run_id: str | None = None
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "group_key": self.group_key,
            "run": self.run_id,
            "message": self.message,
        }


StartRun = Callable[[AlertmanagerPayload, str], str]


@dataclass
class Intake:
    """Turns notifications into runs and incident actions; the HTTP part is separate."""

    store_path: Path
    start_run: StartRun  # (payload, run_id) -> run id actually started; raises on failure
    new_run_id: Callable[[], str]
    say: Callable[[str], None] = lambda text: None
    now: Callable[[], float] = time.time
    seen: list[Outcome] = field(default_factory=empty_list)

    def __post_init__(self) -> None:
        Store(self.store_path).close()  # created or migrated (the alert_groups table) now

    def handle(self, payload: AlertmanagerPayload) -> Outcome:
        with Store(self.store_path) as store:
            outcome = self._handle(store, payload)
        self.seen.append(outcome)
        self.say(f"alert group {payload.groupKey} {payload.status}: {outcome.message}")
        return outcome

    def _handle(self, store: Store, payload: AlertmanagerPayload) -> Outcome:
        key = payload.groupKey
        now = self.now()
        row = alert_groups.group(store, key)
        if payload.status == "resolved":
            if row is None or not row[0]:
                return Outcome("ignored", key, None, "no incident for this group; nothing to do")
            run_id = str(row[0])
            alert_groups.mark(store, key, "resolved", now)
            names = ", ".join(sorted({a.labels.get("alertname", "?") for a in payload.alerts}))
            record(
                store,
                run_id,
                "alert",
                actor=ALERT_ACTOR,
                now=now,
                data={"status": "resolved", "text": names},
            )
            return Outcome("resolved", key, run_id, f"marked the alert of run {run_id} resolved")
        if row is not None and row[0] and not self._closed(store, str(row[0])):
            run_id = str(row[0])
            alert_groups.mark(store, key, "firing", now)
            if row[1] == "resolved":  # it fires again while the incident is still open
                record(
                    store,
                    run_id,
                    "alert",
                    actor=ALERT_ACTOR,
                    now=now,
                    data={"status": "firing", "text": "firing again"},
                )
            return Outcome("duplicate", key, run_id, f"already handled by run {run_id}")
        run_id = self.new_run_id()
        with immediate(store):
            current = alert_groups.group(store, key)
            if (
                current is not None and current[0] and (row is None or current[0] != row[0])
            ):  # another listener won the race
                return Outcome("duplicate", key, current[0], f"already handled by run {current[0]}")
            alert_groups.claim(store, key, run_id, now)
        try:
            started = self.start_run(payload, run_id)
        except QuarterdeckError as exc:
            alert_groups.release(store, key, run_id)  # let the next notification try again
            return Outcome("ignored", key, None, f"could not start a run: {exc.message}")
        severity = severity_name(label_severity(payload_labels(payload)))
        return Outcome("started", key, started, f"started run {started} ({severity})")

    @staticmethod
    def _closed(store: Store, run_id: str) -> bool:
        """Is this group's incident over (resolved by people), so a new firing is new?"""
        try:
            return load(store, run_id).resolved
        except QuarterdeckError:  # the run vanished from the store: start afresh
            return True


# -- the HTTP side ----------------------------------------------------------------------


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT`` / ``PORT`` for 127.0.0.1); :class:`InvalidInput` if bad."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidInput(
            f"--alertmanager {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9097",
            hint="port 0 picks a free one",
        )
    return host, int(port)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    411: "Length Required",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
}


async def _reply(
    writer: asyncio.StreamWriter,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    data = json.dumps(body).encode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()
    writer.write(head + data)
    with contextlib.suppress(ConnectionError):
        await writer.drain()


class WebhookServer:
    """A small HTTP/1.1 server on asyncio: ``POST`` any path with the webhook JSON,
    ``GET /-/healthy`` for readiness. One request per connection (``Connection: close``)."""

    def __init__(
        self,
        intake: Intake,
        host: str = "127.0.0.1",
        port: int = 0,
        guard: ListenGuard | None = None,
    ) -> None:
        self.intake = intake
        self.guard = guard or open_guard()
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> WebhookServer:
        try:
            self._server = await asyncio.start_server(self._serve, self.host, self.port)
        except OSError as exc:
            raise InvalidInput(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="choose another port (0 picks a free one)",
            ) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        try:
            status, body, headers = await asyncio.wait_for(self._request(reader), READ_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            status, body = 400, {"error": "incomplete or malformed HTTP request"}
        try:
            await _reply(writer, status, body, headers)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _request(
        self, reader: asyncio.StreamReader
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEADER_LIMIT:
            return 400, {"error": "headers too large"}, {}
        lines = head.decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        path = rest.partition(" ")[0]
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if method == "GET" and path in ("/-/healthy", "/healthz"):
            return 200, {"status": "ok"}, {}
        if method != "POST":  # no OPTIONS either: no CORS preflight ever succeeds
            return 405, {"error": "POST Alertmanager's webhook JSON here"}, {}
        refused = self.guard.check(headers)
        if refused is not None:
            return refused
        length = int(headers.get("content-length", "0") or 0)
        if length > MAX_BODY:
            return 413, {"error": f"body over {MAX_BODY} bytes"}, {}
        body = await reader.readexactly(length)
        try:
            payload = parse_payload(body)
        except InvalidInput as exc:
            return 400, {"error": exc.message, "hint": exc.hint}, {}
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(None, self.intake.handle, payload)
        except QuarterdeckError as exc:
            return 500, {"error": exc.message}, {}
        return 200, outcome.to_json(), {}
