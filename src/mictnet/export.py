"""A checkpoint's model as ONNX or TorchScript, with dynamic batch and time axes (``mict export``).

ONNX uses torch's ``torch.export``-based exporter (``dynamo=True``) with the batch and time
dimensions marked dynamic; TorchScript traces the model (``torch.jit.trace``; the model's shape
arithmetic is recorded, so other lengths run). After writing the file it is reloaded —
in onnxruntime, or with ``torch.jit.load`` — and compares its logits with PyTorch's on random
clips of the training length, of 64 frames and of an odd length (traced code can bake in the
parity of the example's length): all must agree within ``1e-4``.

The format comes from the output's extension (``.onnx``; ``.pt``, ``.ts``, ``.torchscript``);
an explicit format may only confirm it. An ONNX model whose weights fit in one protobuf (< 2 GB)
is one self-contained file; a larger one keeps its weights in ``<out>.data``, and both are named.
An existing output is never replaced without ``overwrite``, and then only once the new file is
written and checked (in a folder beside it, moved over the old one).

The file carries the clip the model was trained on (its :class:`ClipSpec`, as JSON: the ONNX
model's metadata ``mictnet.clip``, the TorchScript archive's extra file ``mictnet_clip.json``),
so whoever runs it feeds the frames, crop, resize, mean and std it expects;
:func:`exported_clip` reads it back.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.clip_spec import ClipSpec
from .engine.checkpoint import load_model

FORMATS = ("onnx", "torchscript")
EXTENSIONS = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript",
              ".torchscript": "torchscript"}
ONNX_SINGLE_FILE_LIMIT = 2**31 - 2**27  # protobuf's 2 GiB, less room for the graph
TOLERANCE = 1e-4
LONG_CLIP = 64
INPUT_NAME, OUTPUT_NAME = "clip", "logits"
ONNX_CLIP_KEY, TORCHSCRIPT_CLIP_FILE = "mictnet.clip", "mictnet_clip.json"


@dataclass
class LengthCheck:
    """Exported vs PyTorch logits on one random clip."""

    frames: int
    max_abs_diff: float | None  # None when the exported model failed to run
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.max_abs_diff is not None and self.max_abs_diff <= TOLERANCE


@dataclass
class ExportReport:
    """What was written (``files``: the model, then its ONNX weights file if any), what it
    replaced, and the checks against PyTorch."""

    path: Path
    format: str
    input_size: tuple[int, int, int]
    clip: ClipSpec
    checks: list[LengthCheck]
    files: list[Path]
    replaced: list[Path]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


@contextlib.contextmanager
def _quiet_loggers(names: tuple[str, ...] = ("onnxscript", "onnx_ir", "torch.onnx")
                   ) -> Iterator[None]:
    """The ONNX optimiser logs every rewrite at INFO; keep warnings and errors only."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def onnx_data_path(out: Path) -> Path:
    """Where the ONNX exporter puts the weights of ``out`` when they are kept apart."""
    return out.with_name(out.name + ".data")


def output_format(out: Path, fmt: str | None) -> str:
    """The format of ``out``: from its extension; ``fmt``, when given, must agree with it."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    by_extension = EXTENSIONS.get(out.suffix.lower())
    known = ", ".join(EXTENSIONS)
    if fmt is None and by_extension is None:
        raise ValueError(f"{out}: cannot tell the format from the extension "
                         f"{out.suffix or '(none)'!r}; name the file {known}, or give --format")
    if fmt is not None and by_extension not in (None, fmt):
        raise ValueError(f"{out}: a {out.suffix} file is {by_extension}, not {fmt}; name the "
                         f"file {'.onnx' if fmt == 'onnx' else '.pt'} or leave out --format")
    return fmt or by_extension


def _existing_outputs(out: Path, fmt: str, overwrite: bool) -> list[Path]:
    """The files an export to ``out`` would replace; an error unless ``overwrite``."""
    if out.is_dir():
        raise ValueError(f"{out}: is a directory; give the output file's name")
    candidates = [out] + ([onnx_data_path(out)] if fmt == "onnx" else [])
    existing = [p for p in candidates if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]}: exists; pass --overwrite to replace "
                              f"{'it' if len(existing) == 1 else 'it and ' + str(existing[1])}")
    return existing


def weight_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def export_onnx(model: nn.Module, example: torch.Tensor, out: Path,
                clip: ClipSpec | None = None) -> None:
    """Write ``model`` as ONNX with dynamic batch (axis 0) and time (axis 2): one file when the
    weights fit in it, else with the weights in :func:`onnx_data_path`; ``clip`` goes into its
    metadata."""
    dynamic = {0: torch.export.Dim.DYNAMIC, 2: torch.export.Dim.DYNAMIC}
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), _quiet_loggers(), torch.no_grad():
            torch.onnx.export(model, (example,), str(out), input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], dynamic_shapes=(dynamic,),
                              dynamo=True,
                              external_data=weight_bytes(model) >= ONNX_SINGLE_FILE_LIMIT)
    except Exception as err:
        raise RuntimeError(f"ONNX export failed: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}\n{log.getvalue()}"
                           ) from err
    if clip is not None:
        import onnx

        proto = onnx.load(str(out), load_external_data=False)  # weights stay where they are
        proto.metadata_props.add(key=ONNX_CLIP_KEY, value=json.dumps(clip.to_dict()))
        onnx.save(proto, str(out))


def export_torchscript(model: nn.Module, example: torch.Tensor, out: Path,
                       clip: ClipSpec | None = None) -> None:
    """Trace ``model`` on ``example`` and save it (``clip`` as an extra file)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
        extra = {TORCHSCRIPT_CLIP_FILE: json.dumps(clip.to_dict())} if clip else {}
        traced.save(str(out), _extra_files=extra)


def exported_clip(path: str | Path) -> ClipSpec | None:
    """The clip spec an exported file carries (``None`` when it has none)."""
    path = Path(path)
    if output_format(path, None) == "onnx":
        import onnx

        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                 .metadata_props}
        text = props.get(ONNX_CLIP_KEY)
    else:
        extra = {TORCHSCRIPT_CLIP_FILE: ""}
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        text = extra[TORCHSCRIPT_CLIP_FILE] or None
    return ClipSpec.from_dict(json.loads(text)) if text else None


def _onnx_runner(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeError("checking an ONNX export needs onnxruntime: "
                           "pip install 'mictnet[onnx]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda clip: session.run(None, {INPUT_NAME: clip.numpy()})[0]


def _torchscript_runner(path: Path) -> Callable[[torch.Tensor], np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu")

    def run(clip: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return module(clip).numpy()

    return run


def check_lengths(model: nn.Module, runner: Callable[[torch.Tensor], np.ndarray],
                  input_size: tuple[int, int, int], seed: int = 0) -> list[LengthCheck]:
    """Compare on the training length, 64 frames and an odd length."""
    frames, height, width = input_size
    lengths = [frames, LONG_CLIP] + ([frames + 1] if frames % 2 == 0 else [])
    generator = torch.Generator().manual_seed(seed)
    checks = []
    for length in lengths:
        clip = torch.randn(1, 3, length, height, width, generator=generator)
        with torch.no_grad():
            expected = model(clip).numpy()
        try:
            got = runner(clip)
        except Exception as err:  # the runtime's own error types: report, don't crash
            first = str(err).strip().splitlines()
            checks.append(LengthCheck(length, None,
                                      f"{type(err).__name__}: {first[0] if first else ''}"[:300]))
            continue
        checks.append(LengthCheck(length, float(np.abs(got - expected).max())))
    return checks


def export_checkpoint(checkpoint: str | Path, fmt: str | None, out: str | Path,
                      overwrite: bool = False) -> ExportReport:
    """Export the checkpoint's model to ``out`` (format ``fmt``, or from the extension when
    ``None``) and verify the file against PyTorch; existing outputs only with ``overwrite``."""
    out = Path(out)
    fmt = output_format(out, fmt)
    replaced = _existing_outputs(out, fmt, overwrite)
    model, meta = load_model(checkpoint, "cpu")
    model = model.float().eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    clip = meta.clip
    example = torch.randn(2, 3, *clip.input_size)  # batch 2: the batch axis stays dynamic
    # Written and checked in a folder beside ``out``, then moved over the old files: an
    # interrupt or a full disk leaves the previous export as it was, and no partial file.
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        new = staging / out.name
        if fmt == "onnx":
            export_onnx(model, example, new, clip)
            runner = _onnx_runner(new)
        else:
            export_torchscript(model, example, new, clip)
            runner = _torchscript_runner(new)
        checks = check_lengths(model, runner, clip.input_size)
        for path in replaced:
            path.unlink()  # a stale weights file must not sit beside a new one-file model
        files = []
        for path in [new, *([onnx_data_path(new)] if fmt == "onnx" else [])]:
            if path.exists():
                os.replace(path, out.parent / path.name)
                files.append(out.parent / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportReport(out, fmt, clip.input_size, clip, checks, files, replaced)
