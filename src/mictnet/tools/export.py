"""``mict export``: parse the flags, export through :mod:`mictnet.export`, print the checks."""

from __future__ import annotations

import argparse

from ..export import FORMATS, TOLERANCE, ExportReport, export_checkpoint


def _describe_files(report: ExportReport) -> str:
    sizes = [f"{p} ({p.stat().st_size / 1e6:.1f} MB)" for p in report.files]
    if len(sizes) == 1:
        return f"wrote {sizes[0]}"
    return (f"wrote {sizes[0]} and its weights {sizes[1]}: the model needs both files, keep "
            "them together")


def format_report(report: ExportReport) -> str:
    t, h, w = report.input_size
    lines = [f"replaced the existing {path}" for path in report.replaced]
    lines.append(f"{_describe_files(report)}: {report.format}, input N x 3 x T x {h} x {w}, "
                 f"batch and time dynamic; trained on T={t}")
    lines.append(f"  clip spec (in the file's metadata): {report.clip.describe()}")
    for c in report.checks:
        what = f"{c.frames:>3} frames"
        if c.error is not None:
            lines.append(f"  {what}: FAILED to run: {c.error}")
        else:
            verdict = "OK" if c.ok else "MISMATCH"
            lines.append(f"  {what}: max |logit difference| {c.max_abs_diff:.2e} vs PyTorch "
                         f"(tolerance {TOLERANCE:g}): {verdict}")
    runtime = "onnxruntime" if report.format == "onnx" else "the reloaded TorchScript module"
    lines.append(f"{runtime} matches PyTorch" if report.ok
                 else f"{runtime} does NOT match PyTorch")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = export_checkpoint(args.checkpoint, args.format, args.out, args.overwrite)
    print(format_report(report))
    return 0 if report.ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export")
    p.add_argument("--checkpoint", required=True, help="checkpoint file or run folder")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from --out's extension (.onnx; .pt, .ts, .torchscript)")
    p.add_argument("--out", required=True,
                   help="output file: .onnx (one file; weights over 2 GB go to OUT.data beside "
                        "it) or .pt/.ts/.torchscript")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing output file (default: refuse)")
    p.set_defaults(func=run)
