"""Frozen value types without the start-up cost of :mod:`dataclasses`.

``corral run`` is started once per command, so its start-up is part of
every command's latency.  Importing :mod:`dataclasses` costs about 13 ms
here (it imports :mod:`inspect`, :mod:`ast` and :mod:`dis`) and each frozen
dataclass about 1 ms more to define, which is most of what separates
``corral run -- true`` from ``python -c pass``.  :func:`record` gives the
value types on the command's path what they need from a frozen, slotted
dataclass, and type checkers see it as one (PEP 681):

* an ``__init__`` taking the annotated fields in order, defaults allowed,
  calling ``__post_init__`` if the class defines it (which may normalise
  fields with ``object.__setattr__``);
* ``__slots__``, immutability, and ``__repr__``, ``__eq__`` and ``__hash__``
  over the fields;
* :func:`replace` and :func:`fields`.

Defaults must be immutable values (no ``field(default_factory=...)``).
"""

from __future__ import annotations

from collections.abc import Callable

# Typing-only imports stay out of start-up (``typing`` costs milliseconds).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_: object) -> Callable[[T], T]:
        return lambda decorated: decorated

__all__ = ["fields", "record", "replace"]


def _repr(self: Any) -> str:
    values = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
    return f"{type(self).__name__}({values})"


def _eq(self: Any, other: Any) -> bool:
    if type(other) is not type(self):
        return NotImplemented  # type: ignore[no-any-return]
    return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, name) for name in self.__slots__))


def _frozen(self: Any, name: str, value: object = None) -> None:
    raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")


def _getstate(self: Any) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in self.__slots__)


def _setstate(self: Any, state: tuple[object, ...]) -> None:
    for name, value in zip(self.__slots__, state):
        object.__setattr__(self, name, value)


@dataclass_transform(frozen_default=True)
def record(cls: type[T]) -> type[T]:
    """Makes ``cls`` a frozen, slotted value type (see the module docstring)."""
    names = tuple(n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_"))
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    namespace = {k: v for k, v in cls.__dict__.items()
                 if k not in defaults and k not in ("__dict__", "__weakref__")}
    init = _initializer(cls.__name__, names, defaults, "__post_init__" in namespace)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    namespace.update(
        __slots__=names, __init__=init, __repr__=_repr, __eq__=_eq,
        __hash__=_hash, __setattr__=_frozen, __delattr__=_frozen,
        __getstate__=_getstate, __setstate__=_setstate, __match_args__=names,
    )
    return type(cls.__name__, cls.__bases__, namespace)


def _initializer(name: str, names: tuple[str, ...], defaults: dict[str, object],
                 post_init: bool) -> Callable[..., None]:
    """The ``__init__`` of a record: the fields in order, positional or by
    name.  One function for every record, not one compiled per class:
    compiling costs a ``corral run`` some 200 µs a record."""
    count = len(names)
    set_field = object.__setattr__

    def __init__(self: Any, *args: object, **kwargs: object) -> None:
        if len(args) > count:
            raise TypeError(f"{name}() takes {count} positional arguments but "
                            f"{len(args)} were given")
        for field, value in zip(names, args):
            set_field(self, field, value)
        for field in names[len(args):]:
            if field in kwargs:
                set_field(self, field, kwargs.pop(field))
            elif field in defaults:
                set_field(self, field, defaults[field])
            else:
                raise TypeError(f"{name}() missing required argument: {field!r}")
        if kwargs:
            extra = next(iter(kwargs))
            problem = "multiple values for" if extra in names else "an unexpected keyword"
            raise TypeError(f"{name}() got {problem} argument {extra!r}")
        if post_init:
            self.__post_init__()

    return __init__


def fields(instance: object) -> tuple[str, ...]:
    """The field names of a :func:`record` instance, in order."""
    return tuple(type(instance).__slots__)  # type: ignore[attr-defined]


def replace(instance: T, **changes: object) -> T:
    """A copy of ``instance`` with some fields changed (``__post_init__`` runs again)."""
    values = {name: getattr(instance, name) for name in fields(instance)}
    unknown = set(changes) - set(values)
    if unknown:
        raise TypeError(f"{type(instance).__name__} has no field {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(instance)(**values)
