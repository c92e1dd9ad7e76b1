"""The one walk of a botocore model: each shape compiled once, for one purpose.

Every use trentd makes of the model's shapes — checking a request (inputs.py), writing an answer
as JSON (json11.py) or XML (query.py), folding Query form fields (query.py), rendering the audit's
requestParameters/responseElements (redaction.py) — is a ``ShapeWalker``: it follows structure
members, list elements and map values from an operation's input or output shape, compiles each
shape once into a closure and reuses it wherever the shape appears again. A recursive shape gets
a forwarding stub while it is being compiled, so the walk terminates. ``model.Service`` runs the
walkers once per operation at start; a request only calls the closures.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ShapeWalker(ABC, Generic[T]):
    """Compiles shapes by kind (``structure``, ``list``, ``map``, anything else a ``leaf``) and
    caches the result per shape name; subclasses say what a compiled shape is."""

    def __init__(self, shapes: dict[str, dict]):
        self.shapes = shapes
        self._cache: dict[str, T] = {}

    def shape(self, name: str) -> T:
        if name in self._cache:
            return self._cache[name]
        self._cache[name] = self.stub(name)  # a recursive shape reaches itself through the stub
        spec = self.shapes[name]
        kind = spec["type"]
        if kind == "structure":
            built = self.compile_structure(name, spec)
        elif kind == "list":
            built = self.compile_list(name, spec)
        elif kind == "map":
            built = self.compile_map(name, spec)
        else:
            built = self.compile_leaf(name, spec)
        self._cache[name] = built
        return built

    def kind(self, name: str) -> str:
        return self.shapes[name]["type"]

    def stub(self, name: str) -> T:
        """Forwards to the compiled shape once it exists (only recursive shapes call it)."""
        cache = self._cache

        def forward(*args: Any) -> Any:
            return cache[name](*args)  # type: ignore[operator]

        return forward  # type: ignore[return-value]

    # what each kind compiles to
    @abstractmethod
    def compile_structure(self, name: str, shape: dict) -> T: ...

    @abstractmethod
    def compile_list(self, name: str, shape: dict) -> T: ...

    @abstractmethod
    def compile_map(self, name: str, shape: dict) -> T: ...

    @abstractmethod
    def compile_leaf(self, name: str, shape: dict) -> T: ...

