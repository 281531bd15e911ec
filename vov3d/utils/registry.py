"""A name -> class registry, so configs can name networks and datasets."""

from __future__ import annotations

from typing import Callable, Iterator, TypeVar

T = TypeVar("T")


class Registry:
    """Maps names to objects. A duplicate name is an error; an unknown name lists the known ones.

    With ``case_insensitive`` (datasets), ``Kinetics`` and ``kinetics`` are the same name.
    """

    def __init__(self, kind: str, case_insensitive: bool = False) -> None:
        self.kind = kind
        self.case_insensitive = case_insensitive
        self._objects: dict[str, object] = {}

    def _key(self, name: str) -> str:
        return name.lower() if self.case_insensitive else name

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register()`` uses the object's ``__name__``."""

        def add(obj: T) -> T:
            key = self._key(name or obj.__name__)
            if key in self._objects:
                raise KeyError(
                    f"{self.kind} {key!r} is already registered (by {self._objects[key]!r}); "
                    "choose another name"
                )
            self._objects[key] = obj
            return obj

        return add

    def get(self, name: str) -> object:
        try:
            return self._objects[self._key(name)]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names()) or 'none'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._objects)

    def __contains__(self, name: str) -> bool:
        return self._key(name) in self._objects

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
