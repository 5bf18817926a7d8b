"""Python packaging actions: ``python.build`` and ``python.install_check``.

``python.build`` runs ``python -m build`` in a child process (output streamed, killed on
cancel). ``python.install_check`` proves a wheel (or an index release) installs and
imports in a virtual environment nobody else touched. Both use the *project's*
interpreter (see :mod:`quarterdeck.core.actions.interpreter`): the build backend and the
Python version the wheel is checked on are the project's, not Quarterdeck's. Reading a
distribution's metadata lives here too; ``python.publish`` (:mod:`.publish`) uses it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from quarterdeck.core.actions.base import ActionContext, ActionParams, action
from quarterdeck.core.actions.builtin import child_env, run_process
from quarterdeck.core.actions.interpreter import (
    PYTHON_HELP,
    STDERR_KEEP,
    first_error,
    not_installed,
    step_python,
)
from quarterdeck.core.actions.paths import confined
from quarterdeck.core.actions.served import (
    compare_with_built,
    download,
    isolated_pip_env,
    wheel_module,
)
from quarterdeck.core.errors import ActionError, NonRetryableError
from quarterdeck.core.factories import empty_list
from quarterdeck.core.lazy import lazy_module

if TYPE_CHECKING:
    import tarfile
else:  # loaded when a built sdist is checked, not when `validate` reads parameters
    tarfile = lazy_module("tarfile")

DIST_SUFFIXES = (".whl", ".tar.gz", ".zip")


def resolve_path(ctx: ActionContext, value: str) -> Path:
    """A path parameter: relative paths are relative to the run's work dir."""
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


# --------------------------------------------------------------------------- build


class BuildParams(ActionParams):
    project: str = Field(default=".", description="Directory holding pyproject.toml")
    outdir: str = Field(default="dist", description="Where the files go (relative to project)")
    sdist: bool = True
    wheel: bool = True
    isolation: bool = Field(
        default=True, description="Build in an isolated env (installs the build backend)"
    )
    python: str | None = Field(default=None, description=PYTHON_HELP)
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _something(self) -> BuildParams:
        if not (self.sdist or self.wheel):
            raise ValueError("nothing to build: set sdist or wheel (or both) to true")
        return self


@action("python.build", BuildParams)
async def build(params: BuildParams, ctx: ActionContext) -> dict[str, Any]:
    """Build an sdist and a wheel with ``python -m build``."""
    project = resolve_path(ctx, params.project)
    if not (project / "pyproject.toml").is_file() and not (project / "setup.py").is_file():
        raise NonRetryableError(f"no pyproject.toml (or setup.py) in {project}")
    outdir = confined(project, params.outdir, [project, ctx.workdir, ctx.run_dir], "outdir")
    interpreter = step_python(ctx, params.python, project)
    staging = ctx.run_dir / "build" / f"{ctx.step_id}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    argv = [interpreter.path, "-m", "build", "--outdir", str(staging)]
    if params.sdist and not params.wheel:
        argv.append("--sdist")
    elif params.wheel and not params.sdist:
        argv.append("--wheel")
    if not params.isolation:
        argv.append("--no-isolation")
    argv.append(str(project))
    try:
        errors: list[str] = []
        env = interpreter.activated(child_env(ctx, params.env))
        code, lines = await run_process(
            argv, ctx, cwd=project, env=env, tail=200, stderr_tail=errors, stderr_keep=STDERR_KEEP
        )
        lines = [*lines, *errors]
        if code != 0:
            missing = not_installed(lines, ("build",), interpreter)
            if missing is not None:
                raise missing
            raise ActionError(
                f"python -m build failed: {first_error(lines, f'exit code {code}')}",
                retryable=False,
                outputs={"exit_code": code, **interpreter.outputs()},
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
        **interpreter.outputs(),
    }


# --------------------------------------------------------------------------- install_check


_PROJECT_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.!+_-]*$")


class InstallCheckParams(ActionParams):
    wheel: str | None = Field(default=None, description="Path of a built wheel to install")
    package: str | None = Field(default=None, description="Project name to install from an index")
    allow_direct: bool = Field(
        default=False,
        description="Let `package` be a URL or a path (pip installs whatever it points at)",
    )
    expect_files: list[str] = Field(
        default_factory=empty_list,
        description="The built files: the one the index serves must be one of them, byte "
        "for byte (sha256)",
    )
    version: str | None = Field(default=None, description="Version to install or to expect")
    index_url: str | None = Field(default=None, description="Simple index URL (default pip's)")
    module: str | None = Field(default=None, description="Import name; default from the name")
    smoke: list[str] | str | None = Field(
        default=None, description="A command run inside the venv after the import"
    )
    no_deps: bool = False
    python: str | None = Field(
        default=None,
        description="Interpreter that makes the venv; default the project's (found from "
        "the wheel's folder, or the work dir)",
    )
    keep: bool = Field(default=False, description="Keep the venv (its path is an output)")

    @model_validator(mode="after")
    def _one_source(self) -> InstallCheckParams:
        if (self.wheel is None) == (self.package is None):
            raise ValueError("give exactly one of `wheel` (a file) or `package` (from an index)")
        direct = self.package is not None and not _PROJECT_NAME.match(self.package)
        if direct and not self.allow_direct:
            raise ValueError(
                f"package: {self.package!r} is not a project name; a URL or a path "
                "installs whatever it points at, so it needs `allow_direct: true`"
            )
        return self

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value and not _VERSION.match(value):
            raise ValueError(f"version: {value!r} is not a version number")
        return value


_PROBE = (
    "import importlib, importlib.metadata as md, sys\n"
    "module = importlib.import_module(sys.argv[1])\n"
    "print('module-file=' + str(getattr(module, '__file__', '')))\n"
    "print('dist-version=' + md.version(sys.argv[2]))\n"
)


@action("python.install_check", InstallCheckParams)
async def install_check(params: InstallCheckParams, ctx: ActionContext) -> dict[str, Any]:
    """Install a wheel (or an index release) into a fresh venv, import it, run a smoke test."""
    venv = ctx.run_dir / "venvs" / f"{ctx.step_id}-{ctx.attempt}-{uuid.uuid4().hex[:6]}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    if params.wheel is not None:
        wheel = resolve_path(ctx, params.wheel)
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
    project = resolve_path(ctx, params.wheel).parent if params.wheel else ctx.workdir
    interpreter = step_python(ctx, params.python, project)
    python = interpreter.path
    guessed = normalize_name(name).replace("-", "_")
    module = params.module or (wheel_module(Path(target), guessed) if params.wheel else guessed)
    env = child_env(ctx, {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"})
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    served: dict[str, Any] = {}
    isolated = params.package is not None
    try:
        if params.package is not None:
            # What the index serves, from it alone, is what gets installed and compared.
            expected = [resolve_path(ctx, f) for f in params.expect_files]
            missing = [str(p) for p in expected if not p.is_file()]
            if missing:
                raise NonRetryableError(f"expect_files not found: {', '.join(missing)}")
            dest = venv.with_name(venv.name + "-dl")
            downloaded = await download(ctx, python, params.index_url, target, dest)
            digest = compare_with_built(downloaded, expected)
            served = {"file": downloaded.name, "sha256": digest, "matches": bool(expected)}
            ctx.log(
                f"the index serves {downloaded.name} (sha256 {digest[:16]}…)"
                + (", the file this release built" if expected else "")
            )
            target = str(downloaded)
            module = params.module or wheel_module(downloaded, module)
            env = isolated_pip_env(env)
        code, lines = await run_process(
            [python, "-m", "venv", "--without-pip", str(venv)], ctx, cwd=ctx.workdir, env=env
        )
        if code != 0:
            raise ActionError(
                f"cannot create a venv with {python} ({interpreter.why}): "
                f"{lines[-1] if lines else code}",
                outputs=interpreter.outputs(),
            )
        vpython = str(venv / "bin" / "python")
        pip_args = ["install", "--no-cache-dir", *(["--isolated"] if isolated else [])]
        if params.no_deps:
            pip_args.append("--no-deps")
        if params.index_url:
            pip_args += ["--index-url", params.index_url]
        pip_args.append(target)
        errors: list[str] = []
        code, lines = await run_process(
            [python, "-m", "pip", "--python", vpython, *pip_args],
            ctx,
            cwd=ctx.workdir,
            env=env,
            tail=200,
            stderr_tail=errors,
            stderr_keep=STDERR_KEEP,
        )
        lines = [*lines, *errors]
        old_pip = any("no such option: --python" in line for line in lines)
        no_pip = not_installed(lines, ("pip",), interpreter) is not None
        if code != 0 and (old_pip or no_pip):  # pip < 22.3, or none
            code, lines = await run_process(
                [vpython, "-m", "ensurepip"], ctx, cwd=ctx.workdir, env=env
            )
            if code == 0:
                errors = []
                code, lines = await run_process(
                    [vpython, "-m", "pip", *pip_args],
                    ctx,
                    cwd=ctx.workdir,
                    env=env,
                    tail=200,
                    stderr_tail=errors,
                    stderr_keep=STDERR_KEEP,
                )
                lines = [*lines, *errors]
        if code != 0:
            raise ActionError(
                f"pip could not install {target}: {first_error(lines, f'exit code {code}')}",
                outputs={"installed": False, **interpreter.outputs()},
            )
        errors = []
        code, lines = await run_process(
            [vpython, "-I", "-c", _PROBE, module, name],
            ctx,
            cwd=venv,
            env=env,
            tail=200,
            stderr_tail=errors,
            stderr_keep=STDERR_KEEP,
        )
        if code != 0:
            last = next(
                (ln for ln in reversed([*lines, *errors]) if ln.strip()), f"exit code {code}"
            )
            raise ActionError(
                f"installed {name} but `import {module}` failed: {last}",
                retryable=False,
                outputs={"installed": True, "imported": False, **interpreter.outputs()},
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
            **served,
            **interpreter.outputs(),
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
        shutil.rmtree(venv.with_name(venv.name + "-dl"), ignore_errors=True)
        if not params.keep:
            shutil.rmtree(venv, ignore_errors=True)
