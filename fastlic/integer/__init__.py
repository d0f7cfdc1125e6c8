"""Exact integer entropy models (issue 40): integer primitives (:mod:`.ops`), two-mode quantized layers
(:mod:`.nodes`) and MLIC++'s entropy-parameter path by post-training quantization (:mod:`.mlicpp`)."""
