"""``shell: true`` without string splicing: templated values reach the script as parameters.

Quoting a value and pasting it into a script only works if the quoting matches the place
it lands: ``shlex.quote`` inside ``'message: {{ x }}'`` *closes* the author's quotes, and
``x = ; touch PWNED`` runs. So a value is never pasted. Each ``{{ ... }}`` becomes a
reference to a shell variable (``"${__qd_1}"``), the values are passed as positional
parameters after the script (``sh -c SCRIPT quarterdeck-shell V1 V2``), and a preamble
copies them into the variables before the author's code runs — the approach GitHub
recommends for Actions (values through the environment, referenced, never interpolated).
Expansion of a variable's value is never parsed as shell code, in any context.

The reference is written to fit the quoting context the template sits in, so the script
still means what its author wrote: unquoted → ``"${__qd_1}"``, inside double quotes or an
unquoted here-document → ``${__qd_1}``, inside single quotes → ``'"${__qd_1}"'`` (close,
expand, reopen). Inside a *quoted* here-document (``<<'EOF'``) nothing can expand, so a
template there is refused rather than pasted.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from quarterdeck.core.errors import NonRetryableError

ARG0 = "quarterdeck-shell"
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_WORD_END = set(" \t\n;&|<>()")
_CODE = "code"


class _Scanner:
    """Walks a POSIX shell script tracking the quoting context, replacing templates."""

    def __init__(self, script: str, render_text: Callable[[str], str]) -> None:
        self.src = script
        self.render_text = render_text
        self.out: list[str] = []
        self.values: list[str] = []
        self.stack: list[str] = [_CODE]
        self.pending: list[tuple[str, bool, bool]] = []  # heredoc (delim, quoted, strip)
        self.i = 0

    def reference(self, template: str, context: str) -> str:
        self.values.append(self.render_text(template))
        name = f"${{__qd_{len(self.values)}}}"
        if context in (_CODE, "paren", "subst", "backtick"):
            return f'"{name}"'
        if context == "single":
            return f"'\"{name}\"'"
        if context == "heredoc-quoted":
            raise NonRetryableError(
                f"shell: a template inside a quoted here-document cannot expand: {template!r} "
                "(use an unquoted delimiter, <<EOF, or pass the value another way)"
            )
        return name  # double quotes, unquoted here-document, comment

    def template_at(self, context: str) -> bool:
        match = _TEMPLATE.match(self.src, self.i)
        if match is None:
            return False
        self.out.append(self.reference(match.group(0), context))
        self.i = match.end()
        return True

    def run(self) -> str:
        src = self.src
        while self.i < len(src):
            context = self.stack[-1]
            if src.startswith(("{{", "{%"), self.i) and self.template_at(context):
                continue
            char = src[self.i]
            if context == "single":
                self.out.append(char)
                self.i += 1
                if char == "'":
                    self.stack.pop()
                continue
            if char == "\\":
                self.out.append(src[self.i : self.i + 2])
                self.i += 2
                continue
            if context == "double":
                self.code_or_double(char, in_double=True)
                continue
            self.code_or_double(char, in_double=False)
        return "".join(self.out)

    def code_or_double(self, char: str, *, in_double: bool) -> None:
        src, context = self.src, self.stack[-1]
        if src.startswith("$(", self.i) and not src.startswith("$((", self.i):
            self.stack.append("subst")
            self.out.append("$(")
            self.i += 2
            return
        self.i += 1
        self.out.append(char)
        if char == "`":
            if context == "backtick":
                self.stack.pop()
            else:
                self.stack.append("backtick")
        elif in_double:
            if char == '"':
                self.stack.pop()
        elif char == "'":
            self.stack.append("single")
        elif char == '"':
            self.stack.append("double")
        elif char == "(":
            self.stack.append("paren")
        elif char == ")" and context in ("paren", "subst"):
            self.stack.pop()
        elif char == "#" and self.word_start(self.i - 1):
            self.comment()
        elif char == "<" and src.startswith("<", self.i) and not src.startswith("<<", self.i):
            self.heredoc_operator()
        elif char == "\n" and self.pending:
            self.heredoc_bodies()

    def word_start(self, at: int) -> bool:
        return at == 0 or self.src[at - 1] in " \t\n;&|()"

    def comment(self) -> None:
        end = self.src.find("\n", self.i)
        end = len(self.src) if end < 0 else end
        self.copy_with_templates(self.src[self.i : end], "comment")
        self.i = end

    def heredoc_operator(self) -> None:
        """After ``<<``: read ``-``, blanks and the delimiter word; its body comes later."""
        src = self.src
        self.out.append("<")
        self.i += 1
        strip = src.startswith("-", self.i)
        start = self.i
        if strip:
            self.i += 1
        while self.i < len(src) and src[self.i] in " \t":
            self.i += 1
        word_start = self.i
        while self.i < len(src) and src[self.i] not in _WORD_END:
            self.i += 1
        word = src[word_start : self.i]
        self.out.append(src[start : self.i])
        if word:
            quoted = any(c in word for c in "'\"\\")
            self.pending.append((re.sub(r"[\"'\\]", "", word), quoted, strip))

    def heredoc_bodies(self) -> None:
        """The bodies of the here-documents opened on the line that just ended."""
        src = self.src
        while self.pending:
            delim, quoted, strip = self.pending.pop(0)
            context = "heredoc-quoted" if quoted else "heredoc"
            while self.i < len(src):
                end = src.find("\n", self.i)
                end = len(src) if end < 0 else end + 1
                line = src[self.i : end]
                self.i = end
                bare = line.rstrip("\n")
                if (bare.lstrip("\t") if strip else bare) == delim:
                    self.out.append(line)
                    break
                self.copy_with_templates(line, context)

    def copy_with_templates(self, text: str, context: str) -> None:
        last = 0
        for match in _TEMPLATE.finditer(text):
            self.out.append(text[last : match.start()])
            self.out.append(self.reference(match.group(0), context))
            last = match.end()
        self.out.append(text[last:])


def bind_templates(script: str, render_text: Callable[[str], str]) -> tuple[str, list[str]]:
    """``script`` with each template replaced by a variable reference, and the values.

    The returned script starts with a preamble that copies the positional parameters
    into the variables and clears them (``set --``), so the author's code sees none.
    """
    scanner = _Scanner(script, render_text)
    body = scanner.run()
    if not scanner.values:
        return script, []
    preamble = " ".join(f'__qd_{n}="${{{n}}}";' for n in range(1, len(scanner.values) + 1))
    return f"{preamble} set --\n{body}", scanner.values


def shell_argv(script: str, render_text: Callable[[str], str], shell: str = "/bin/sh") -> list[str]:
    """``[sh, -c, SCRIPT, arg0, values...]``: the argv that runs ``script`` with its values."""
    body, values = bind_templates(script, render_text)
    return [shell, "-c", body, ARG0, *values] if values else [shell, "-c", body]


def remote_shell_line(script: str, render_text: Callable[[str], str]) -> str:
    """The same, as one command line for a remote login shell (every word quoted)."""
    return shlex.join(shell_argv(script, render_text, shell="sh"))
