"""Exception types of fastlic.

Every failure a user can cause (a bad file, a missing image, a mismatched model) raises a subclass of
:class:`FastlicError` whose message is one readable line; the CLI prints it and exits non-zero without a
traceback. Programming errors stay ordinary Python exceptions.
"""


class FastlicError(Exception):
    """Base class of all errors that are meant to be shown to a user as one line."""


class FormatError(FastlicError):
    """A ``.flic`` file is malformed: wrong magic, unsupported version, truncated or corrupted."""


class ModelMismatchError(FastlicError):
    """A ``.flic`` file was written by another model or other weights than the decoder holds."""


class DecodeDivergenceError(FastlicError):
    """The decoder's latents disagree with the encoder's checksum (other machine, threads or weights)."""


class ImageError(FastlicError):
    """An input image cannot be read or has an unsupported layout."""


class CheckpointError(FastlicError):
    """A checkpoint cannot be read or does not fit the model."""


class CodingError(FastlicError):
    """The entropy coder was given values it cannot represent (e.g. latents far outside the model)."""
