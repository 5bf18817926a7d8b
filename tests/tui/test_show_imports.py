"""``show --json`` imports what it uses: not the text view (``tui.headless.show`` and the
duration formatting it brings) nor the signature checks (``core.identity``) of a run that
has no signed vote. The real CLI in a subprocess, on a real store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import fresh_python
from tests.tui.test_run_duration import RUN, seed

# main() rather than the console entry (which leaves with os._exit): the modules it
# imported are written to a file once the command is done
PROBE = """
import json, sys
from quarterdeck.tui.cli import main
seen = sys.argv.pop(1)
try:
    main()
except SystemExit as exc:
    code = exc.code
with open(seen, "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def _modules(tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    seen = tmp_path / "modules.json"
    done = fresh_python(PROBE, str(seen), *args)
    found = json.loads(seen.read_text())
    assert found["code"] in (0, None), done.stderr
    return done.stdout, set(found["modules"])


def test_show_json_imports_neither_the_text_view_nor_the_signature_checks(
    tmp_path: Path,
) -> None:
    db = tmp_path / "qd.db"
    seed(db)
    out, modules = _modules(tmp_path, "show", RUN, "--json", "--store", str(db))
    assert json.loads(out)["id"] == RUN
    assert "quarterdeck.core.journal.integrity" in modules  # its chain was checked
    assert "quarterdeck.tui.headless.show" not in modules
    assert "quarterdeck.core.identity" not in modules
    text, modules = _modules(tmp_path, "show", RUN, "--store", str(db))
    assert f"run {RUN}" in text
    assert "quarterdeck.tui.headless.show" in modules
