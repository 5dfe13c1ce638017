"""The frozen value types corral uses instead of dataclasses (start-up cost)."""

from __future__ import annotations

import copy
import pickle

import pytest

import corral
from corral._record import fields, record, replace


@record
class Point:
    """A docstring that stays."""

    x: int
    y: int = 0

    def norm(self) -> int:
        return abs(self.x) + abs(self.y)


@record
class Checked:
    value: int

    def __post_init__(self) -> None:
        if self.value < 0:
            raise ValueError("negative")
        object.__setattr__(self, "value", self.value * 2)


def test_init_defaults_methods_and_docs():
    p = Point(1)
    assert (p.x, p.y, p.norm()) == (1, 0, 1)
    assert Point(x=1, y=2) == Point(1, 2) and Point(1, 2) != Point(2, 1)
    assert Point.__doc__ == "A docstring that stays."
    assert repr(Point(1, 2)) == "Point(x=1, y=2)"
    assert fields(p) == ("x", "y")
    for call, words in ((lambda: Point(),  # type: ignore[call-arg]
                         "missing required argument: 'x'"),
                        (lambda: Point(1, 2, 3), "takes 2 positional arguments but 3"),
                        (lambda: Point(1, z=2), "unexpected keyword argument 'z'"),
                        (lambda: Point(1, x=2), "multiple values for argument 'x'")):
        with pytest.raises(TypeError, match=words):
            call()


def test_immutable_hashable_slotted():
    p = Point(1, 2)
    with pytest.raises(AttributeError, match="immutable"):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del p.x  # type: ignore[misc]
    assert not hasattr(p, "__dict__")
    assert {Point(1, 2), Point(1, 2)} == {p}
    assert Point(1, 2) != (1, 2)


def test_post_init_and_replace():
    assert Checked(3).value == 6
    with pytest.raises(ValueError):
        Checked(-1)
    assert replace(Point(1, 2), y=5) == Point(1, 5)
    with pytest.raises(TypeError, match="no field z"):
        replace(Point(1, 2), z=1)


def test_pickle_and_copy():
    for value in (Point(3, 4), corral.ExecRequest(["echo", "hi"], timeout=3, policy="full-access")):
        assert pickle.loads(pickle.dumps(value)) == value
        assert copy.deepcopy(value) == value


def test_a_real_result_round_trips():
    result = corral.run(["echo", "hi"], policy="full-access")
    assert pickle.loads(pickle.dumps(result)) == result
    assert replace(result, exit_code=3).exit_code == 3 and result.exit_code == 0


def test_every_public_name_resolves():
    for name in corral.__all__:
        assert getattr(corral, name) is not None
    assert set(corral.__all__) == set(corral._EXPORTS)  # type: ignore[attr-defined]
