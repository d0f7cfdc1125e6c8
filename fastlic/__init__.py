"""fastlic: learned image compression with fast context models (MLIC++, eContextformer).

    >>> import fastlic
    >>> fastlic.list_models()                      # doctest: +SKIP
    >>> model = fastlic.create_model("mlicpp-tiny").eval()
"""

__version__ = "0.1.0"

from .errors import FastlicError  # noqa: E402
from .registry import create_model, list_models  # noqa: E402

__all__ = ["__version__", "create_model", "list_models", "FastlicError"]
