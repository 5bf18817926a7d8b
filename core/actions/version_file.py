"""Reading and writing the version a project's file declares.

``pyproject.toml`` is edited as TOML (tomlkit keeps comments, ordering, quoting, dotted
keys and inline tables exactly as written); any other file is found by a regular
expression (a ``pattern:`` with a ``version`` group, or a ``__version__ = "..."`` line).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quarterdeck.core.errors import NonRetryableError
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import tomlkit
    import tomlkit.exceptions as tomlkit_errors
    import tomlkit.items as tomlkit_items
else:  # loaded when a version is read or written, not when `validate` reads parameters
    tomlkit = lazy_module("tomlkit")
    tomlkit_errors = lazy_module("tomlkit.exceptions")
    tomlkit_items = lazy_module("tomlkit.items")

_GENERIC_VERSION = (
    r"[\"']?(?:__version__|version|VERSION)[\"']?\s*[:=]\s*[\"'](?P<version>[^\"'\n]+)[\"']"
)
_TABLES = (("project",), ("tool", "poetry"))


def _is_pyproject(file_name: str, pattern: str | None) -> bool:
    return pattern is None and Path(file_name).name == "pyproject.toml"


def _toml_table(doc: Any, file_name: str) -> Any:
    for path in _TABLES:
        table = doc
        for key in path:
            table = table.get(key) if hasattr(table, "get") else None
            if table is None:
                break
        if table is not None and "version" in table:
            return table
    project = doc.get("project")
    if project is not None and "version" in (project.get("dynamic") or []):
        raise NonRetryableError(
            f"{file_name} declares the version as dynamic; name the file that holds it "
            "with `file:` (and `pattern:` if needed)"
        )
    raise NonRetryableError(f'no `version = "..."` in the [project] table of {file_name}')


def _parse_toml(text: str, file_name: str) -> Any:
    try:
        return tomlkit.parse(text)
    except tomlkit_errors.TOMLKitError as exc:
        raise NonRetryableError(f"{file_name}: not valid TOML: {exc}") from None


def read_version(text: str, file_name: str, pattern: str | None) -> str:
    """The version string a file declares. Raises NonRetryableError."""
    if _is_pyproject(file_name, pattern):
        return str(_toml_table(_parse_toml(text, file_name), file_name)["version"])
    start, end = find_version(text, file_name, pattern)
    return text[start:end]


def write_version(text: str, file_name: str, pattern: str | None, new: str) -> str:
    """``text`` with its version replaced by ``new``; everything else kept byte for byte."""
    if _is_pyproject(file_name, pattern):
        doc = _parse_toml(text, file_name)
        table = _toml_table(doc, file_name)
        old = table["version"]
        string = tomlkit_items.String
        literal = isinstance(old, string) and old.as_string().startswith("'")
        kind = tomlkit_items.StringType.SLL if literal else tomlkit_items.StringType.SLB
        table["version"] = string.from_raw(new, kind)  # same quotes as before
        return tomlkit.dumps(doc)
    start, end = find_version(text, file_name, pattern)
    return text[:start] + new + text[end:]


def find_version(text: str, file_name: str, pattern: str | None) -> tuple[int, int]:
    """The span of the version string in a non-TOML file's text."""
    if pattern is not None:
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise NonRetryableError(f"pattern {pattern!r} matches nothing in {file_name}")
        group: int | str = "version" if "version" in match.re.groupindex else 1
        return match.span(group)
    match = re.search(_GENERIC_VERSION, text, re.MULTILINE)
    if not match:
        raise NonRetryableError(
            f"no version found in {file_name}; give a `pattern:` with a (?P<version>...) group"
        )
    return match.span("version")


def check_pattern(value: str | None) -> str | None:
    """Pydantic validator: a pattern must compile and capture the version."""
    if value is None:
        return value
    try:
        compiled = re.compile(value, re.MULTILINE)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    if compiled.groups < 1:
        raise ValueError("the pattern needs a group around the version, e.g. (?P<version>...)")
    return value
