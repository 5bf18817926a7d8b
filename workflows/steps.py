"""Small file-writing steps the bundled workflows call through the ``python`` action.

Each function is idempotent (a step that runs again after a crash writes the same file,
or notices its earlier change), takes plain arguments a workflow can template, and
returns outputs a later step or gate can read. They are coroutines so they run on the
runner's loop and can stream lines with ``ctx.log`` (the files they write are small).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any


def _dir(path: str, ctx: Any = None) -> Path:
    target = Path(path).expanduser()
    if not target.is_absolute() and ctx is not None:
        target = Path(ctx.workdir) / target
    return target


def _out_dir(directory: str, ctx: Any) -> Path:
    """``directory``, or the run's own directory when empty."""
    target = _dir(directory, ctx) if directory else Path(ctx.run_dir) / "reports"
    target.mkdir(parents=True, exist_ok=True)
    return target


_MARKED = re.compile(r"<!--\s*version\s*-->.*?<!--\s*/version\s*-->", re.DOTALL | re.IGNORECASE)
_BADGE_URL = re.compile(r"https?://[^\s)\]\"']*(?:shields\.io|badge)[^\s)\]\"']*", re.IGNORECASE)


def _moving_spans(text: str, old: str) -> list[tuple[int, int]]:
    """Where ``old`` is a version meant to move with each release.

    That is an install line's pin (``pkg==1.2.0``), a badge's URL, a marked region
    (``<!-- version -->…<!-- /version -->``) and a line that only states the version
    (``Current version: 1.2.0``). Prose that mentions a version ("2.4.0 and later are
    compatible") is history, and stays as written.
    """
    whole = rf"(?<![\d.]){re.escape(old)}(?![\w]|\.\d)"
    spans: list[tuple[int, int]] = []
    for match in re.finditer(rf"(?<=[\w\].-]==){re.escape(old)}(?![\w]|\.\d)", text):
        spans.append(match.span())
    for region in (*_MARKED.finditer(text), *_BADGE_URL.finditer(text)):
        for match in re.finditer(whole, region.group()):
            spans.append((region.start() + match.start(), region.start() + match.end()))
    label = rf"(?im)^[ \t>*_-]*(?:current |latest )?version:?[ \t*_`]*({re.escape(old)})[ \t*_`]*$"
    for match in re.finditer(label, text):
        spans.append(match.span(1))
    return sorted(set(spans))


async def replace_version(
    repo: str, old: str, new: str, files: list[str], ctx: Any = None
) -> dict[str, Any]:
    """Move the docs' version mentions from ``old`` to ``new`` (see :func:`_moving_spans`).

    ``1.2.0`` is not touched inside ``11.2.0`` or ``1.2.0.1``; a file that already says
    ``new`` and no longer ``old`` counts as done.
    """
    root = _dir(repo, ctx)
    changed: list[str] = []
    missing: list[str] = []
    count = 0
    for name in files:
        path = root / name
        if not path.is_file():
            missing.append(name)
            continue
        text = path.read_text(encoding="utf-8")
        spans = _moving_spans(text, old)
        if not spans:
            continue
        updated = text
        for start, end in reversed(spans):
            updated = updated[:start] + new + updated[end:]
        path.write_text(updated, encoding="utf-8")
        changed.append(name)
        count += len(spans)
        if ctx is not None:
            ctx.log(f"{name}: {len(spans)} reference(s) {old} → {new}")
    return {"files": changed, "replaced": count, "missing": missing}


async def write_markdown(
    directory: str, filename: str, title: str, sections: dict[str, Any], ctx: Any = None
) -> dict[str, Any]:
    """Write ``# title`` and one ``## heading`` per section (lists become bullets)."""
    out = _out_dir(directory, ctx) if ctx is not None else _dir(directory)
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", ""]
    for heading, body in sections.items():
        lines += [f"## {heading}", ""]
        if isinstance(body, list | tuple):
            lines += [f"- {item}" for item in body] or ["- (none)"]
        elif isinstance(body, dict):
            lines += [f"- **{key}**: {value}" for key, value in body.items()]
        else:
            lines.append(str(body).strip() or "(none)")
        lines.append("")
    path = out / filename
    text = "\n".join(lines).rstrip() + "\n"
    path.write_text(text, encoding="utf-8")
    if ctx is not None:
        ctx.log(f"wrote {path}")
    return {"path": str(path), "markdown": text}


async def release_notes(
    directory: str,
    name: str,
    version: str,
    tag: str,
    changelog: str,
    tests: str,
    index_url: str = "",
    github_url: str = "",
    highlights: str = "",
    ctx: Any = None,
) -> dict[str, Any]:
    """Release notes in Markdown: what changed (the changelog section) and the evidence;
    ``highlights`` (a model's draft, when the workflow asked for one) leads them."""
    body = re.sub(r"^##\s*\[?[^\n]*\n", "", changelog.strip(), count=1).strip()
    sections: dict[str, Any] = {
        **({"Highlights": highlights.strip()} if highlights.strip() else {}),
        "What changed": body or "(no user-facing changes)",
        "Evidence": {"tests": tests, "tag": tag},
        "Install": f"```\npip install {name}=={version}"
        + (f" --index-url {index_url}" if index_url else "")
        + "\n```",
    }
    if github_url:
        sections["Links"] = [f"GitHub release: {github_url}"]
    return await write_markdown(
        directory, f"release-notes-{tag}.md", f"{name} {version}", sections, ctx
    )


async def logseq_page(graph: str, title: str, markdown: str, ctx: Any = None) -> dict[str, Any]:
    """Write a page into a Logseq graph (``graph`` or the config's ``logseq_graph``).

    Logseq pages are outlines: every paragraph becomes a ``- `` block; headings stay
    headings inside their block. Nothing is written when no graph is configured.
    """
    configured = graph or (getattr(ctx.settings, "logseq_graph", None) if ctx else None) or ""
    if not configured:
        return {"written": False, "path": "", "reason": "no Logseq graph configured"}
    pages = _dir(configured, ctx) / "pages"
    pages.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[\\/:*?\"<>|]+", "_", title).strip() or "untitled"
    blocks: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if not line.strip():
            continue
        if in_code or line.startswith("```"):
            blocks.append(f"  {line}")
        elif line.startswith("- "):
            blocks.append(f"\t{line}")
        else:
            blocks.append(f"- {line}")
    path = pages / f"{safe}.md"
    path.write_text("\n".join(blocks) + "\n", encoding="utf-8")
    if ctx is not None:
        ctx.log(f"wrote Logseq page {path}")
    return {"written": True, "path": str(path)}


async def describe_alert(alert: Any, ctx: Any = None) -> dict[str, Any]:
    """The facts of an alert: an Alertmanager webhook payload, one alert, or ``{}``.

    Outputs ``name``, ``summary``, ``service``, ``status``, ``labels`` and ``count`` (how
    many alerts the payload carries) so prompts and reports need no template gymnastics.
    """
    data = alert if isinstance(alert, dict) else {}
    raw_alerts = data.get("alerts")
    alerts: list[Any] = raw_alerts if isinstance(raw_alerts, list) else []
    first = alerts[0] if alerts and isinstance(alerts[0], dict) else {}
    labels = {
        **(first.get("labels") or {}),
        **(data.get("labels") or {}),
        **(data.get("commonLabels") or {}),
    }
    notes = {
        **(first.get("annotations") or {}),
        **(data.get("annotations") or {}),
        **(data.get("commonAnnotations") or {}),
    }
    name = str(labels.get("alertname") or "alert")
    summary = str(notes.get("summary") or notes.get("description") or name)
    service = str(labels.get("service") or labels.get("job") or labels.get("instance") or "")
    outputs = {
        "name": name,
        "summary": summary,
        "service": service,
        "status": str(data.get("status") or first.get("status") or "firing"),
        "labels": labels,
        "count": max(1, len(alerts)) if data else 0,
    }
    if ctx is not None:
        ctx.log(f"alert {name}: {summary}" + (f" (service {service})" if service else ""))
    return outputs
