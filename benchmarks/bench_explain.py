"""Does Grad-CAM show the motion? Pointing game, heat share and the model-randomisation sanity
check (Adebayo et al. 2018) of ``mict explain`` on the synthetic test split, whose ``synth.json``
knows the moving object's box in every frame.

For each test clip: (a) the pointing game, the share of frames whose heat maximum lies in the
object's box; (b) the share of the heat inside the box against the box's share of the frame;
both for the trained MiCT-ResNet-18 and for the same network with random weights; and the rank
correlation (Spearman) of the two maps. Targets: pointing >= 80% trained, clearly lower
randomised, rank correlation < 0.3.

Without ``--checkpoint`` it trains the ``mict demo --quick`` model first (the quick dataset,
the demo-quick preset, seed 0; about a minute on 2 cores). ``--png`` writes the explanation
sheet of the first test clip it classifies right (the README's docs/explain.png).

    python benchmarks/bench_explain.py [--checkpoint CKPT --data SYNTH_DIR] [--clips 48]
        [--method gradcam] [--layer auto] [--png docs/explain.png]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from mictnet.data.synthetic import generate_dataset, object_boxes, read_metadata
from mictnet.engine.presets import preset
from mictnet.engine.resolve import derived
from mictnet.engine.run import train_run
from mictnet.inference import Predictor, load
from mictnet.serve.explain import explain
from mictnet.serve.explain_check import heat_share, pointing_hits, randomised, rank_correlation
from mictnet.serve.explain_render import plot_sheet
from mictnet.tools.demo import QUICK


def train_quick(folder: Path) -> tuple[Path, Path]:
    """``(checkpoint, dataset folder)`` of the ``mict demo --quick`` recipe trained in
    ``folder``."""
    data = folder / "data"
    videos = generate_dataset(data, QUICK.dataset, progress=False)
    cfg = preset(QUICK.preset)
    cfg = derived(replace(cfg, data=replace(cfg.data, root=str(videos.resolve()), split=1)))
    cfg = replace(cfg, runtime=replace(cfg.runtime, seed=0, progress=False))
    train_run(cfg, folder / "run")
    return folder / "run" / "last.pt", data


def measure(predictor: Predictor, data: Path, clips: int, method: str, layer: str,
            png: Path | None) -> dict[str, float]:
    meta = read_metadata(data)
    if meta is None:
        raise SystemExit(f"{data}: no synth.json (give the synthetic dataset's folder)")
    tests = [line.split()[0] for line in
             (data / "ucfTrainTestlist" / "testlist01.txt").read_text().splitlines() if line]
    picks = [tests[round(i)] for i in np.linspace(0, len(tests) - 1, min(clips, len(tests)))]
    random = Predictor(randomised(predictor.model), _meta_of(predictor))
    totals = {"trained": [0, 0], "randomised": [0, 0]}
    shares = {"trained": [], "randomised": []}
    correlations, png_written = [], False
    for name in picks:
        video, boxes = data / "UCF-101" / name, object_boxes(meta, name)
        pair = {}
        for key, p in (("trained", predictor), ("randomised", random)):
            [e] = explain(p, video, [predictor.predict(video).label], layer=layer, method=method)
            hits, frames = pointing_hits(e, boxes)
            totals[key][0] += hits
            totals[key][1] += frames
            shares[key].append(heat_share(e, boxes))
            pair[key] = e
        correlations.append(rank_correlation(pair["trained"], pair["randomised"]))
        if png is not None and not png_written and pair["trained"].label == name.split("/")[0]:
            plot_sheet(pair["trained"], png, boxes=boxes)
            png_written = True
            print(f"wrote {png} for {name} ({png.stat().st_size / 1024:.0f} KB)")
    out = {"layer": pair["trained"].layer, "grid": "x".join(map(str, e.maps.shape[1:]))}
    for key in totals:
        out[f"{key} pointing"] = totals[key][0] / max(totals[key][1], 1)
        out[f"{key} heat in box"] = float(np.mean([s[0] for s in shares[key]]))
    out["box share of frame"] = float(np.mean([s[1] for s in shares["trained"]]))
    out["rank correlation"] = float(np.mean(correlations))
    out["clips"] = len(picks)
    return out


def _meta_of(predictor: Predictor):
    from mictnet.engine.checkpoint import CheckpointMeta

    return CheckpointMeta(predictor.model.spec, predictor.classes, predictor.clip.input_size,
                          clip=predictor.clip)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a trained model (default: train demo --quick)")
    parser.add_argument("--data", help="its synthetic dataset folder (with synth.json)")
    parser.add_argument("--clips", type=int, default=48, help="test clips measured")
    parser.add_argument("--method", default="gradcam", choices=("gradcam", "gradcam++"))
    parser.add_argument("--layer", default="auto")
    parser.add_argument("--png", type=Path,
                        help="write the sheet of the first clip classified right here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        if args.checkpoint:
            if not args.data:
                parser.error("--checkpoint needs --data (its synthetic dataset folder)")
            checkpoint, data = Path(args.checkpoint), Path(args.data)
        else:
            checkpoint, data = train_quick(Path(tmp))
        predictor = load(checkpoint)
        result = measure(predictor, data, args.clips, args.method, args.layer, args.png)
    print(f"{args.method} at {result['layer']} ({result['grid']} cells), {result['clips']} "
          f"test clips, CPU {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'':<22}{'trained':>10}{'randomised':>12}")
    for measure_name in ("pointing", "heat in box"):
        print(f"{measure_name:<22}{result[f'trained {measure_name}']:>10.1%}"
              f"{result[f'randomised {measure_name}']:>12.1%}")
    print(f"{'box share of frame':<22}{result['box share of frame']:>10.1%}")
    print(f"rank correlation trained vs randomised: {result['rank correlation']:.3f}")


if __name__ == "__main__":
    main()
