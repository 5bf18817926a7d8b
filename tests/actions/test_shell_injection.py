"""``shell: true`` passes templated values as parameters, so no quoting context breaks out,
and every value is rendered exactly once (a rendered value is data, never a template).

Real processes and a real asyncssh server on 127.0.0.1; no mocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quarterdeck.core.errors import NonRetryableError
from tests.actions.test_ssh import settings_for
from tests.helpers import run_workflow
from tests.servers import SSHKeys, SSHServer, step_outputs

EVIL = "; touch PWNED; echo $(touch PWNED2) `touch PWNED3` ' \" \\ EOF\nEOF\ntouch PWNED4"
CONTEXTS = {
    "single quotes": "echo 'message: {{ inputs.msg }}'",
    "double quotes": 'echo "message: {{ inputs.msg }}"',
    "unquoted": "echo message: {{ inputs.msg }}",
    "heredoc": "cat <<EOF\nmessage: {{ inputs.msg }}\nEOF",
    "heredoc, strip tabs": "cat <<-EOF\n\tmessage: {{ inputs.msg }}\n\tEOF",
    "command substitution": 'echo "$(echo "message: {{ inputs.msg }}")"',
    "backticks": "echo `echo 'message: {{ inputs.msg }}'`",
}


def shell_workflow(command: str) -> str:
    run = (
        command.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    )
    return f"""\
name: inject
inputs:
  msg: {{type: string}}
stages:
  - id: s
    steps:
      - id: say
        uses: shell
        with:
          shell: true
          run: "{run}"
"""


def no_pwned(where: Path) -> None:
    assert sorted(p.name for p in where.iterdir() if p.name.startswith("PWNED")) == []


@pytest.mark.parametrize("context", sorted(CONTEXTS))
def test_no_quoting_context_lets_a_value_break_out(context: str, tmp_path: Path) -> None:
    ran = run_workflow(tmp_path, shell_workflow(CONTEXTS[context]), inputs={"msg": EVIL})
    assert ran.state.status == "succeeded", ran.state.to_json()
    no_pwned(tmp_path)
    out = step_outputs(ran, "say")["stdout"]
    if context in ("unquoted", "backticks"):  # the shell word-splits the (unquoted) result
        assert out.split() == ["message:", *EVIL.split()]
    else:
        assert out == f"message: {EVIL}"


def test_the_value_arrives_intact_in_single_quotes(tmp_path: Path) -> None:
    ran = run_workflow(
        tmp_path,
        shell_workflow("printf '%s|' 'message: {{ inputs.msg }}'"),
        inputs={"msg": EVIL},
    )
    assert step_outputs(ran, "say")["stdout"] == f"message: {EVIL}|"
    no_pwned(tmp_path)


def test_a_template_in_a_quoted_heredoc_is_refused_not_pasted(tmp_path: Path) -> None:
    ran = run_workflow(
        tmp_path, shell_workflow("cat <<'EOF'\n{{ inputs.msg }}\nEOF"), inputs={"msg": EVIL}
    )
    assert ran.state.status == "failed"
    assert "quoted here-document" in ran.state.step("say").error  # type: ignore[union-attr]
    no_pwned(tmp_path)


def test_ssh_shell_true_passes_values_as_parameters(keys: SSHKeys, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with SSHServer(keys, cwd=tmp_path / "a") as a:
        host = a.host
        ran = run_workflow(
            tmp_path,
            f"""\
name: remote
inputs:
  msg: {{type: string}}
stages:
  - id: s
    steps:
      - id: say
        uses: ssh.run
        with:
          hosts: ["{a.host}"]
          shell: true
          command: "echo 'message: {{{{ inputs.msg }}}}'; echo \\"again: {{{{ inputs.msg }}}}\\""
""",
            inputs={"msg": "; touch PWNED; echo $(touch PWNED2)"},
            settings=settings_for(keys, [a]),
        )
    assert ran.state.status == "succeeded", ran.state.to_json()
    no_pwned(tmp_path / "a")
    no_pwned(tmp_path)
    stdout = step_outputs(ran, "say")["hosts"][host]["stdout"]
    assert stdout.splitlines() == [
        "message: ; touch PWNED; echo $(touch PWNED2)",
        "again: ; touch PWNED; echo $(touch PWNED2)",
    ]


@pytest.fixture
def keys(tmp_path: Path) -> SSHKeys:
    return SSHKeys.generate(tmp_path / "keys")


TWICE = "{{ inputs.token | reverse | join }}"


def test_shell_env_and_cwd_are_rendered_once(tmp_path: Path) -> None:
    (tmp_path / TWICE).mkdir()
    ran = run_workflow(
        tmp_path,
        """\
name: once
inputs:
  token: {type: secret}
  note: {type: string}
stages:
  - id: s
    steps:
      - id: show
        uses: shell
        with:
          run: "sh -c 'echo \\"$NOTE\\"; pwd'"
          env: {NOTE: "{{ inputs.note }}"}
          cwd: "{{ inputs.note }}"
""",
        inputs={"token": "s3cr3t-token", "note": TWICE},
    )
    assert ran.state.status == "succeeded", ran.state.to_json()
    lines = step_outputs(ran, "show")["stdout"].splitlines()
    assert lines == [TWICE, str(tmp_path / TWICE)]
    assert "nekot-t3rc3s" not in ran.state.to_json()


def test_ssh_creates_is_rendered_once(keys: SSHKeys, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with SSHServer(keys, cwd=tmp_path / "a") as a:
        ran = run_workflow(
            tmp_path,
            f"""\
name: once
inputs:
  token: {{type: secret}}
  path: {{type: string}}
stages:
  - id: s
    steps:
      - id: migrate
        uses: ssh.run
        with:
          hosts: ["{a.host}"]
          command: "true"
          creates: "{{{{ inputs.path }}}}"
""",
            inputs={"token": "s3cr3t-token", "path": TWICE},
            settings=settings_for(keys, [a]),
        )
    assert ran.state.status == "succeeded", ran.state.to_json()
    probes = [c for c in a.commands if c.startswith("test -e")]
    assert probes == [f"test -e '{TWICE}'"]
    assert "nekot-t3rc3s" not in " ".join(a.commands)


def test_bind_templates_refuses_nothing_it_can_reference() -> None:
    from quarterdeck.core.actions.shell_script import bind_templates

    script, values = bind_templates("echo '{{ a }}' \"{{ b }}\" {{ c }}", lambda t: t.strip("{} "))
    assert values == ["a", "b", "c"]
    assert "{{" not in script
    with pytest.raises(NonRetryableError):
        bind_templates('cat <<"X"\n{{ a }}\nX\n', lambda t: t)
