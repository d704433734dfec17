"""Grad-CAM of the trained demo model puts its heat on the moving object, and the same network
with random weights gives unrelated maps (the model-randomisation sanity check), measured on the
synthetic test split, whose ``synth.json`` knows the object's box in every frame: what
``benchmarks/bench_explain.py`` reports, on fewer clips."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mictnet.data.synthetic import generate_dataset, object_boxes, read_metadata
from mictnet.engine.checkpoint import CheckpointMeta
from mictnet.engine.presets import preset
from mictnet.engine.resolve import derived
from mictnet.engine.run import train_run
from mictnet.inference import Predictor, load
from mictnet.serve.explain import explain
from mictnet.serve.explain_check import heat_share, randomised, rank_correlation
from mictnet.tools.demo import QUICK

pytestmark = pytest.mark.slow  # trains a model


@pytest.mark.outcome
def test_gradcam_heat_is_on_the_object_and_not_the_random_networks(
        tmp_path: Path, outcome_seed: int, outcome) -> None:
    videos = generate_dataset(tmp_path / "data", QUICK.dataset, progress=False)
    cfg = preset(QUICK.preset)  # mict demo --quick: 32x32 clips, layer2's 4x4 cells
    cfg = derived(replace(cfg, data=replace(cfg.data, root=str(videos), split=1)))
    cfg = replace(cfg, runtime=replace(cfg.runtime, seed=outcome_seed, progress=False,
                                       tensorboard=False))
    train_run(cfg, tmp_path / "run")
    trained = load(tmp_path / "run" / "last.pt")
    meta = CheckpointMeta(trained.model.spec, trained.classes, trained.clip.input_size,
                          clip=trained.clip)
    random = Predictor(randomised(trained.model, seed=outcome_seed), meta)
    synth = read_metadata(tmp_path / "data")
    tests = (tmp_path / "data" / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    ratios, random_ratios, correlations = [], [], []
    for name in tests[::7]:  # 8 clips, 2 of each class
        boxes, video = object_boxes(synth, name), videos / name
        label = trained.predict(video).label
        [mine], [theirs] = explain(trained, video, [label]), explain(random, video, [label])
        inside, area = heat_share(mine, boxes)
        ratios.append(inside / area if area else 0.0)  # no heat at all: it pointed nowhere
        inside, area = heat_share(theirs, boxes)
        random_ratios.append(inside / area if area else 0.0)
        correlations.append(rank_correlation(mine, theirs))
    print(f"heat in box / box share: trained {np.mean(ratios):.2f}, random "
          f"{np.mean(random_ratios):.2f}; rank correlation {np.mean(correlations):.3f}")
    # seed 0, Intel AMX: trained 1.61 native, 1.32 with the AVX2 cap (random 1.23 both); rank
    # correlation 0.14 native, 0.27 capped. The thresholds hold the maps' geometry (heat on the
    # object, not beside it) and the randomisation check (maps that are not the random
    # network's) with margin on every kernel set; issue 21's pointing-game target is not met
    # at the quick demo's 32x32 (benchmarks/bench_explain.py).
    outcome("explain: heat in the object's box / its share of the frame", np.mean(ratios),
            at_least=1.1)
    outcome("explain: rank correlation with the random network's maps",
            float(np.mean(correlations)), at_most=0.5)
