"""The attribution methods, one entry each: name, label, whether it needs a layer, its cost, its runner, its colour.

As torchvision's `register_model`: a method is one `register_method(Method(...))` next to its runner (the built-in
ones are in methods.py), and everything else — explain_batch, the cost estimates, the trust checks, the charts'
colours, the Grad-CAM page's choices — reads this registry. An unknown name fails loudly here (AttributionError).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from torch import Tensor, nn

# run(model, images, targets or None (= the predicted class), the layer module or None, options)
#   -> (maps N x H x W, the classes explained, the layer map's size before upsampling or None)
Runner = Callable[[nn.Module, Tensor, "list[int] | None", "nn.Module | None", dict[str, Any]],
                  "tuple[Tensor, list[int], tuple[int, int] | None]"]
# passes(height, width, options) -> one image's work in Grad-CAM passes (a forward and a backward pass)
Passes = Callable[[int, int, Mapping[str, Any]], float]


class AttributionError(ValueError):
    """An explanation was asked for with an input, method, layer or target that cannot work."""


@dataclass(frozen=True)
class Method:
    name: str  # as links, the command line and results name it
    label: str  # as the page shows it
    needs_layer: bool  # computed at a chosen layer (Grad-CAM); the others work on the pixels
    passes: Passes
    run: Runner
    color: str  # its colour in every chart (Okabe-Ito, readable by colour-blind viewers)
    repeatable: bool = True  # cheap enough to repeat at every step of the randomization check


Entry = TypeVar("Entry")


class Registry(dict, Generic[Entry]):
    """Entries by their `.name`, in registration order: the one mechanism of the method and reference-map
    registries. `what` names an entry in messages ("method", "reference map")."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, entry: Entry) -> Entry:
        if entry.name in self:
            raise ValueError(f"{self.what} {entry.name!r} is already registered")
        self[entry.name] = entry
        return entry

    def lookup(self, name: object) -> Entry:
        """The entry `name`; AttributionError naming the choices for anything else."""
        entry = self.get(name) if isinstance(name, str) else None
        if entry is None:
            raise AttributionError(f"unknown {self.what} {name!r}; choose one of {list(self)}")
        return entry


_METHODS: Registry[Method] = Registry("method")


def register_method(method: Method) -> Method:
    return _METHODS.register(method)


def get_method(name: object) -> Method:
    """The registered method `name`; AttributionError naming the choices for anything else."""
    return _METHODS.lookup(name)


def method_names() -> tuple[str, ...]:
    return tuple(_METHODS)


def method_labels() -> dict[str, str]:
    return {m.name: m.label for m in _METHODS.values()}


def layer_methods() -> tuple[str, ...]:
    return tuple(m.name for m in _METHODS.values() if m.needs_layer)


def repeatable_methods() -> tuple[str, ...]:
    return tuple(m.name for m in _METHODS.values() if m.repeatable)


def method_colors() -> dict[str, str]:
    return {m.name: m.color for m in _METHODS.values()}


__all__ = ["AttributionError", "Method", "get_method", "layer_methods", "method_colors", "method_labels",
           "method_names", "register_method", "repeatable_methods"]
