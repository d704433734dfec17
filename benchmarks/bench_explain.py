"""Does Grad-CAM show the motion? Pointing game, heat share and the model-randomisation sanity
check (Adebayo et al. 2018) of ``mict explain`` on the synthetic test split, whose ``synth.json``
knows the moving object's box in every frame.

For each test clip: (a) the pointing game, the share of frames whose heat maximum lies in the
object's box; (b) the share of the heat inside the box against the box's share of the frame;
both for the trained MiCT-ResNet-18 and for the same network with random weights; and the rank
correlation (Spearman) of the two maps. Targets: pointing >= 80% trained, clearly lower
randomised, rank correlation < 0.3.

Without ``--checkpoint`` it trains its subject first: the ``mict demo`` dataset (same classes,
clips and seed) rendered at ``--size`` pixels, and the demo recipe with MiCT-ResNet-18 at
temporal stride ``--temporal-stride`` (seed 0; about 13 minutes on 2 Zen 4 cores in bf16 at 112²
and stride 4, 54 on 2 Zen 3 cores in fp32). The demo's own model (64², stride 16) ends in 2×2
cells and one time step per clip: a map on that grid, however right, points at a moving object
in at most ~57% of the frames (``--ceiling`` prints the pointing game of the best map each grid
can hold), so the target needs finer last features. ``--work DIR`` keeps the dataset and run
there (and reuses them). ``--png`` writes the explanation sheet of the first test clip it
classifies right (the README's docs/explain.png).

    python benchmarks/bench_explain.py [--checkpoint CKPT --data SYNTH_DIR] [--size 112]
        [--temporal-stride 4] [--work DIR] [--clips 48] [--method gradcam|gradcam++|layercam]
        [--layer auto] [--png docs/explain.png] [--ceiling]
    python benchmarks/bench_explain.py --timing   # seconds per 16×160² clip, fp32 and bf16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from mictnet.data.synthetic import generate_dataset, object_boxes, read_metadata
from mictnet.engine.presets import preset
from mictnet.engine.resolve import derived
from mictnet.engine.run import train_run
from mictnet.inference import Predictor, load
from mictnet.serve.explain import METHODS, explain, interpolation_weights, peak
from mictnet.serve.explain_check import frame_hits, heat_share, randomised, rank_correlation
from mictnet.serve.explain_render import plot_sheet
from mictnet.tools.demo import FULL


def train_subject(folder: Path, size: int, temporal_stride: int) -> tuple[Path, Path]:
    """``(checkpoint, dataset folder)`` of the demo recipe at ``size``² and
    ``temporal_stride``, trained in ``folder`` (a finished run there is reused)."""
    data = folder / "data"
    videos = generate_dataset(data, replace(FULL.dataset, size=(size, size)))
    checkpoint = folder / "run" / "last.pt"
    if checkpoint.is_file():
        return checkpoint, data
    cfg = preset(FULL.preset)
    cfg = replace(cfg, model=replace(cfg.model, temporal_stride=temporal_stride),
                  data=replace(cfg.data, root=str(videos.resolve()), split=1, crop_size=size,
                               resize=(size, size)),
                  runtime=replace(cfg.runtime, seed=0, eval_every=cfg.schedule.epochs))
    train_run(derived(cfg), folder / "run")
    return checkpoint, data


def ceilings(data: Path, grids: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """The pointing game of the best map each ``(time steps, cells across)`` grid can hold
    (one hot cell per step, the one nearest the object's mean centre over the step, cells
    drawn at the middle of their blocks) on the test split's clips: what Grad-CAM on that
    grid could reach at most."""
    meta = read_metadata(data)
    size = meta["config"]["size"][0]
    tests = [line.split()[0] for line in
             (data / "ucfTrainTestlist" / "testlist01.txt").read_text().splitlines() if line]
    out = {}
    for steps, cells in grids:
        up = interpolation_weights((np.arange(cells) + 0.5) * size / cells, np.arange(size))
        hits = frames = 0
        for name in tests:
            boxes = object_boxes(meta, name)
            for span in np.array_split(np.arange(len(boxes)), steps):
                centre = (boxes[span, :2] + boxes[span, 2:]).mean(axis=0) / 2
                x, y = np.clip(np.floor(centre * cells / size), 0, cells - 1).astype(int)
                hot = np.zeros((cells, cells), np.float32)
                hot[y, x] = 1
                px, py = peak(up @ hot @ up.T)
                for x0, y0, x1, y1 in boxes[span]:
                    if x1 > x0 and y1 > y0:
                        frames += 1
                        hits += bool(x0 <= px < x1 and y0 <= py < y1)
        out[steps, cells] = hits / max(frames, 1)
    return out


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
    by_class: dict[str, list[int]] = {}  # the trained model's [hits, frames] per class
    by_frames: dict[int, list[int]] = {}  # ... per 4 frames of the clip
    shares = {"trained": [], "randomised": []}
    correlations, png_written = [], False
    for name in picks:
        video, boxes = data / "UCF-101" / name, object_boxes(meta, name)
        pair = {}
        for key, p in (("trained", predictor), ("randomised", random)):
            [e] = explain(p, video, [predictor.predict(video).label], layer=layer, method=method)
            hits = frame_hits(e, boxes)
            totals[key][0] += sum(hits.values())
            totals[key][1] += len(hits)
            if key == "trained":
                for frame, hit in hits.items():
                    for tally in (by_class.setdefault(name.split("/")[0], [0, 0]),
                                  by_frames.setdefault(frame // 4, [0, 0])):
                        tally[0] += hit
                        tally[1] += 1
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
    out["by class"] = {k: h / n for k, (h, n) in sorted(by_class.items())}
    out["by frames"] = {f"frames {4 * k}-{4 * k + 3}": h / n
                        for k, (h, n) in sorted(by_frames.items())}
    return out


def timing(rounds: int = 2) -> None:
    """Seconds of ``explain`` on a 16-frame 320×240 clip with MiCT-ResNet-18 at the recipe's
    16×160² (random weights), main answer included, in fp32 and (where native) bf16, with and
    without the receptive-field measurement."""
    from mictnet.data.clip_spec import ClipSpec
    from mictnet.engine.checkpoint import CheckpointMeta
    from mictnet.engine.precision import is_native
    from mictnet.models import build_model

    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=101).eval()
    clip = ClipSpec()
    meta = CheckpointMeta(model.spec, [f"c{i}" for i in range(101)], clip.input_size, clip=clip)
    amps = ["none"] + (["bf16"] if is_native(torch.bfloat16, torch.device("cpu")) else [])
    grid = np.arange(5, dtype=np.float32) * 32  # 5 cells of 32 px: a stand-in for the centres
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clip.avi")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 240))
        for t in range(16):
            frame = np.full((240, 320, 3), 40, np.uint8)
            cv2.circle(frame, (40 + 10 * t, 120), 30, (200, 60, 60), -1)
            writer.write(frame)
        writer.release()
        for amp in amps:
            predictor = Predictor(model, meta, amp=amp)
            seconds = {}
            for label, centres in (("explain", None),
                                   ("without the centres", (np.zeros(1, np.float32), grid, grid))):
                explain(predictor, path, centres=centres)  # warm-up
                start = time.perf_counter()
                for _ in range(rounds):
                    explain(predictor, path, centres=centres)
                seconds[label] = (time.perf_counter() - start) / rounds
            print(f"16x160² clip, mict_resnet18, {predictor.precision.dtype or 'fp32'}: "
                  f"{seconds['explain']:.2f} s ({seconds['without the centres']:.2f} s without "
                  f"measuring the receptive-field centres), CPU "
                  f"{torch.backends.cpu.get_cpu_capability()}")


def _meta_of(predictor: Predictor):
    from mictnet.engine.checkpoint import CheckpointMeta

    return CheckpointMeta(predictor.model.spec, predictor.classes, predictor.clip.input_size,
                          clip=predictor.clip)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a trained model (default: train the subject)")
    parser.add_argument("--data", help="its synthetic dataset folder (with synth.json)")
    parser.add_argument("--clips", type=int, default=48, help="test clips measured")
    parser.add_argument("--method", default="gradcam", choices=METHODS)
    parser.add_argument("--layer", default="auto")
    parser.add_argument("--png", type=Path,
                        help="write the sheet of the first clip classified right here")
    parser.add_argument("--size", type=int, default=112, help="the subject's frame side")
    parser.add_argument("--temporal-stride", type=int, default=4, choices=(4, 16),
                        help="the subject's temporal stride")
    parser.add_argument("--work", type=Path, help="keep (and reuse) the subject's data and run")
    parser.add_argument("--ceiling", action="store_true",
                        help="also print each grid's best possible pointing game")
    parser.add_argument("--timing", action="store_true",
                        help="only time one 16x160² clip (fp32, bf16 where native) and exit")
    args = parser.parse_args()
    if args.timing:
        timing()
        return
    with tempfile.TemporaryDirectory(prefix="bench-explain-") as tmp:
        if args.checkpoint:
            if not args.data:
                parser.error("--checkpoint needs --data (its synthetic dataset folder)")
            checkpoint, data = Path(args.checkpoint), Path(args.data)
        else:
            checkpoint, data = train_subject(args.work or Path(tmp), args.size,
                                             args.temporal_stride)
        if args.ceiling:
            for (steps, cells), share in ceilings(data, [(1, 2), (4, 2), (2, 4), (4, 4),
                                                        (4, 5), (8, 8)]).items():
                print(f"ceiling: {steps} step(s) of {cells}x{cells} cells point at most "
                      f"{share:.1%} of frames")
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
    for breakdown in ("by class", "by frames"):
        print(f"trained pointing {breakdown}: " + ", ".join(
            f"{key} {share:.0%}" for key, share in result[breakdown].items()))


if __name__ == "__main__":
    main()
