"""Benchmark 3: parameters and kMAC per pixel of every model, per component.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` during one eval-mode ``forward`` (which runs
the same entropy-parameter path as ``compress``/``decompress``): convolutions, transposed convolutions, matrix
products and attention; one MAC = 2 FLOPs as the counter reports them. Element-wise work (GDN's square roots,
softmax, activations) and the entropy coder are not counted. A component is a direct child module of the model;
the entries of a ``ModuleList`` (one module per slice) are summed into their list. kMAC/px divides by the
pixels of the input image; it is reported at two sizes because attention-based context models need not be
linear in the pixel count. Encoder MACs exclude the synthesis transform ``g_s``; decoder MACs exclude the
analysis transforms ``g_a`` and ``h_a``.

    python benchmarks/complexity.py                      # every registered model
    python benchmarks/complexity.py --models mlicpp-tiny --sizes 256
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import _common as C

ENCODER_ONLY = ("g_a", "h_a")
DECODER_ONLY = ("g_s",)


def count(model, h: int, w: int, device: str = "cpu") -> dict:
    """{component: MACs} of one forward pass on an ``h x w`` image, and the total."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    root = type(model).__name__
    x = torch.rand(1, 3, h, w, device=device)
    with FlopCounterMode(display=False, depth=None) as fc, torch.no_grad():
        model(x)
    macs = defaultdict(int)
    total = 0
    for name, ops in fc.get_flop_counts().items():
        parts = name.split(".")
        if name == root:
            total = sum(ops.values()) // 2
        if parts[0] != root or len(parts) < 2:
            continue
        if len(parts) == 2 or (len(parts) == 3 and parts[2].isdigit()):
            macs[parts[1]] += sum(ops.values()) // 2
    return {"total": total, "components": dict(macs)}


def parameters(model) -> dict:
    return {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}


def run_model(name: str, sizes, device: str) -> dict:
    m = C.make_model(name, None, device)
    params = parameters(m)
    out = {"model": name, "parameters": sum(params.values()), "component_parameters": params, "sizes": []}
    for size in sizes:
        h, w = C.parse_size(size)
        c = count(m, h, w, device)
        px = h * w
        comp = {k: v / px / 1e3 for k, v in c["components"].items()}
        enc = sum(v for k, v in comp.items() if k not in DECODER_ONLY)
        dec = sum(v for k, v in comp.items() if k not in ENCODER_ONLY)
        out["sizes"].append({"size": C.size_label(h, w), "pixels": px, "kmac_per_px": c["total"] / px / 1e3,
                             "encoder_kmac_per_px": enc, "decoder_kmac_per_px": dec,
                             "component_kmac_per_px": comp})
        print(f"{name} {C.size_label(h, w)}: {sum(params.values()) / 1e6:.2f} M params, "
              f"{c['total'] / px / 1e3:.1f} kMAC/px (enc {enc:.1f}, dec {dec:.1f})", flush=True)
    return out


def markdown(data: dict) -> str:
    out = [f"# Parameters and kMAC/px per component\n\nMachine: {data['machine']['summary']}. "
           f"Command: `{data['command']}`. Counted with torch.utils.flop_counter (conv/matmul/attention MACs; "
           "element-wise ops and the entropy coder excluded).\n\n"]
    rows = []
    for m in data["models"]:
        for s in m["sizes"]:
            rows.append([m["model"], f"{m['parameters'] / 1e6:.3f} M", s["size"], s["kmac_per_px"],
                         s["encoder_kmac_per_px"], s["decoder_kmac_per_px"]])
    out.append(C.md_table(["model", "parameters", "size", "kMAC/px (forward)", "encoder kMAC/px",
                           "decoder kMAC/px"], rows))
    for m in data["models"]:
        s = m["sizes"][-1]
        out.append(f"\n## {m['model']} components (kMAC/px at {s['size']})\n\n")
        names = list(m["component_parameters"])
        out.append(C.md_table(["component", "parameters", "kMAC/px"],
                              [[n, m["component_parameters"][n], s["component_kmac_per_px"].get(n, 0.0)]
                               for n in names]))
    return "".join(out)


def main():
    from fastlic.registry import list_models

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    p.add_argument("--sizes", nargs="+", default=["256", "768x512"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", help="default results/benchmarks")
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    models = args.models or list_models()
    data = {"benchmark": "complexity", "command": C.command_line(), "machine": C.machine(args.device, args.threads),
            "counter": "torch.utils.flop_counter.FlopCounterMode (MAC = FLOP / 2)", "models": []}
    for name in models:
        data["models"].append(run_model(name, args.sizes, args.device))
    print("wrote", *C.write_outputs("complexity", data, markdown(data), args.out_dir))


if __name__ == "__main__":
    main()
