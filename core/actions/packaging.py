"""Python packaging actions: build, install-check in a fresh venv, publish to an index.

``python.build`` runs ``python -m build`` in a child process (output streamed, killed on
cancel). ``python.install_check`` proves a wheel (or an index release) installs and
imports in a virtual environment nobody else touched. ``python.publish`` speaks the
upload protocol every index implements — the legacy multipart ``file_upload`` API that
twine uses — and first asks the index's simple API which files it already has, so a
resumed or repeated release never uploads a version twice: it reports
``already_published: true`` instead.

Credentials never come from the workflow: ``python.publish`` reads them from the
environment (``QUARTERDECK_PYPI_TOKEN``, or ``QUARTERDECK_PYPI_USERNAME`` +
``QUARTERDECK_PYPI_PASSWORD``, or twine's ``TWINE_USERNAME``/``TWINE_PASSWORD``), or from
a ``pypi`` section in the config when there is one.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import shlex
import shutil
import sys
import tarfile
import uuid
import zipfile
from dataclasses import dataclass, replace
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.errors import ActionError, NonRetryableError

_DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")


def _resolve(ctx: ActionContext, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else ctx.workdir / path


def normalize_name(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class DistInfo:
    """What an index needs to know about one distribution file."""

    path: Path
    filetype: Literal["bdist_wheel", "sdist"]
    pyversion: str
    metadata: Message

    @property
    def name(self) -> str:
        return str(self.metadata["Name"])

    @property
    def version(self) -> str:
        return str(self.metadata["Version"])


def read_dist(path: Path) -> DistInfo:
    """Read the core metadata of a wheel or sdist. Raises NonRetryableError."""
    try:
        if path.name.endswith(".whl"):
            with zipfile.ZipFile(path) as zf:
                names = [
                    n
                    for n in zf.namelist()
                    if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
                ]
                if not names:
                    raise NonRetryableError(f"{path.name} has no .dist-info/METADATA")
                text = zf.read(names[0]).decode("utf-8")
            parts = path.name[:-4].split("-")
            pyversion = parts[-3] if len(parts) >= 5 else "py3"
            return DistInfo(path, "bdist_wheel", pyversion, Parser().parsestr(text))
        if path.name.endswith(".tar.gz"):
            with tarfile.open(path, "r:gz") as tf:
                member = next(
                    (
                        m
                        for m in tf.getmembers()
                        if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
                    ),
                    None,
                )
                if member is None:
                    raise NonRetryableError(f"{path.name} has no PKG-INFO at its top level")
                handle = tf.extractfile(member)
                text = handle.read().decode("utf-8") if handle else ""
            return DistInfo(path, "sdist", "source", Parser().parsestr(text))
    except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise NonRetryableError(f"cannot read {path}: {exc}") from None
    raise NonRetryableError(f"{path.name} is neither a wheel (.whl) nor an sdist (.tar.gz)")


def _missing_module(lines: list[str], module: str) -> bool:
    return any(f"No module named {module}" in line for line in lines)


def capture_lines(ctx: ActionContext) -> tuple[ActionContext, list[str]]:
    """A copy of ``ctx`` that still streams every line but also keeps stderr's.

    :func:`run_process` returns only stdout's tail; the reason a tool could not start
    ("No module named build") is on stderr.
    """
    kept: list[str] = []

    def emit(stream: str, line: str) -> None:
        ctx.emit_line(stream, line)
        if stream == "stderr":
            kept.append(line)
            if len(kept) > 500:
                del kept[0]

    return replace(ctx, emit_line=emit), kept


# --------------------------------------------------------------------------- build


class BuildParams(ActionParams):
    project: str = Field(default=".", description="Directory holding pyproject.toml")
    outdir: str = Field(default="dist", description="Where the files go (relative to project)")
    sdist: bool = True
    wheel: bool = True
    isolation: bool = Field(
        default=True, description="Build in an isolated env (installs the build backend)"
    )
    python: str | None = Field(default=None, description="Interpreter; default Quarterdeck's")
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> BuildParams:
        if not (self.sdist or self.wheel):
            raise ValueError("nothing to build: set sdist or wheel (or both) to true")
        return self


@action("python.build", BuildParams)
async def build(params: BuildParams, ctx: ActionContext) -> dict[str, Any]:
    """Build an sdist and a wheel with ``python -m build``."""
    project = _resolve(ctx, params.project)
    if not (project / "pyproject.toml").is_file() and not (project / "setup.py").is_file():
        raise NonRetryableError(f"no pyproject.toml (or setup.py) in {project}")
    outdir = Path(params.outdir)
    outdir = outdir if outdir.is_absolute() else project / outdir
    staging = ctx.run_dir / "build" / f"{ctx.step_id}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    python = params.python or sys.executable
    argv = [python, "-m", "build", "--outdir", str(staging)]
    if params.sdist and not params.wheel:
        argv.append("--sdist")
    elif params.wheel and not params.sdist:
        argv.append("--wheel")
    if not params.isolation:
        argv.append("--no-isolation")
    argv.append(str(project))
    try:
        cap, errors = capture_lines(ctx)
        code, lines = await run_process(
            argv, cap, cwd=project, env=child_env(ctx, params.env), tail=200
        )
        lines = [*lines, *errors]
        if code != 0:
            if _missing_module(lines, "build"):
                raise NonRetryableError(
                    f"the `build` package is not installed for {python}; "
                    f"run `{python} -m pip install build`"
                )
            last = next((ln for ln in reversed(lines) if ln.strip()), f"exit code {code}")
            raise ActionError(
                f"python -m build failed: {last}", retryable=False, outputs={"exit_code": code}
            )
        outdir.mkdir(parents=True, exist_ok=True)
        files: list[Path] = []
        for built in sorted(staging.iterdir()):
            target = outdir / built.name
            shutil.move(str(built), str(target))
            files.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wheel = next((f for f in files if f.name.endswith(".whl")), None)
    sdist = next((f for f in files if f.name.endswith(".tar.gz")), None)
    first = wheel or sdist
    if first is None:
        raise ActionError(
            "python -m build succeeded but produced no distribution files", retryable=False
        )
    info = read_dist(first)
    for f in files:
        ctx.log(f"built {f.name} ({f.stat().st_size} bytes)")
    return {
        "name": info.name,
        "version": info.version,
        "wheel": str(wheel) if wheel else "",
        "sdist": str(sdist) if sdist else "",
        "files": [str(f) for f in files],
        "outdir": str(outdir),
    }


# --------------------------------------------------------------------------- install_check


class InstallCheckParams(ActionParams):
    wheel: str | None = Field(default=None, description="Path of a built wheel to install")
    package: str | None = Field(default=None, description="Project name to install from an index")
    version: str | None = Field(default=None, description="Version to install or to expect")
    index_url: str | None = Field(default=None, description="Simple index URL (default pip's)")
    module: str | None = Field(default=None, description="Import name; default from the name")
    smoke: list[str] | str | None = Field(
        default=None, description="A command run inside the venv after the import"
    )
    no_deps: bool = False
    python: str | None = None
    keep: bool = Field(default=False, description="Keep the venv (its path is an output)")

    @model_validator(mode="after")
    def _one_source(self) -> InstallCheckParams:
        if (self.wheel is None) == (self.package is None):
            raise ValueError("give exactly one of `wheel` (a file) or `package` (from an index)")
        return self


_PROBE = (
    "import importlib, importlib.metadata as md, sys\n"
    "module = importlib.import_module(sys.argv[1])\n"
    "print('module-file=' + str(getattr(module, '__file__', '')))\n"
    "print('dist-version=' + md.version(sys.argv[2]))\n"
)


@action("python.install_check", InstallCheckParams)
async def install_check(params: InstallCheckParams, ctx: ActionContext) -> dict[str, Any]:
    """Install a wheel (or an index release) into a fresh venv, import it, run a smoke test."""
    python = params.python or sys.executable
    venv = ctx.run_dir / "venvs" / f"{ctx.step_id}-{ctx.attempt}-{uuid.uuid4().hex[:6]}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    if params.wheel is not None:
        wheel = _resolve(ctx, params.wheel)
        if not wheel.is_file():
            raise NonRetryableError(f"wheel not found: {wheel}")
        info = read_dist(wheel)
        name, target = info.name, str(wheel)
        if params.version and params.version != info.version:
            raise NonRetryableError(
                f"{wheel.name} is version {info.version}, not the expected {params.version}"
            )
    else:
        name = str(params.package)
        target = f"{name}=={params.version}" if params.version else name
    module = params.module or normalize_name(name).replace("-", "_")
    env = child_env(ctx, {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    try:
        code, lines = await run_process(
            [python, "-m", "venv", "--without-pip", str(venv)], ctx, cwd=ctx.workdir, env=env
        )
        if code != 0:
            raise ActionError(f"cannot create a venv with {python}: {lines[-1] if lines else code}")
        vpython = str(venv / "bin" / "python")
        pip_args = ["install", "--no-cache-dir"]
        if params.no_deps:
            pip_args.append("--no-deps")
        if params.index_url:
            pip_args += ["--index-url", params.index_url]
        pip_args.append(target)
        cap, errors = capture_lines(ctx)
        code, lines = await run_process(
            [python, "-m", "pip", "--python", vpython, *pip_args],
            cap,
            cwd=ctx.workdir,
            env=env,
            tail=200,
        )
        lines = [*lines, *errors]
        old_pip = any("no such option: --python" in line for line in lines)
        if code != 0 and (old_pip or _missing_module(lines, "pip")):  # pip < 22.3, or none
            code, lines = await run_process(
                [vpython, "-m", "ensurepip"], ctx, cwd=ctx.workdir, env=env
            )
            if code == 0:
                cap, errors = capture_lines(ctx)
                code, lines = await run_process(
                    [vpython, "-m", "pip", *pip_args], cap, cwd=ctx.workdir, env=env, tail=200
                )
                lines = [*lines, *errors]
        if code != 0:
            last = next((ln for ln in reversed(lines) if ln.strip()), f"exit code {code}")
            raise ActionError(
                f"pip could not install {target}: {last}", outputs={"installed": False}
            )
        cap, errors = capture_lines(ctx)
        code, lines = await run_process(
            [vpython, "-I", "-c", _PROBE, module, name], cap, cwd=venv, env=env, tail=200
        )
        if code != 0:
            last = next(
                (ln for ln in reversed([*lines, *errors]) if ln.strip()), f"exit code {code}"
            )
            raise ActionError(
                f"installed {name} but `import {module}` failed: {last}",
                retryable=False,
                outputs={"installed": True, "imported": False},
            )
        probe = dict(line.split("=", 1) for line in lines if "=" in line)
        version = probe.get("dist-version", "")
        outputs: dict[str, Any] = {
            "installed": True,
            "imported": True,
            "name": name,
            "version": version,
            "module": module,
            "venv": str(venv) if params.keep else "",
        }
        if params.version and version != params.version:
            raise ActionError(
                f"installed {name} {version}, expected {params.version}",
                retryable=False,
                outputs=outputs,
            )
        if params.smoke:
            argv = shlex.split(params.smoke) if isinstance(params.smoke, str) else params.smoke
            smoke_env = dict(env)
            smoke_env["VIRTUAL_ENV"] = str(venv)
            smoke_env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
            if argv and argv[0] in ("python", "python3"):
                argv = [vpython, *argv[1:]]
            code, lines = await run_process(argv, ctx, cwd=ctx.workdir, env=smoke_env, tail=50)
            outputs["smoke_exit_code"] = code
            outputs["smoke_output"] = "\n".join(lines)
            if code != 0:
                raise ActionError(
                    f"smoke command {argv[0]} exited with code {code}",
                    retryable=False,
                    outputs=outputs,
                )
        ctx.log(f"{name} {version} installs and imports as {module}")
        return outputs
    finally:
        if not params.keep:
            shutil.rmtree(venv, ignore_errors=True)


# --------------------------------------------------------------------------- publish


class PublishParams(ActionParams):
    files: list[str] = Field(default_factory=list, description="Default: every file in dist")
    dist: str = "dist"
    repository_url: str = Field(
        default="https://upload.pypi.org/legacy/",
        pattern=r"^https?://",
        description="Upload endpoint (legacy file_upload API)",
    )
    index_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Simple API to check for existing files; default derived from the upload URL",
    )
    username_env: str | None = Field(default=None, description="Name of the env var, not a value")
    password_env: str | None = Field(default=None, description="Name of the env var, not a value")
    timeout: float = Field(default=120.0, gt=0, le=3600)


def simple_index_for(repository_url: str) -> str:
    """The simple API next to an upload URL (PyPI and TestPyPI have their own hosts)."""
    known = {
        "https://upload.pypi.org/legacy/": "https://pypi.org/simple/",
        "https://test.pypi.org/legacy/": "https://test.pypi.org/simple/",
    }
    if repository_url in known:
        return known[repository_url]
    base = repository_url.rstrip("/")
    base = base.removesuffix("/legacy")
    return f"{base}/simple/"


def credentials(ctx: ActionContext, params: PublishParams) -> tuple[str, str] | None:
    """Username and password from env or config; never from the workflow."""
    env = ctx.env
    if params.username_env or params.password_env:
        user = env.get(params.username_env or "", "__token__" if params.password_env else "")
        password = env.get(params.password_env or "")
        if not password:
            raise NonRetryableError(
                f"environment variable {params.password_env!r} is not set (it holds the index "
                "password or token)"
            )
        return user or "__token__", password
    if env.get("QUARTERDECK_PYPI_TOKEN"):
        return "__token__", env["QUARTERDECK_PYPI_TOKEN"]
    for user_var, pass_var in (
        ("QUARTERDECK_PYPI_USERNAME", "QUARTERDECK_PYPI_PASSWORD"),
        ("TWINE_USERNAME", "TWINE_PASSWORD"),
    ):
        if env.get(pass_var):
            return env.get(user_var) or "__token__", env[pass_var]
    section = getattr(ctx.settings, "pypi", None)
    if isinstance(section, dict) and section.get("password"):
        return str(section.get("username") or "__token__"), str(section["password"])
    return None


_ANCHOR = re.compile(r"<a\s[^>]*href=\"(?P<href>[^\"]*)\"[^>]*>(?P<text>[^<]*)</a>", re.I)


async def existing_files(
    client: httpx.AsyncClient, index_url: str, name: str
) -> dict[str, str | None]:
    """Files the index already has for ``name`` → their sha256 (when it says)."""
    url = f"{index_url.rstrip('/')}/{normalize_name(name)}/"
    try:
        response = await client.get(
            url,
            follow_redirects=True,
            headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.5"},
        )
    except httpx.HTTPError as exc:
        raise ActionError(f"cannot reach the index at {url}: {_describe(exc)}") from None
    if response.status_code == 404:
        return {}
    if response.status_code >= 400:
        raise ActionError(
            f"the index answered {response.status_code} for {url}",
            retryable=response.status_code >= 500,
        )
    found: dict[str, str | None] = {}
    if "json" in response.headers.get("content-type", ""):
        for item in response.json().get("files", []):
            found[item["filename"]] = (item.get("hashes") or {}).get("sha256")
        return found
    for match in _ANCHOR.finditer(response.text):
        text = html.unescape(match["text"]).strip()
        href = html.unescape(match["href"])
        digest = re.search(r"#sha256=([0-9a-f]{64})", href)
        found[text or href.split("#")[0].rsplit("/", 1)[-1]] = digest.group(1) if digest else None
    return found


def _form(info: DistInfo, content: bytes) -> list[tuple[str, str]]:
    """The fields twine sends with ``:action=file_upload``."""
    meta = info.metadata
    fields: list[tuple[str, str]] = [
        (":action", "file_upload"),
        ("protocol_version", "1"),
        ("metadata_version", str(meta.get("Metadata-Version", "2.1"))),
        ("name", info.name),
        ("version", info.version),
        ("filetype", info.filetype),
        ("pyversion", info.pyversion),
        ("md5_digest", hashlib.md5(content, usedforsecurity=False).hexdigest()),
        ("sha256_digest", hashlib.sha256(content).hexdigest()),
        ("blake2_256_digest", hashlib.blake2b(content, digest_size=32).hexdigest()),
    ]
    single = {
        "Summary": "summary",
        "Home-page": "home_page",
        "Author": "author",
        "Author-email": "author_email",
        "Maintainer": "maintainer",
        "Maintainer-email": "maintainer_email",
        "License": "license",
        "Keywords": "keywords",
        "Requires-Python": "requires_python",
        "Description-Content-Type": "description_content_type",
    }
    for header, key in single.items():
        if meta.get(header):
            fields.append((key, str(meta[header])))
    multi = {
        "Classifier": "classifiers",
        "Requires-Dist": "requires_dist",
        "Provides-Extra": "provides_extra",
        "Project-URL": "project_urls",
        "Platform": "platform",
    }
    for header, key in multi.items():
        for value in meta.get_all(header) or []:
            fields.append((key, str(value)))
    body = meta.get_payload()
    description = body if isinstance(body, str) and body.strip() else meta.get("Description")
    if description:
        fields.append(("description", str(description)))
    return fields


def _dist_files(ctx: ActionContext, params: PublishParams) -> list[Path]:
    if params.files:
        paths = [_resolve(ctx, f) for f in params.files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise NonRetryableError(f"distribution files not found: {', '.join(missing)}")
        return paths
    dist = _resolve(ctx, params.dist)
    if not dist.is_dir():
        raise NonRetryableError(f"no {dist} directory; build first or list `files:`")
    paths = sorted(p for p in dist.iterdir() if p.name.endswith(_DIST_SUFFIXES))
    if not paths:
        raise NonRetryableError(f"no wheel or sdist in {dist}")
    return paths


@action("python.publish", PublishParams)
async def publish(params: PublishParams, ctx: ActionContext) -> dict[str, Any]:
    """Upload distributions to a package index; an existing version is reported, not re-sent."""
    infos = [read_dist(p) for p in _dist_files(ctx, params)]
    releases = {(normalize_name(i.name), i.version) for i in infos}
    if len(releases) != 1:
        listed = ", ".join(f"{n} {v}" for n, v in sorted(releases))
        raise NonRetryableError(
            f"the files are for several releases ({listed}); list the ones to publish in `files:`"
        )
    name, version = infos[0].name, infos[0].version
    index_url = params.index_url or simple_index_for(params.repository_url)
    auth = credentials(ctx, params)
    base = {
        "name": name,
        "version": version,
        "repository_url": params.repository_url,
        "url": f"{index_url.rstrip('/')}/{normalize_name(name)}/",
    }
    # No keep-alive: uploads are few and large, and some index servers close idle
    # connections without saying so, which would fail the next upload mid-request.
    async with httpx.AsyncClient(
        timeout=params.timeout,
        limits=httpx.Limits(max_keepalive_connections=0),
        auth=httpx.BasicAuth(*auth) if auth else None,
    ) as client:
        present = await existing_files(client, index_url, name)
        uploaded: list[str] = []
        skipped: list[str] = []
        differs: list[str] = []
        for info in infos:
            content = info.path.read_bytes()
            digest = hashlib.sha256(content).hexdigest()
            if info.path.name in present:
                theirs = present[info.path.name]
                if theirs is not None and theirs != digest:
                    differs.append(info.path.name)
                    ctx.log(
                        f"{info.path.name} is already on the index with different content "
                        "(a rebuild?); a published file never changes, so it stays as it "
                        "is — bump the version to publish new content",
                        "stderr",
                    )
                else:
                    ctx.log(f"{info.path.name} is already on the index; not uploading it again")
                skipped.append(info.path.name)
                continue
            if auth is None:
                raise NonRetryableError(
                    "no index credentials: set QUARTERDECK_PYPI_TOKEN (or "
                    "QUARTERDECK_PYPI_USERNAME and QUARTERDECK_PYPI_PASSWORD) in the environment"
                )
            ctx.log(f"uploading {info.path.name} ({len(content)} bytes) to {params.repository_url}")
            try:
                response = await client.post(
                    params.repository_url,
                    data=_multi(_form(info, content)),
                    files={"content": (info.path.name, content, "application/octet-stream")},
                )
            except httpx.HTTPError as exc:
                raise ActionError(
                    f"upload of {info.path.name} failed: {_describe(exc)}",
                    outputs={**base, "uploaded": uploaded},
                ) from None
            text = response.text[:300].strip()
            if response.status_code in (400, 409) and "exist" in text.lower():
                ctx.log(f"{info.path.name} is already on the index (the upload said so)")
                skipped.append(info.path.name)
                continue
            if response.status_code in (401, 403):
                raise NonRetryableError(
                    f"{params.repository_url} refused the credentials "
                    f"({response.status_code}); check the token in the environment",
                    outputs={**base, "uploaded": uploaded},
                )
            if response.status_code >= 300:
                raise ActionError(
                    f"upload of {info.path.name} failed: {response.status_code} {text}",
                    retryable=response.status_code >= 500 or response.status_code == 429,
                    outputs={**base, "uploaded": uploaded},
                )
            uploaded.append(info.path.name)
            ctx.log(f"uploaded {info.path.name}")
    return {
        **base,
        "already_published": not uploaded,
        "uploaded": uploaded,
        "skipped": skipped,
        "differs": differs,
    }


def _describe(exc: Exception) -> str:
    """httpx errors often have an empty message; name the kind of failure instead."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _multi(fields: list[tuple[str, str]]) -> dict[str, str | list[str]]:
    """httpx wants repeated form fields as a list under one key."""
    out: dict[str, str | list[str]] = {}
    for key, value in fields:
        if key in out:
            current = out[key]
            out[key] = [*current, value] if isinstance(current, list) else [current, value]
        else:
            out[key] = value
    return out
