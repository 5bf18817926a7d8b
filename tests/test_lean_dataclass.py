"""A ``lean`` class behaves exactly as the dataclass ``dataclasses`` would have made.

``lean`` (core/lean.py) skips the method compilation ``dataclasses`` does at import: one
``__eq__`` and ``__repr__`` serve every class and ``__init__`` is written at the first
instance. These tests hold every lean class a run imports (and a few made here for the
corner cases) to a reference: the same fields made into a plain dataclass.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import re
from collections import deque
from typing import Any

import pytest

import quarterdeck.core.lean as lean_module
from quarterdeck.core import errors, identity
from quarterdeck.core.actions import base
from quarterdeck.core.definition import expressions, loader, validate
from quarterdeck.core.engine import context
from quarterdeck.core.journal import events, parts, payload, state, statuses, store
from quarterdeck.core.journal.payload import Record
from quarterdeck.core.journal.statuses import StepStatus
from quarterdeck.core.lean import lean
from quarterdeck.core.observability import metrics
from quarterdeck.core.policy import budget
from quarterdeck.personas import registry
from quarterdeck.tui import launch
from quarterdeck.tui.headless import ci
from quarterdeck.workflows import catalog
from tests.helpers import fresh_python

_MODULES = (parts, state, events, errors, base, loader, validate, context, metrics, budget)
_MODULES += (registry, launch, ci, statuses, store, identity, expressions, catalog, payload)


def _is_lean(kind: object) -> bool:
    # ``lean`` has ``dataclasses`` collect the fields only (``init=False``), as ``record``
    # does for the journal's payloads
    return (
        isinstance(kind, type)
        and dataclasses.is_dataclass(kind)
        and not kind.__dataclass_params__.init  # type: ignore[attr-defined]
        and not issubclass(kind, Record)
    )


_LEAN = sorted(
    {kind for module in _MODULES for kind in vars(module).values() if _is_lean(kind)},
    key=lambda kind: kind.__name__,
)
# each compared with a plain dataclass of the same fields; DefinitionError (an exception
# whose ``__post_init__`` calls its base) is held to what it was in a test of its own
_PLAIN = [kind for kind in _LEAN if kind is not errors.DefinitionError]


def _reference(kind: type) -> Any:
    """``kind``'s fields as a plain dataclass with everything ``dataclasses`` generates."""
    options = ("default", "default_factory", "init", "repr", "compare", "hash")
    made = dataclasses.make_dataclass(
        kind.__name__,
        [
            (f.name, f.type, dataclasses.field(**{name: getattr(f, name) for name in options}))
            for f in dataclasses.fields(kind)
        ],
        repr=kind.__repr__ is lean_module._repr,
        eq=kind.__eq__ is lean_module._eq,
        frozen=kind in lean_module._FROZEN,
    )
    made.__qualname__ = kind.__qualname__
    return made


def _shown(value: object) -> str:
    return re.sub(r" at 0x[0-9a-f]+", " at 0x", repr(value))  # a default object's address


def _required(kind: type) -> list[str]:
    return [
        f.name
        for f in dataclasses.fields(kind)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


def _values(kind: type) -> dict[str, Any]:
    return {name: f"v-{name}" for name in _required(kind)}


def test_the_classes_a_run_imports_are_lean() -> None:
    assert {kind.__name__ for kind in _LEAN} == set(
        [
            "StepState",
            "GateState",
            "Vote",
            "Refusal",
            "ApprovalState",
            "StageState",
            "PersonaUsage",
            "Switch",
            "SignalSeen",
            "LogLine",
            "RunState",
            "Event",
            "DefinitionError",
            "ActionContext",
            "SourceMap",
            "LoadedWorkflow",
            "RunOptions",
            "RunContext",
            "_Run",
            "Reservation",
            "_Account",
            "PersonaCatalog",
            "Context",
            "HeadlessExtras",
            # frozen
            "Look",
            "RunRow",
            "Signal",
            "Problem",
            "ActionSpec",
            "_Jinja",
            "Verified",
            "CatalogEntry",
            "_Spec",
        ]
    )
    for kind in _LEAN:  # none written per class at import
        init = kind.__init__
        # not yet made, or made by lean at the first instance (Look's are made at import)
        assert (
            init is lean_module._first_init or init.__globals__["FACTORY"] is lean_module._FACTORY
        )
        assert kind.__eq__ in (lean_module._eq, object.__eq__)


@pytest.mark.parametrize("kind", _PLAIN, ids=lambda kind: kind.__name__)
def test_every_lean_class_is_made_compared_and_shown_as_its_dataclass_would_be(
    kind: type,
) -> None:
    reference = _reference(kind)
    values = _values(kind)
    ours, theirs = kind(**values), reference(**values)
    again, their_again = kind(**values), reference(**values)
    for f in dataclasses.fields(kind):  # the same values (a default object: its type)
        mine, their = getattr(ours, f.name), getattr(theirs, f.name)
        assert type(mine) is type(their)
        assert mine == their or getattr(their_again, f.name) != their
    assert kind.__match_args__ == reference.__match_args__  # type: ignore[attr-defined]
    if kind.__repr__ is lean_module._repr:
        assert _shown(ours) == _shown(theirs)
    else:  # repr=False: its own (RunState's), as before
        assert "__repr__" in vars(kind)
    if kind.__eq__ is object.__eq__:  # eq=False: by identity and hashable, as before
        assert reference.__eq__ is object.__eq__
        assert ours != again and hash(ours) == object.__hash__(ours)
        return
    assert (ours == again) is (theirs == their_again)
    assert (ours != again) is (theirs != their_again)
    assert (kind(*values.values()) == again) is (theirs == their_again)  # positionally too
    assert ours != theirs and ours != object()  # another class is never equal
    if kind in lean_module._FROZEN:  # hashed by its fields, and frozen, as the reference
        assert hash(ours) == hash(theirs) == hash(again)
        for f in dataclasses.fields(kind):
            with pytest.raises(dataclasses.FrozenInstanceError) as mine:
                setattr(ours, f.name, 1)
            with pytest.raises(dataclasses.FrozenInstanceError) as their:
                setattr(theirs, f.name, 1)
            assert str(mine.value) == str(their.value)
            with pytest.raises(dataclasses.FrozenInstanceError) as mine:
                delattr(ours, f.name)
            with pytest.raises(dataclasses.FrozenInstanceError) as their:
                delattr(theirs, f.name)
            assert str(mine.value) == str(their.value)
        assert pickle.loads(pickle.dumps(ours)) == ours == copy.deepcopy(ours)
    else:
        assert kind.__hash__ is None and reference.__hash__ is None  # mutable: unhashable
        with pytest.raises(TypeError):
            hash(ours)
    # a change to any compared field makes them differ (to another, as in the reference)
    for f in dataclasses.fields(kind):
        other, their_other = copy.copy(ours), copy.copy(theirs)
        object.__setattr__(other, f.name, "changed")
        object.__setattr__(their_other, f.name, "changed")
        assert (other != ours) is (their_other != theirs) is f.compare
        if kind.__repr__ is lean_module._repr:
            assert _shown(other) == _shown(their_other)
    # default factories give each instance its own value
    factories = [
        f.name for f in dataclasses.fields(kind) if f.default_factory is not dataclasses.MISSING
    ]
    for name in factories:
        assert getattr(kind(**values), name) is not getattr(ours, name)


@pytest.mark.parametrize("kind", _PLAIN, ids=lambda kind: kind.__name__)
def test_every_lean_class_refuses_bad_arguments_with_its_dataclass_s_words(kind: type) -> None:
    reference = _reference(kind)
    values = _values(kind)
    bad: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((), {**values, "no_such_field": 1}),
        (tuple(range(len(dataclasses.fields(kind)) + 1)), {}),  # one positional too many
    ]
    if values:
        bad.append(((), {}))  # required ones missing
        bad.append(((1,), values))  # given twice
    for args, kwargs in bad:
        with pytest.raises(TypeError) as ours:
            kind(*args, **kwargs)
        with pytest.raises(TypeError) as theirs:
            reference(*args, **kwargs)
        assert str(ours.value) == str(theirs.value)


def test_a_definition_error_is_what_its_dataclass_was() -> None:
    problem = errors.Problem("wf.yaml", 3, 4, "bad")
    error = errors.DefinitionError([problem])
    assert error.args == (str(problem),) and str(error) == str(problem)
    assert repr(error) == f"DefinitionError(problems=[{problem!r}])"
    assert error == errors.DefinitionError([problem]) != errors.DefinitionError([])
    assert hash(error) == id(error)  # its own __hash__, kept
    assert errors.DefinitionError().problems == []
    assert errors.DefinitionError(problems=[problem]).problems == [problem]
    with pytest.raises(TypeError, match=r"DefinitionError.__init__\(\) got an unexpected"):
        errors.DefinitionError(nope=1)  # type: ignore[call-arg]


def test_copies_pickles_replace_and_asdict_work_as_on_a_dataclass() -> None:
    step = parts.StepState(id="a", stage="s", needs=["b"], status=StepStatus.FAILED)
    step.tail = deque(["line"], maxlen=parts.LOG_TAIL)
    for made in (copy.copy(step), copy.deepcopy(step), pickle.loads(pickle.dumps(step))):
        assert made == step and made is not step
    assert dataclasses.replace(step, attempts=3).attempts == 3
    assert dataclasses.asdict(parts.Vote("ann", "approved", "ok", 1.0))["by"] == "ann"  # type: ignore[arg-type]
    assert not hasattr(step, "__dict__")  # slotted, as before
    assert hasattr(parts.Vote("ann", "approved", "ok", 1.0), "__dict__")  # type: ignore[arg-type]


def test_a_self_containing_value_shows_as_dots_as_in_a_dataclass() -> None:
    stage = parts.StageState(id="s")
    reference = _reference(parts.StageState)(id="s")
    stage.steps["me"] = stage  # type: ignore[assignment]
    reference.steps["me"] = reference
    assert repr(stage) == repr(reference)
    assert "steps={'me': ...}" in repr(stage)


def test_field_options_and_post_init_are_honoured() -> None:
    @lean
    class Thing:
        """A thing."""

        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        hidden: int = dataclasses.field(default=0, repr=False, compare=False)
        later: int = dataclasses.field(default=5, init=False)
        made: list[int] = dataclasses.field(default_factory=list, init=False)

        def __post_init__(self) -> None:
            self.b.append(self.a)

    @dataclasses.dataclass
    class Reference:
        a: int
        b: list[int] = dataclasses.field(default_factory=list)
        hidden: int = dataclasses.field(default=0, repr=False, compare=False)
        later: int = dataclasses.field(default=5, init=False)
        made: list[int] = dataclasses.field(default_factory=list, init=False)

        def __post_init__(self) -> None:
            self.b.append(self.a)

    thing, reference = Thing(1, hidden=3), Reference(1, hidden=3)
    assert repr(thing).replace("Thing", "Reference") == repr(reference)
    assert (thing.b, thing.later, thing.made) == ([1], 5, [])
    assert thing == Thing(1, hidden=4)  # not compared
    with pytest.raises(TypeError) as ours:
        Thing(1, later=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError) as theirs:
        Reference(1, later=2)  # type: ignore[call-arg]
    assert str(ours.value).replace("Thing", "Reference") == str(theirs.value)


def test_a_required_field_after_a_default_is_refused_at_once_as_dataclasses_does() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @lean
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_importing_the_state_parts_compiles_no_method() -> None:
    """A fresh process: importing the parts compiles no ``__init__``/``__eq__``/``__repr__``
    (``dataclasses`` compiled three per class); the first instance writes its ``__init__``."""
    probe = """
import builtins, sys
compiled = []
real_exec = builtins.exec
def spy(source, *args, **kwargs):
    if isinstance(source, str):
        compiled.append(source.split("(")[0])
    return real_exec(source, *args, **kwargs)
import quarterdeck.core.journal.events  # its records and their imports: not what is probed
builtins.exec = spy
import quarterdeck.core.journal.parts as parts
builtins.exec = real_exec
print(len(compiled))
builtins.exec = spy
parts.Vote("ann", "approved", "ok", 1.0)
parts.Vote("bob", "approved", "ok", 2.0)
builtins.exec = real_exec
print(compiled)
"""
    done = fresh_python(probe)
    at_import, first_use = done.stdout.splitlines()
    assert at_import == "0"
    assert first_use == "['def __init__']"  # once, for the first Vote


def _both(**options: Any) -> list[Any]:
    """A fresh lean class and its reference dataclass, both ``a: int`` and ``b: list``."""
    made = []
    for decorate in (lean, dataclasses.dataclass):
        body = {
            "__annotations__": {"a": "int", "b": "list[int]"},
            "b": dataclasses.field(default_factory=list),
            "__doc__": "A class.",
        }
        made.append(decorate(**options)(type("Base", (), body)))
    return made


def test_a_subclass_s_own_init_calling_the_lean_one_is_kept() -> None:
    """A subclass with its own ``__init__``, calling the lean one through ``super()``
    before any instance of the lean class was made: its ``__init__`` stays its own (the
    lean class's was written onto the subclass, and its second instance failed)."""
    for base_class in _both():

        class Sub(base_class):  # type: ignore[valid-type,misc]
            def __init__(self, a: int, extra: str) -> None:
                super().__init__(a)
                self.extra = extra

        first, second = Sub(1, "x"), Sub(2, "y")
        assert (first.a, first.b, first.extra) == (1, [], "x")
        assert (second.a, second.extra) == (2, "y")
        assert first.b is not second.b  # each its own factory value
        assert Sub.__dict__["__init__"].__qualname__.endswith("Sub.__init__")


def test_a_plain_subclass_of_a_frozen_lean_class_is_made() -> None:
    """``dataclasses`` sets a frozen class's fields with ``object.__setattr__``, for a
    subclass's instances too (the lean class's subclass was refused: cannot assign)."""
    ours, theirs = (type("Sub", (base_class,), {}) for base_class in _both(frozen=True))
    assert repr(ours(1)) == repr(theirs(1)) == "Sub(a=1, b=[])"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ours(1).a = 2


def test_a_plain_subclass_s_post_init_is_called_as_by_the_dataclass() -> None:
    """The dataclass's ``__init__`` calls ``__post_init__`` only if its own class has one:
    a plain subclass's is never called, whichever class makes the first instance (the
    lean class called it when the subclass came first)."""
    called: list[int] = []
    for base_class in _both():

        class Sub(base_class):  # type: ignore[valid-type,misc]
            def __post_init__(self) -> None:
                called.append(self.a)

        Sub(1)
        base_class(2)
        Sub(3)
    assert called == []


def test_an_init_var_is_refused_at_once() -> None:
    """The lean ``__init__`` is written from ``fields`` (no InitVar): it would neither
    take the InitVar nor pass it to ``__post_init__``, so a lean class refuses one."""
    with pytest.raises(TypeError, match=r"Bad\.y: a lean class has no InitVar fields"):

        @lean
        class Bad:
            x: int
            y: dataclasses.InitVar[int] = 0

            def __post_init__(self, y: int) -> None:
                self.z = y


def test_each_instance_has_its_own_default_factory_values() -> None:
    ours, theirs = _both()
    for make in (ours, theirs):
        one, two = make(1), make(2)
        one.b.append(1)
        assert two.b == [] and make(3, [4]).b == [4]
        assert dataclasses.replace(one, a=5).b == [1]
        assert dataclasses.astuple(one) == (1, [1]) and make.__match_args__ == ("a", "b")
