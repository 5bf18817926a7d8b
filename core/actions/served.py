"""What an index serves, compared with what was built: the post-publish check's parts.

``python.install_check`` with ``package:`` asks the *target index alone* for the release
— pip with no configuration at all, so an extra index or find-links in the user's or the
machine's pip config cannot stand in for it — and compares the file it serves with the
files this release built, byte for byte (sha256). The file then installed is that one.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from quarterdeck.core.actions.base import ActionContext
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import STDERR_KEEP, first_error
from quarterdeck.core.errors import ActionError, NonRetryableError


def wheel_module(path: Path, default: str) -> str:
    """The import name a wheel installs (``qd-stripes`` may install ``stripes``): its
    top-level package or module, the one named like the project when there are several."""
    if not path.name.endswith(".whl"):
        return default
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return default
    found: set[str] = set()
    for member in names:
        top, _, rest = member.partition("/")
        if top.endswith((".dist-info", ".data")):
            continue
        if rest == "__init__.py" or (not rest and top.endswith(".py")):
            found.add(top.removesuffix(".py"))
    if default in found or not found:
        return default
    return sorted(found)[0]


def isolated_pip_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a pip that reads no configuration at all: no ``PIP_*`` variables, and
    ``PIP_CONFIG_FILE`` set to the null device, which makes pip skip *every* config file
    (``--isolated`` alone still reads the site-wide one, where an extra index can hide)."""
    out = {k: v for k, v in env.items() if not k.startswith("PIP_")}
    out.update(
        {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    )
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


async def download(
    ctx: ActionContext, python: str, index_url: str | None, target: str, dest: Path
) -> Path:
    """The file pip picks for ``target`` from the target index only (no config, no cache)."""
    argv = [python, "-m", "pip", "download", "--isolated", "--no-deps", "--no-cache-dir"]
    argv += ["--dest", str(dest)]
    argv += ["--index-url", index_url] if index_url else []
    errors: list[str] = []
    code, lines = await run_process(
        [*argv, target],
        ctx,
        cwd=ctx.workdir,
        env=isolated_pip_env(child_env(ctx, {})),
        tail=200,
        stderr_tail=errors,
        stderr_keep=STDERR_KEEP,
    )
    files = sorted(dest.iterdir()) if dest.is_dir() else []
    if code != 0 or len(files) != 1:
        where = index_url or "the default index"
        raise ActionError(
            f"pip could not download {target} from {where}: "
            f"{first_error([*errors, *lines], f'exit code {code}')}",
            outputs={"installed": False},
        )
    return files[0]


def compare_with_built(served: Path, expected: list[Path]) -> str:
    """The served file's sha256, after checking it is one of the built files, byte for
    byte. Raises NonRetryableError naming both hashes (or the unexpected file)."""
    digest = sha256_of(served)
    if not expected:
        return digest
    built = next((p for p in expected if p.name == served.name), None)
    if built is None:
        names = ", ".join(p.name for p in expected)
        raise NonRetryableError(
            f"the index serves {served.name} (sha256 {digest}), which is not one of the "
            f"files this release built ({names})",
            outputs={"file": served.name, "sha256": digest, "matches": False},
        )
    mine = sha256_of(built)
    if mine != digest:
        raise NonRetryableError(
            f"the index serves a different {served.name}: sha256 {digest}, but the built "
            f"file has sha256 {mine}",
            outputs={"file": served.name, "sha256": digest, "built_sha256": mine, "matches": False},
        )
    return digest
