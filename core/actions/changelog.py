"""Changelog sections from Conventional Commits, as pure functions.

:mod:`quarterdeck.core.actions.conventional` parses commits and decides versions; this module
turns the parsed commits into text: which section an entry goes to, how it links to the
forge, and where a new section goes in an existing ``CHANGELOG.md`` (never twice). The
``git.changelog`` action (:mod:`quarterdeck.core.actions.git_release`) reads the repository
and calls these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from quarterdeck.core.actions.conventional import ParsedCommit, Version, VersionError

SECTION_ORDER: tuple[str, ...] = (
    "Breaking changes",
    "Added",
    "Changed",
    "Deprecated",
    "Removed",
    "Fixed",
    "Security",
    "Other changes",
)
TYPE_SECTIONS: dict[str, str] = {
    "feat": "Added",
    "fix": "Fixed",
    "perf": "Changed",
    "refactor": "Changed",
    "revert": "Removed",
    "deprecate": "Deprecated",
    "security": "Security",
}
DEFAULT_HIDDEN_TYPES: tuple[str, ...] = ("chore", "ci", "build", "test", "style", "docs")

CHANGELOG_HEADER = (
    "# Changelog\n\n"
    "All notable changes to this project are documented in this file.\n\n"
    "The format is based on [Keep a Changelog](https://keepachangelog.com/en/1.1.0/),\n"
    "and this project adheres to [Semantic Versioning](https://semver.org/spec/v2.0.0.html).\n"
)


@dataclass(frozen=True)
class Forge:
    """A hosted forge's web address for a repository, so entries can link commits."""

    kind: str
    base: str  # https://host/owner/repo

    def commit_url(self, sha: str) -> str:
        if self.kind == "gitlab":
            return f"{self.base}/-/commit/{sha}"
        if self.kind == "bitbucket":
            return f"{self.base}/commits/{sha}"
        return f"{self.base}/commit/{sha}"

    def compare_url(self, old: str, new: str) -> str | None:
        if self.kind == "gitlab":
            return f"{self.base}/-/compare/{old}...{new}"
        if self.kind in ("github", "gitea"):
            return f"{self.base}/compare/{old}...{new}"
        return None


KNOWN_FORGES = {
    "github.com": "github",
    "gitlab.com": "gitlab",
    "bitbucket.org": "bitbucket",
    "codeberg.org": "gitea",
}
_REMOTE = re.compile(
    r"^(?:(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host1>[^/:]+)(?::\d+)?/"
    r"|(?:[^@/]+@)?(?P<host2>[^/:]+):)(?P<path>[^\s]+?)(?:\.git)?/?$"
)


def forge_for(remote_url: str) -> Forge | None:
    """The forge a remote URL points at, when it is a known one (else None: no links)."""
    match = _REMOTE.match(remote_url.strip())
    if not match:
        return None
    host = (match["host1"] or match["host2"] or "").lower()
    kind = KNOWN_FORGES.get(host)
    if kind is None:
        return None
    return Forge(kind, f"https://{host}/{match['path'].strip('/')}")


@dataclass
class ChangelogEntries:
    """Commits grouped into Keep a Changelog sections, in display order."""

    sections: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.sections.values())


def _entry(commit: ParsedCommit, text: str, forge: Forge | None) -> str:
    scope = f"**{commit.scope}:** " if commit.scope else ""
    short = commit.sha[:7]
    link = f" ([{short}]({forge.commit_url(commit.sha)}))" if forge else f" ({short})"
    first, *more = text.strip().splitlines() or [""]
    extra = "".join(f"\n  {line}" if line.strip() else "\n" for line in more)
    return f"- {scope}{first}{link}{extra}"


def group_commits(
    commits: Iterable[ParsedCommit],
    forge: Forge | None = None,
    hidden_types: Iterable[str] = DEFAULT_HIDDEN_TYPES,
) -> ChangelogEntries:
    """Sort commits (newest first) into sections; breaking changes go only to the first."""
    hidden = {t.lower() for t in hidden_types}
    sections: dict[str, list[str]] = {name: [] for name in SECTION_ORDER}
    for commit in commits:
        if commit.is_merge:
            continue
        if commit.breaking:
            notes = commit.breaking_notes or (commit.description,)
            text = commit.description
            if commit.breaking_notes:
                text = f"{commit.description}: " + " ".join(notes)
            sections["Breaking changes"].append(_entry(commit, text, forge))
            continue
        if not commit.conventional:
            text = commit.subject
            if commit.reverts is not None:
                sections["Removed"].append(_entry(commit, text, forge))
            else:
                sections["Other changes"].append(_entry(commit, text, forge))
            continue
        if commit.type in hidden:
            continue
        section = TYPE_SECTIONS.get(commit.type, "Other changes")
        if commit.scope.lower() == "security" and commit.type == "fix":
            section = "Security"
        description = commit.description
        if commit.type == "revert":
            description = f"Revert {description}"
        sections[section].append(_entry(commit, description, forge))
    return ChangelogEntries({k: v for k, v in sections.items() if v})


@dataclass(frozen=True)
class HeadingStyle:
    """How a changelog spells a release heading, so a new section looks like the others.

    ``keepachangelog``: ``## [1.2.0] - 2026-01-28``; ``parens``: ``## v1.2.0 (2026-01-28)``
    (commitizen, python-semantic-release); ``bare``: ``## 1.2.0`` (optionally `` - date``).
    """

    kind: str = "keepachangelog"
    hashes: str = "##"
    v_prefix: str = ""
    dated: bool = True

    def heading(self, version: str, date: str) -> str:
        shown = f"{self.v_prefix}{version}"
        if self.kind == "keepachangelog":
            return f"{self.hashes} [{shown}] - {date}"
        if self.kind == "parens":
            return f"{self.hashes} {shown} ({date})"
        return f"{self.hashes} {shown}" + (f" - {date}" if self.dated else "")


KEEP_A_CHANGELOG = HeadingStyle()
_HEADING = re.compile(
    r"^(?P<hashes>#{1,3}) +(?:\[(?P<bracketed>[^\]]+)\]|(?P<plain>[vV]?\d+\.\d+[^\s(]*))"
    r"(?P<rest>[^\n]*)$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _Heading:
    start: int
    end: int
    version: str  # as written, without a leading v
    style: HeadingStyle


def _headings(text: str) -> list[_Heading]:
    """Release headings in document order (an ``Unreleased`` heading is not one)."""
    found: list[_Heading] = []
    for match in _HEADING.finditer(text):
        raw = (match["bracketed"] or match["plain"]).strip()
        if raw.lower() == "unreleased":
            continue
        v_prefix = raw[0] if raw[:1] in ("v", "V") else ""
        version = raw[len(v_prefix) :]
        if not re.match(r"^\d+\.\d+", version):
            continue
        rest = match["rest"].strip()
        if match["bracketed"]:
            style = HeadingStyle("keepachangelog", match["hashes"], v_prefix)
        elif rest.startswith("("):
            style = HeadingStyle("parens", match["hashes"], v_prefix)
        else:
            style = HeadingStyle("bare", match["hashes"], v_prefix, dated=bool(rest))
        found.append(_Heading(match.start(), match.end(), version, style))
    return found


def detect_style(text: str | None) -> HeadingStyle:
    """The heading style of the newest release section (Keep a Changelog when none)."""
    found = _headings(text or "")
    return found[0].style if found else KEEP_A_CHANGELOG


def _same_version(a: str, b: str) -> bool:
    try:
        return Version.parse(a) == Version.parse(b)
    except VersionError:
        return a.lstrip("vV") == b.lstrip("vV")


def _older(a: str, b: str) -> bool:
    """Whether version ``a`` sorts below ``b`` (unparseable headings count as older)."""
    try:
        return Version.parse(a).sort_key() < Version.parse(b).sort_key()
    except VersionError:
        return True


def render_section(
    version: str,
    date: str,
    entries: ChangelogEntries,
    style: HeadingStyle = KEEP_A_CHANGELOG,
) -> str:
    """The release heading in ``style`` followed by the non-empty sections."""
    parts = [style.heading(version, date)]
    if entries.empty:
        parts.append("\nNo notable changes.")
    for name, items in entries.sections.items():
        parts.append(f"\n{style.hashes}# {name}\n")
        parts.extend(items)
    return "\n".join(parts) + "\n"


def find_section(text: str, version: str) -> str | None:
    """The existing section for ``version`` in a changelog (any heading style), or None."""
    found = _headings(text)
    for i, heading in enumerate(found):
        if _same_version(heading.version, version):
            end = found[i + 1].start if i + 1 < len(found) else len(text)
            body = text[heading.start : end]
            body = re.split(r"^\[[^\]]+\]: ", body, maxsplit=1, flags=re.MULTILINE)[0]
            return body.rstrip() + "\n"
    return None


def insert_section(
    text: str | None, version: str, section: str, compare_url: str | None = None
) -> tuple[str, bool]:
    """Add ``section`` to a changelog (new if ``text`` is None) above the first older
    release, so the file stays newest first. Unchanged if the version is already there."""
    if text is not None and find_section(text, version) is not None:
        return text, False
    body = text if text is not None and text.strip() else CHANGELOG_HEADER
    headings = _headings(body)
    older = next((h for h in headings if _older(h.version, version)), None)
    if older is not None:
        at = older.start
        new = body[:at] + section + "\n" + body[at:]
    elif headings:  # every existing release is newer: this one goes last
        last = headings[-1]
        links = re.search(r"^\[[^\]]+\]: ", body[last.end :], re.MULTILINE)
        at = last.end + links.start() if links else len(body)
        new = body[:at].rstrip("\n") + "\n\n" + section + ("\n" + body[at:] if links else "")
    else:
        links = re.search(r"^\[[^\]]+\]: ", body, re.MULTILINE)
        at = links.start() if links else len(body)
        head = body[:at].rstrip("\n") + "\n\n"
        new = head + section + ("\n" + body[at:] if links else "")
    if compare_url:
        line = f"[{version}]: {compare_url}\n"
        links = re.search(r"^\[[^\]]+\]: ", new, re.MULTILINE)
        if links and not new[links.start() :].lower().startswith("[unreleased]"):
            new = new[: links.start()] + line + new[links.start() :]
        elif links:
            end = new.find("\n", links.start()) + 1 or len(new)
            new = new[:end] + line + new[end:]
        else:
            new = new.rstrip("\n") + "\n\n" + line
    return new, True


def render_changelog_section(
    version: str,
    date: str,
    commits: Sequence[ParsedCommit],
    forge: Forge | None = None,
    hidden_types: Iterable[str] = DEFAULT_HIDDEN_TYPES,
) -> str:
    """Convenience: group and render in one call."""
    return render_section(version, date, group_commits(commits, forge, hidden_types))
