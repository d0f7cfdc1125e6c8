"""Evaluation of codecs on image sets: metrics (:mod:`.metrics`), classic and external codecs (:mod:`.classic`,
:mod:`.external`), learned codecs (:mod:`.learned`), the runner (:mod:`.runner`), BD-rates (:mod:`.bdrate`) and RD
plots (:mod:`.plot`). Needs the ``eval`` extra: ``pip install 'fastlic[eval]'``."""

from .base import Codec, CodecUnavailableError, EvaluationError

__all__ = ["Codec", "CodecUnavailableError", "EvaluationError", "get_codec", "codec_names"]


def codec_names() -> list[str]:
    from .classic import CLASSIC_CODECS
    from .external import EXTERNAL_CODECS

    return [*CLASSIC_CODECS, *EXTERNAL_CODECS]


def get_codec(name: str, qualities=None) -> Codec:
    """A classic or external codec by name, with its default quality sweep unless ``qualities`` is given."""
    from .classic import CLASSIC_CODECS
    from .external import EXTERNAL_CODECS

    table = {**CLASSIC_CODECS, **EXTERNAL_CODECS}
    if name not in table:
        raise EvaluationError(f"unknown codec {name!r}; choose one of {', '.join(table)}")
    return table[name](qualities)
