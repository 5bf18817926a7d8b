"""Release referees: Quarterdeck's next-version decisions against python-semantic-release
and commitizen on generated git histories.

Creates a scratch venv, pip installs the two referees at pinned versions, builds one
temporary git repository (with a bare origin) per case — rewritten history with
off-lineage tags, unprefixed and floating tags, footers on the next line, nested scopes,
squash bodies, other tools' bump commits, presets' differences, 0.x breaking changes, a
first release — and asks each tool what it would release next without changing anything:

- Quarterdeck: the ``git.bump_version`` decision (``release_plan.decide``), ``conventional``
  preset against python-semantic-release, ``commitizen`` preset against commitizen;
- python-semantic-release: ``semantic-release --noop version --print``;
- commitizen: ``cz bump --dry-run --yes``.

Prints one row per case and an agreement table. A Quarterdeck refusal (it will not
release a version at or below one the repository already has) is shown as ``REFUSE``.

    .venv/bin/python benchmarks/release_referees.py [--venv DIR] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PSR = "python-semantic-release==10.5.3"
CZ = "commitizen==4.19.3"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.test",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class Repo:
    """A scratch repository with a bare origin; commits change one file each."""

    def __init__(self, root: Path, version: str, prefix: str) -> None:
        self.path = root / "work"
        self.count = 0
        env_home = root / "home"
        env_home.mkdir(parents=True)
        (env_home / "gitconfig").write_text("[init]\n\tdefaultBranch = main\n")
        self.env = {**os.environ, **GIT_ENV, "GIT_CONFIG_GLOBAL": str(env_home / "gitconfig")}
        subprocess.run(["git", "init", "-q", "--bare", str(root / "origin.git")], check=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(self.path)], check=True)
        self.write_pyproject(version, prefix)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", "chore: initial commit")
        self.git("remote", "add", "origin", str(root / "origin.git"))

    def write_pyproject(self, version: str, prefix: str) -> None:
        (self.path / "pyproject.toml").write_text(
            f'[project]\nname = "demo"\nversion = "{version}"\n\n'
            "[tool.semantic_release]\n"
            'version_toml = ["pyproject.toml:project.version"]\n'
            f'tag_format = "{prefix}{{version}}"\nallow_zero_version = true\n\n'
            "[tool.commitizen]\n"
            'name = "cz_conventional_commits"\nversion_provider = "pep621"\n'
            f'tag_format = "{prefix}$version"\n'
        )

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"git {' '.join(args)}: {done.stderr}")
        return done.stdout.strip()

    def commit(self, message: str) -> str:
        self.count += 1
        (self.path / f"change_{self.count}.txt").write_text(f"{self.count}\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def tag(self, name: str, *, annotated: bool = True) -> None:
        if annotated:
            self.git("tag", "-a", name, "-m", f"Release {name}")
        else:
            self.git("tag", "-f", name)

    def set_version(self, version: str, message: str) -> str:
        text = (self.path / "pyproject.toml").read_text()
        text = re.sub(r'^version = "[^"]+"', f'version = "{version}"', text, flags=re.M)
        (self.path / "pyproject.toml").write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")


@dataclass
class Case:
    name: str
    version: str  # the version file at the start
    build: Callable[[Repo], None]
    prefix: str = "v"
    squash: bool = False
    first_release: bool = False
    note: str = ""
    results: dict[str, str] = field(default_factory=dict)


def tagged(version: str, *commits: str, prefix: str = "v") -> Callable[[Repo], None]:
    def build(repo: Repo) -> None:
        repo.tag(f"{prefix}{version}")
        for message in commits:
            repo.commit(message)

    return build


def off_lineage(repo: Repo) -> None:
    """The issue's reproduction: 1.1.0 released on a side branch, its bump cherry-picked."""
    repo.tag("v1.0.0")
    repo.git("checkout", "-q", "-b", "side")
    repo.commit("feat: side feature")
    bumped = repo.set_version("1.1.0", "chore(release): 1.1.0")
    repo.tag("v1.1.0")
    repo.git("checkout", "-q", "main")
    repo.git("cherry-pick", bumped)
    repo.commit("fix: after the cherry-pick")


def rewritten(repo: Repo) -> None:
    """Releases v4.13.0..v4.13.3 tagged on commits a history rewrite left behind."""
    repo.tag("v4.12.0")
    repo.git("checkout", "-q", "-b", "old")
    for patch in range(4):
        repo.commit(f"fix: old fix {patch}")
        repo.set_version(f"4.13.{patch}", f"chore(release): 4.13.{patch}")
        repo.tag(f"v4.13.{patch}")
    repo.git("checkout", "-q", "main")
    repo.commit("feat: rewritten feature")
    repo.set_version("4.13.3", "chore: keep the file's version")
    repo.commit("fix: after the rewrite")


def floating(repo: Repo) -> None:
    repo.tag("v2.0.0")
    repo.commit("fix: the 2.0.1 fix")
    repo.set_version("2.0.1", "chore(release): 2.0.1")
    repo.tag("v2.0.1")
    repo.tag("v2", annotated=False)
    repo.tag("v2.0", annotated=False)
    repo.commit("fix: after the floating tags")


def unprefixed(repo: Repo) -> None:
    repo.tag("1.2.2")
    repo.commit("fix: one")
    repo.set_version("1.2.3", "chore(release): 1.2.3")
    repo.tag("1.2.3")
    repo.commit("feat: two")


def revert_pair(repo: Repo) -> None:
    repo.tag("v1.0.0")
    risky = repo.commit("feat: risky experiment")
    repo.git("revert", "--no-edit", risky)
    repo.commit("fix: the real fix")


def first_release(repo: Repo) -> None:
    repo.commit("feat: everything so far")


CASES = [
    Case("feat → minor", "1.0.0", tagged("1.0.0", "feat: add export")),
    Case("fix → patch", "1.0.0", tagged("1.0.0", "fix: crash on empty input")),
    Case("docs only → none", "1.0.0", tagged("1.0.0", "docs: typo", "chore: tidy")),
    Case("bang → major", "1.0.0", tagged("1.0.0", "feat(api)!: drop v1 endpoints")),
    Case(
        "BREAKING CHANGE: footer",
        "1.0.0",
        tagged("1.0.0", "refactor: move config\n\nBREAKING CHANGE: config moved"),
    ),
    Case(
        "footer on the next line",
        "1.0.0",
        tagged("1.0.0", "refactor: move config\n\nBREAKING CHANGE:\nconfig moved to config.toml"),
    ),
    Case(
        "BREAKING-CHANGE hyphen",
        "1.0.0",
        tagged("1.0.0", "fix: x\n\nBREAKING-CHANGE: hyphen form"),
    ),
    Case("nested scope", "1.0.0", tagged("1.0.0", "feat(api(v2)): add the v2 export")),
    Case(
        "squash body (* bullets)",
        "1.0.0",
        tagged("1.0.0", "Export work (#12)\n\n* feat: export endpoint\n\n* fix: typo"),
        squash=True,
    ),
    Case(
        "squash body (plain lines)",
        "1.0.0",
        tagged("1.0.0", "Export work (#12)\n\nfeat: export endpoint\n\nfix: typo"),
        squash=True,
    ),
    Case(
        "other tools' bump commits",
        "1.0.0",
        tagged(
            "1.0.0",
            "fix: real fix",
            "bump: version 1.0.0 → 1.0.1",
            "Bump version: 1.0.1 → 1.0.2",
        ),
    ),
    Case("refactor only", "1.0.0", tagged("1.0.0", "refactor: tidy the parser")),
    Case("perf", "1.0.0", tagged("1.0.0", "perf: cache lookups")),
    Case("0.x breaking", "0.4.0", tagged("0.4.0", "feat!: new storage format")),
    Case("0.x feat", "0.4.0", tagged("0.4.0", "feat: new option")),
    Case("revert pair in range", "1.0.0", revert_pair, note="QD cancels an in-range revert"),
    Case("unprefixed tags", "1.2.2", unprefixed, prefix=""),
    Case("floating v2 / v2.0 tags", "2.0.0", floating),
    Case("off-lineage 1.1.0 (issue)", "1.0.0", off_lineage),
    Case("rewritten history v4.13.x", "4.12.0", rewritten),
    Case("first release (no tags)", "0.1.0", first_release, first_release=True),
]


def quarterdeck(case: Case, repo: Repo, preset: str) -> str:
    import git

    from quarterdeck.core.actions.conventional import Version, bump_rules
    from quarterdeck.core.actions.release_plan import decide
    from quarterdeck.core.actions.version_file import read_version
    from quarterdeck.core.errors import RefusedError

    text = (repo.path / "pyproject.toml").read_text()
    file_version = Version.parse(read_version(text, "pyproject.toml", None))
    try:
        decision = decide(
            git.Repo(repo.path),
            prefix=case.prefix,
            file_version=file_version,
            part="auto",
            channel=None,
            rules=bump_rules(preset),
            squash_bodies=case.squash,
            first_release=case.first_release,
        )
    except RefusedError:
        return "REFUSE"
    return "none" if decision.new is None else decision.new.format("pep440")


def psr(bin_dir: Path, repo: Repo, last: str | None) -> str:
    done = subprocess.run(
        [str(bin_dir / "semantic-release"), "--noop", "version", "--print"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode or not lines:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"error: {tail[:40]}"
    printed = lines[-1].strip()
    return "none" if printed == last else printed


def cz(bin_dir: Path, repo: Repo) -> str:
    done = subprocess.run(
        [str(bin_dir / "cz"), "bump", "--dry-run", "--yes"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if "NO_COMMITS_TO_BUMP" in done.stdout + done.stderr or done.returncode == 21:
        return "none"
    found = re.search(r"bump: version (\S+) → (\S+)", done.stdout)
    if found:
        return "none" if found.group(1) == found.group(2) else found.group(2)
    tail = ((done.stderr or done.stdout).strip().splitlines() or ["?"])[-1]
    return f"error: {tail[:40]}"


def last_release(repo: Repo, prefix: str) -> str | None:
    """The highest full-version tag HEAD contains (what "no release" prints as)."""
    from packaging.version import Version

    found = []
    for name in repo.git("tag", "--merged", "HEAD").splitlines():
        rest = name[len(prefix) :] if name.startswith(prefix) else ""
        if re.fullmatch(r"\d+\.\d+\.\d+", rest):
            found.append((Version(rest), rest))
    return max(found)[1] if found else None


def setup_referees(where: Path) -> Path:
    bin_dir = where / "bin"
    if not (bin_dir / "cz").exists() or not (bin_dir / "semantic-release").exists():
        print(f"creating {where} and installing {PSR}, {CZ} …", flush=True)
        venv.create(where, with_pip=True)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q", PSR, CZ], check=True)
    return bin_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, help="Reuse this scratch venv (created if missing)")
    parser.add_argument("--keep", action="store_true", help="Keep the generated repositories")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="qd-referees-"))
    try:
        bin_dir = setup_referees(args.venv or scratch / "venv")
        for i, case in enumerate(CASES):
            repo = Repo(scratch / f"case{i}", case.version, case.prefix)
            case.build(repo)
            last_version = last_release(repo, case.prefix)
            case.results = {
                "psr": psr(bin_dir, repo, last_version),
                "qd-conventional": quarterdeck(case, repo, "conventional"),
                "cz": cz(bin_dir, repo),
                "qd-commitizen": quarterdeck(case, repo, "commitizen"),
            }
        report(CASES)
    finally:
        if args.keep:
            print(f"repositories kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


def report(cases: list[Case]) -> None:
    head = f"{'case':<28} {'PSR':>9} {'QD conv':>9} {'':2} {'cz':>9} {'QD cz':>9} {'':2}"
    print(head)
    print("-" * len(head))
    tallies = {"psr": [0, 0, 0], "cz": [0, 0, 0]}  # agree, QD refuses, disagree
    for case in cases:
        r = case.results
        marks = []
        for ref, ours in (("psr", "qd-conventional"), ("cz", "qd-commitizen")):
            if r[ref] == r[ours]:
                tallies[ref][0] += 1
                marks.append("=")
            elif r[ours] == "REFUSE":
                tallies[ref][1] += 1
                marks.append("R")
            else:
                tallies[ref][2] += 1
                marks.append("≠")
        print(
            f"{case.name:<28} {r['psr']:>9} {r['qd-conventional']:>9} {marks[0]:2} "
            f"{r['cz']:>9} {r['qd-commitizen']:>9} {marks[1]:2}"
        )
    print()
    print("= same decision; R Quarterdeck refuses (would not release backwards/re-use); ≠ differs")
    for ref, name in (("psr", "python-semantic-release"), ("cz", "commitizen")):
        agree, refuse, differ = tallies[ref]
        print(f"{name}: agree {agree}/{len(cases)}, Quarterdeck refuses {refuse}, differ {differ}")


if __name__ == "__main__":
    sys.exit(main())
