"""Learned codecs (every model of the registry) behind the same :class:`~fastlic.evaluation.base.Codec`
interface as JPEG: a quality point is one set of weights (one ``--checkpoint`` each), or one ``quality`` value
of a variable-rate model (bundled weights, or one ``--checkpoint``), and a file is the complete ``.flic`` file
of :func:`fastlic.codec.encode_image`, so its size counts the container header too.
"""

from __future__ import annotations

from pathlib import Path

from .base import Codec, EvaluationError


class LearnedCodec(Codec):
    """``model``: registry name; ``checkpoints``: one file per rate point (else the bundled weights);
    ``qualities``: values for a variable-rate model; ``random_init``: untrained weights (pipeline and timing
    checks only, the RD numbers are meaningless); ``ordo``: encode with online RDO of the latents
    (:mod:`fastlic.ordo`) at the λ the checkpoint was trained with, or at ``lmbda``."""

    extension = "flic"

    def __init__(self, model: str | None = None, checkpoints=None, qualities=None, device: str = "cpu",
                 random_init: bool = False, config: dict | None = None, ordo: bool = False,
                 lmbda: float | None = None):
        self.model_name = model
        if lmbda is not None and not ordo:
            raise EvaluationError("--lmbda is only used with --ordo")
        self.ordo, self.lmbda = bool(ordo), lmbda
        self.checkpoints = [str(c) for c in checkpoints or []]
        self.device = device
        self.random_init = random_init
        self.config = dict(config or {})
        if len(self.checkpoints) > 1 and qualities:
            raise EvaluationError("give either several --checkpoint files (one per rate point) or --quality values "
                                  "(of one variable-rate model), not both")
        if self.checkpoints and random_init:
            raise EvaluationError("--random-init and --checkpoint exclude each other")
        for c in self.checkpoints:
            if not Path(c).is_file():
                raise EvaluationError(f"checkpoint {c} does not exist")
        self._variable_rate = bool(qualities)
        self._models: dict = {}
        self.name = model or (Path(self.checkpoints[0]).stem if self.checkpoints else "fastlic")
        self.description = f"fastlic {self.name}" + (" (random weights)" if random_init else "") + \
            (" with oRDO at the encoder" if ordo else "")
        super().__init__(qualities)

    def default_qualities(self):
        # one point per checkpoint, labelled by its position
        return list(range(len(self.checkpoints))) if self.checkpoints else [0]

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_models"] = {}  # weights are loaded again in each worker, never pickled
        return state

    def _load(self, quality):
        if self.random_init:
            from ..registry import create_model

            try:
                m = create_model(self.model_name, **self.config)
            except KeyError as exc:
                raise EvaluationError(str(exc.args[0])) from None
            m.update()
            return m.to(self.device).eval()
        from ..codec import load_model

        if not self.checkpoints:
            ckpt = None  # the bundled weights
        else:
            ckpt = self.checkpoints[0] if self._variable_rate else self.checkpoints[quality]
        return load_model(self.model_name, ckpt, device=self.device)

    def _key(self, quality):
        return 0 if self._variable_rate else quality

    def prepare(self):
        for q in self.qualities:
            if self._key(q) not in self._models:
                self._models[self._key(q)] = self._load(q)
        first = self._models[self._key(self.qualities[0])]
        self.name = (self.model_name or first.model_name) + ("+ordo" if self.ordo else "")
        if self.ordo:  # fail before the first image when oRDO cannot run
            from ..ordo import options_for

            for m in self._models.values():
                options_for(m, self.lmbda)

    def _model(self, quality):
        if self._key(quality) not in self._models:
            self.prepare()
        return self._models[self._key(quality)]

    def encode(self, image, quality):
        from ..codec import encode_image

        model = self._model(quality)
        opts = {}
        if self.ordo:
            from ..ordo import options_for

            opts = options_for(model, self.lmbda)
        return encode_image(model, image, quality=quality if self._variable_rate else None, **opts)

    def decode(self, data, quality):
        from ..codec import decode_image

        return decode_image(data, self._model(quality))

    def info(self):
        import torch

        return {"model": self.model_name, "checkpoints": self.checkpoints, "device": self.device,
                "random_init": self.random_init, "ordo": self.ordo, "torch": torch.__version__,
                "quality_parameter": "model quality" if self._variable_rate else "checkpoint index"}
