"""Paths an action reads or writes stay inside the run's workspace.

A path parameter is often templated from an input (``file: "{{ inputs.changelog }}"``),
and the tool may run as root: ``../../../../etc/passwd`` must be refused, not appended
to. A path is resolved (``..`` and symlinks followed) and must land inside one of the
workspace roots the action names — the repository, the work dir, the run dir — unless a
parameter explicitly allows outside paths. The error names the resolved path.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from quarterdeck.core.errors import NonRetryableError


def confined(
    base: Path, value: str | Path, roots: Iterable[Path], what: str, *, allow_outside: bool = False
) -> Path:
    """``value`` (relative to ``base``) resolved; refused when outside every root."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise NonRetryableError(f"{what}: cannot resolve {path}: {exc}") from None
    if allow_outside:
        return resolved
    allowed = [Path(root).resolve() for root in roots]
    if any(resolved == root or resolved.is_relative_to(root) for root in allowed):
        return resolved
    raise NonRetryableError(
        f"{what}: {resolved} is outside the workspace ({', '.join(map(str, allowed))})"
    )
