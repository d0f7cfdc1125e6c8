"""Model registry: ``create_model(name, **config)`` and ``list_models()`` (in the spirit of timm)."""

from __future__ import annotations

import fnmatch
from typing import Callable

_REGISTRY: dict[str, Callable] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str = ""):
    """Decorator: register a factory ``fn(**config) -> CompressionModel`` under ``name``."""

    def wrap(fn):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().split("\n")[0]
        return fn

    return wrap


def _ensure_loaded():
    from . import models  # noqa: F401  (registers the built-in models)


def list_models(pattern: str = "*") -> list[str]:
    """Names of registered models matching a shell-style ``pattern``, sorted."""
    _ensure_loaded()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def describe_model(name: str) -> str:
    _ensure_loaded()
    return _DESCRIPTIONS.get(name, "")


def create_model(name: str, **config):
    """Build a registered model with random weights; keyword arguments override its configuration.

    Raises ``KeyError`` with the list of known names for an unknown ``name``.
    """
    _ensure_loaded()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    model = _REGISTRY[name](**config)
    model.model_name = name
    return model
