"""The transfer study: does pre-training on a large source dataset change the ranking?

Every model reaches the target (UCF-101 by default) two ways, on each of its splits and seeds:

- ``direct``: the target recipe from ImageNet weights (``pretrained="none"``: from scratch);
- ``via-source``: the source recipe (Kinetics by default) from the same start, trained once per
  model, then the fine-tuning recipe from its final weights (``model.init_from``).

Each run is a ``mict train`` run folder under ``OUT/<model>/`` (``source``,
``direct/splitS-seedK``, ``via-source/splitS-seedK``): a finished run with the same configuration
is reused and an unfinished one resumed, so a stopped study continues where it stopped. The final
weights of every target run are evaluated with the published protocol (the crossval rules of
:func:`.experiments.train_and_evaluate`), and :func:`write_outputs` writes the comparison as
``OUT/transfer.md``, ``OUT/transfer.json`` and ``OUT/transfer.png``.

:class:`StudyConfig` declares the study's options once: ``mict transfer-study`` takes them as
flags (:func:`.config_flags.add_section_flags`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .distributed import env_dist_info, resolve_device
from .experiments import ensure_trained, mean_std, percent_pm, train_and_evaluate
from .measure import model_costs
from .plots import plot_grouped_bars
from .presets import preset
from .resolve import derived
from .runlog import read_metrics_csv
from .train import NonFiniteLossError
from .train_config import (
    DatasetName,
    TrainConfig,
    config_from_dict,
    option,
    parse_assignment,
    path_value,
    weights_value,
)

log = logging.getLogger("mictnet")

ARMS = ("direct", "via-source")


@dataclass(frozen=True)
class Recipe:
    """The presets of a model's runs: on the source, on the target directly, and fine-tuning
    the source run on the target; ``finetune_set`` changes the last one (a nested config)."""

    source: str
    direct: str
    finetune: str
    finetune_set: dict[str, Any] = field(default_factory=dict)


PUBLISHED: dict[str, Recipe] = {
    "mict_resnet18": Recipe("mict18-kinetics400", "mict18-ucf101", "mict18-ucf101-from-k400"),
    "resnet3d_18": Recipe("r3d18-kinetics400", "r3d18-ucf101", "r3d18-ucf101-from-k400"),
}
"""``recipe="published"``: Kinetics-400 then UCF-101, the published-style recipes (a GPU's)."""

DEMO = Recipe("demo-quick", "demo-quick", "demo-quick", {"optim": {"backbone_lr_mult": 0.1}})
"""``recipe="demo"``, any model, CPU-sized for the synthetic data: the quick demo's recipe for
every run, and for fine-tuning the backbone at a tenth of the learning rate, as the published
fine-tuning presets do."""

RecipeName = Literal["published", "demo"]


def _pretrained_value(text: str) -> str:
    """A source, ``none`` or a weights file made absolute."""
    value = weights_value(text)
    return "none" if value is None else value


@dataclass
class StudyConfig:
    """What a transfer study trains and where it writes."""

    source_root: str | None = option(None, "the source dataset's root", flag="source-root",
                                     metavar="PATH", parse=path_value)
    target_root: str | None = option(None, "the target dataset's root", flag="target-root",
                                     metavar="PATH", parse=path_value)
    source_dataset: DatasetName = option("kinetics", "the source's layout",
                                         flag="source-dataset")
    target_dataset: DatasetName = option("ucf101", "the target's layout", flag="target-dataset")
    models: list[str] = option(list(PUBLISHED), "registered model names (see: mict models)",
                               flag="models", metavar="MODEL")
    recipe: RecipeName = option(
        "published",
        "published: per model, the source preset "
        f"({', '.join(r.source for r in PUBLISHED.values())}), the target one "
        f"({', '.join(r.direct for r in PUBLISHED.values())}) and the fine-tuning one "
        f"({', '.join(r.finetune for r in PUBLISHED.values())}); demo: demo-quick for every run "
        "and model (CPU, synthetic data), fine-tuning the backbone at 0.1x the lr",
        flag="recipe")
    pretrained: str | None = option(
        None, "the start of the source and direct runs: imagenet, kinetics400 (the torchvision "
              "video models), a weights file or none",
        flag="pretrained", metavar="SOURCE|FILE|none", parse=_pretrained_value)
    folds: list[Literal[1, 2, 3]] = option([1, 2, 3], "the target's splits", flag="folds")
    seeds: list[int] = option([0], "training seeds of the target runs, each on every split",
                              flag="seeds")
    sets: list[str] = option([], "override a config value of every run (repeatable)",
                             flag="set", metavar="SECTION.KEY=VALUE")
    source_sets: list[str] = option(
        [], "override a config value of the source runs only, after --set (repeatable)",
        flag="source-set", metavar="SECTION.KEY=VALUE")
    out: str = option("runs/transfer-study", "the study's folder: run folders and tables",
                      flag="out", metavar="DIR")

    def __post_init__(self) -> None:
        for name in ("source_root", "target_root"):
            if getattr(self, name) is None:
                raise ValueError(f"the transfer study needs --{name.replace('_', '-')}")
        for name in ("models", "folds", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"--{name}: give at least one")
        if self.pretrained is not None:
            self.pretrained = _pretrained_value(self.pretrained)
        for model in self.models:
            recipe(self.recipe, model)  # an unknown recipe fails before anything trains

    @property
    def start(self) -> dict[str, Any]:
        """The ``model`` changes of the source and direct runs (``--pretrained``)."""
        if self.pretrained is None:
            return {}
        return {"pretrained": weights_value(self.pretrained)}


def recipe(name: str, model: str) -> Recipe:
    """The recipe ``name`` for ``model``."""
    if name == "demo":
        return DEMO
    if model not in PUBLISHED:
        raise ValueError(f"no published transfer recipe for {model} (there are: "
                         f"{', '.join(PUBLISHED)}); use --recipe demo and --set overrides")
    return PUBLISHED[model]


def _resolve(name: str, changes: list[tuple[str, dict[str, Any]]]) -> TrainConfig:
    """The preset ``name`` with each ``(where, nested dict)`` change applied in turn; synthetic
    data mirrors only its flip-safe classes."""
    cfg = preset(name)
    for where, change in changes:
        cfg = config_from_dict(change, cfg, where)
    return derived(cfg)


def _sets(option_name: str, assignments: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{option_name} {text}", parse_assignment(text)) for text in assignments]


def source_config(study: StudyConfig, model: str) -> TrainConfig:
    """The configuration of ``model``'s run on the source."""
    fixed = {"model": {"name": model, **study.start},
             "data": {"dataset": study.source_dataset, "root": study.source_root}}
    return _resolve(recipe(study.recipe, model).source,
                    [*_sets("--set", study.sets), *_sets("--source-set", study.source_sets),
                     ("transfer-study", fixed)])


def target_config(study: StudyConfig, model: str, arm: str, split: int, seed: int,
                  source_weights: Path | None = None) -> TrainConfig:
    """The configuration of ``model``'s run on target split ``split`` with seed ``seed``, from
    its start (``direct``) or from ``source_weights`` (``via-source``)."""
    r = recipe(study.recipe, model)
    fixed: dict[str, Any] = {"model": {"name": model},
                             "data": {"dataset": study.target_dataset,
                                      "root": study.target_root, "split": split},
                             "runtime": {"seed": seed, "save_best": False}}  # final weights
    if arm == "direct":
        name, changes = r.direct, []
        fixed["model"].update(study.start)
    else:
        name, changes = r.finetune, [(f"recipe {study.recipe}", r.finetune_set)]
        fixed["model"]["init_from"] = str(Path(source_weights).resolve())
    return _resolve(name, [*changes, *_sets("--set", study.sets), ("transfer-study", fixed)])


def start_name(pretrained: str | None) -> str:
    """What a run starts from: ``ImageNet``, ``scratch`` or a weight file's name."""
    if pretrained is None:
        return "scratch"
    return "ImageNet" if pretrained == "imagenet" else Path(pretrained).name


def _last_test_top1(run_dir: Path) -> float | None:
    """The last test top-1 that training measured in ``run_dir`` (``None``: never tested)."""
    tested = [r["test_top1"] for r in read_metrics_csv(run_dir / "metrics.csv")
              if r.get("test_top1") is not None]
    return tested[-1] if tested else None


@contextmanager
def _named(run_dir: Path) -> Iterator[None]:
    """A run that diverges inside is named by its folder."""
    try:
        yield
    except NonFiniteLossError as err:
        raise NonFiniteLossError(f"{run_dir}: {err} The study stops; its finished runs are kept "
                                 "and reused by the next start.") from None


def run_study(study: StudyConfig) -> dict[str, Any] | None:
    """Train and evaluate every run of ``study`` (reusing finished ones), write its outputs and
    return the summary (:func:`study_summary`); ``None`` in the other processes of a
    distributed run."""
    out = Path(study.out)
    total = len(study.models) * (1 + len(ARMS) * len(study.folds) * len(study.seeds))
    done = 0
    rows: list[dict[str, Any]] = []
    sources: dict[str, dict[str, Any]] = {}
    for model in study.models:
        source_cfg, source_dir = source_config(study, model), out / model / "source"
        done += 1
        log.info("transfer study [%d/%d]: %s on the source (%s, %s) in %s", done, total, model,
                 study.source_dataset, source_cfg.preset, source_dir)
        with _named(source_dir):
            ensure_trained(source_cfg, source_dir)
        sources[model] = {"run": str(source_dir), "preset": source_cfg.preset,
                          "start": start_name(source_cfg.model.pretrained),
                          "test_top1": _last_test_top1(source_dir)}
        for split in study.folds:
            for seed in study.seeds:
                for arm in ARMS:
                    cfg = target_config(study, model, arm, split, seed, source_dir / "last.pt")
                    run_dir = out / model / arm / f"split{split}-seed{seed}"
                    done += 1
                    log.info("transfer study [%d/%d]: %s %s, split %d, seed %d (%s) in %s",
                             done, total, model, arm, split, seed, cfg.preset, run_dir)
                    with _named(run_dir):
                        report = train_and_evaluate(cfg, run_dir)
                    if report is None:
                        continue  # not the main process
                    m = report.metrics
                    rows.append({"model": model, "arm": arm, "split": split, "seed": seed,
                                 "start": start_name(cfg.model.pretrained), "top1": m.top1,
                                 "top5": m.top5, "mean_class_accuracy": m.mean_class_accuracy,
                                 "num_samples": m.num_samples, "num_classes": len(report.classes),
                                 "run": str(run_dir)})
                    log.info("%s %s split %d seed %d: %s", model, arm, split, seed,
                             report.summary())
    if not env_dist_info().is_main:
        return None
    costs, device = {}, None
    for model in study.models:  # measured as mict crossval and mict benchmark measure them
        cfg = target_config(study, model, "direct", study.folds[0], study.seeds[0])
        device = resolve_device(cfg.runtime.device)
        classes = next(r["num_classes"] for r in rows if r["model"] == model)
        costs[model] = model_costs(cfg, classes, device)
    summary = study_summary(study, rows, sources, costs, str(device))
    write_outputs(out, summary)
    return summary


def study_summary(study: StudyConfig, rows: list[dict[str, Any]],
                  sources: dict[str, dict[str, Any]], costs: dict[str, dict[str, Any]],
                  device: str) -> dict[str, Any]:
    """Means and standard deviations per model and arm, the gain of going via the source
    (paired by split and seed), the rankings, and the Markdown table."""
    table = []
    for model in study.models:
        for arm in ARMS:
            runs = [r for r in rows if r["model"] == model and r["arm"] == arm]
            top1, top5 = (mean_std([r[k] for r in runs]) for k in ("top1", "top5"))
            start = runs[0]["start"] if arm == "direct" else f"{sources[model]['start']} → source"
            table.append({"model": model, "arm": arm, "init": start, "runs": len(runs),
                          "top1_mean": top1[0], "top1_std": top1[1], "top5_mean": top5[0],
                          "top5_std": top5[1], "top1": [r["top1"] for r in runs],
                          "top5": [r["top5"] for r in runs], **costs[model]})
    gains = {}
    for model in study.models:
        by_run = {(r["split"], r["seed"], r["arm"]): r["top1"] for r in rows
                  if r["model"] == model}
        diffs = [by_run[(s, k, "via-source")] - by_run[(s, k, "direct")]
                 for s in study.folds for k in study.seeds]
        mean, std = mean_std(diffs)
        gains[model] = {"top1_mean": mean, "top1_std": std, "wins": sum(d > 0 for d in diffs),
                        "pairs": len(diffs), "top1": diffs}
    means = {(t["model"], t["arm"]): t["top1_mean"] for t in table}
    rankings = {arm: sorted(study.models, key=lambda m, arm=arm: -means[m, arm])
                for arm in ARMS}
    summary = {
        "source": {"dataset": study.source_dataset, "root": study.source_root},
        "target": {"dataset": study.target_dataset, "root": study.target_root},
        "recipe": study.recipe, "models": study.models, "splits": study.folds,
        "seeds": study.seeds, "device": device, "table": table, "gains": gains,
        "rankings": rankings, "sources": sources, "runs": rows,
    }
    return {**summary, "markdown": transfer_markdown(summary)}


def transfer_markdown(summary: dict[str, Any]) -> str:
    """The comparison table, the gains and the rankings as Markdown."""
    device = summary["device"].split(":")[0]
    src, tgt = summary["source"], summary["target"]
    lines = [
        f"source: {src['dataset']} at {src['root']}; target: {tgt['dataset']} at {tgt['root']}, "
        f"splits {' '.join(map(str, summary['splits']))} × seeds "
        f"{' '.join(map(str, summary['seeds']))} (final weights, first frames, centre crop)",
        "",
        f"| model | init | runs | top-1 (%) | top-5 (%) | params (M) | frames/s ({device}) |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {t['model']} | {t['init']} | {t['runs']} | {percent_pm(t['top1'])} | "
              f"{percent_pm(t['top5'])} | {t['params_m']:.1f} | {t['frames_per_s']:.0f} |"
              for t in summary["table"]]
    lines += ["", "via the source minus direct, top-1 per split and seed:"]
    for model, g in summary["gains"].items():
        spread = "" if g["top1_std"] is None else f" ± {100 * g['top1_std']:.1f}"
        lines.append(f"- {model}: {100 * g['top1_mean']:+.1f}{spread} points (better in "
                     f"{g['wins']} of {g['pairs']})")
    lines += ["", "source runs:"]
    for model, s in summary["sources"].items():
        tested = "" if s["test_top1"] is None else f", {100 * s['test_top1']:.1f}% top-1 on " \
                                                   "its test set"
        lines.append(f"- {model}: {s['preset']} from {s['start']}{tested}")
    if len(summary["models"]) > 1:
        lines += ["", "ranking by top-1:"]
        lines += [f"- {arm}: {' > '.join(models)}" for arm, models in
                  summary["rankings"].items()]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, summary: dict[str, Any]) -> None:
    """``transfer.md``, ``transfer.json`` and the bar chart ``transfer.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.md").write_text(summary["markdown"], encoding="utf-8")
    data = {k: v for k, v in summary.items() if k != "markdown"}
    (out / "transfer.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    series = {}
    for arm in ARMS:
        rows = [t for t in summary["table"] if t["arm"] == arm]
        series[rows[0]["init"]] = ([100 * t["top1_mean"] for t in rows],
                                   [None if t["top1_std"] is None else 100 * t["top1_std"]
                                    for t in rows])
    plot_grouped_bars(summary["models"], series, out / "transfer.png", "top-1 accuracy (%)",
                      f"{summary['target']['dataset']}: direct vs via the source "
                      f"({summary['source']['dataset']})")
