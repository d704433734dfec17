"""``mict export``: ONNX (onnxruntime) and TorchScript round trips with a dynamic time axis."""

from __future__ import annotations

import importlib
import re

import numpy as np
import pytest
import torch

from mictnet import export
from mictnet.cli import main
from mictnet.data.clip_spec import ClipSpec
from mictnet.engine.checkpoint import CheckpointMeta, load_model, save_checkpoint
from mictnet.models import build_model
from mictnet.tools.export import format_report

INPUT = (8, 32, 32)
CLIP = ClipSpec(frames=8, stride=2, resize=(48, 40), crop=32, mean=(0.5, 0.5, 0.5))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=3)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model, CheckpointMeta(model.spec, ["a", "b", "c"], INPUT, clip=CLIP))
    return path


def test_onnx_round_trip_with_dynamic_batch_and_time(checkpoint, tmp_path, capsys):
    onnx = importlib.import_module("onnx")
    ort = importlib.import_module("onnxruntime")
    out = tmp_path / "model.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--format", "onnx",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime matches PyTorch" in text
    assert sorted(tmp_path.iterdir()) == [out]  # one self-contained file, no weights sidecar
    assert f"wrote {out} (" in text and "MB)" in text
    assert " 8 frames" in text and "64 frames" in text and " 9 frames" in text
    assert export.exported_clip(out) == CLIP  # the model's preprocessing travels with it
    [clip] = onnx.load(str(out)).graph.input
    dims = clip.type.tensor_type.shape.dim
    assert dims[0].dim_param and dims[2].dim_param  # batch and time are symbolic
    assert [d.dim_value for d in dims[1:2] + dims[3:]] == [3, 32, 32]
    # An independent check at a length and batch the export never saw.
    model, _ = load_model(checkpoint)
    x = torch.randn(3, 3, 23, 32, 32)
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {"clip": x.numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x).numpy(), atol=1e-4)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_torchscript_round_trip(checkpoint, tmp_path):
    out = tmp_path / "model.pt"
    report = export.export_checkpoint(checkpoint, "torchscript", out)
    assert report.ok and [c.frames for c in report.checks] == [8, 64, 9]
    assert report.clip == CLIP and export.exported_clip(out) == CLIP
    assert all(c.max_abs_diff <= export.TOLERANCE for c in report.checks)
    module = torch.jit.load(str(out))
    model, _ = load_model(checkpoint)
    x = torch.randn(2, 3, 40, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(module(x), model(x), atol=1e-4, rtol=0)


def test_a_mismatch_fails_the_command(checkpoint, tmp_path, monkeypatch, capsys):
    real_runner = export._torchscript_runner

    def off_by_a_little(path):
        run = real_runner(path)
        return lambda clip: run(clip) + 1e-3

    monkeypatch.setattr(export, "_torchscript_runner", off_by_a_little)
    code = main(["export", "--checkpoint", str(checkpoint), "--format", "torchscript",
                 "--out", str(tmp_path / "m.pt")])
    out = capsys.readouterr().out
    assert code == 1
    assert "MISMATCH" in out and "does NOT match" in out


def test_runtime_failure_is_reported_not_raised(checkpoint):
    model, _ = load_model(checkpoint)

    def broken(clip):
        if clip.shape[2] == 64:
            raise RuntimeError("shape trouble\nmore")
        with torch.no_grad():
            return model(clip).numpy()

    checks = export.check_lengths(model, broken, INPUT)
    assert [c.ok for c in checks] == [True, False, True]
    assert checks[1].error == "RuntimeError: shape trouble"


class TinyNet(torch.nn.Module):
    """A few-hundred-parameter video classifier: quick to export."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).mean(dim=(2, 3, 4)))


@pytest.fixture
def tiny(monkeypatch):
    """``export.load_model`` gives a tiny model for any checkpoint name."""
    torch.manual_seed(0)
    model = TinyNet().eval()
    meta = CheckpointMeta(None, ["a", "b"], (4, 8, 8))
    monkeypatch.setattr(export, "load_model", lambda path, device: (model, meta))
    return model


def test_large_onnx_weights_go_beside_the_model_and_both_are_named(tiny, tmp_path, monkeypatch):
    importlib.import_module("onnxruntime")
    monkeypatch.setattr(export, "ONNX_SINGLE_FILE_LIMIT", 100)  # "over 2 GB"
    out = tmp_path / "big.onnx"
    report = export.export_checkpoint("any.pt", None, out)
    data = tmp_path / "big.onnx.data"
    assert report.ok and report.format == "onnx" and report.files == [out, data]
    text = format_report(report)
    assert f"wrote {out} (" in text and f"and its weights {data} (" in text
    assert "the model needs both files, keep them together" in text


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", ["model.pt", "model.ts", "model.torchscript"])
def test_format_comes_from_the_extension(tiny, tmp_path, name, capsys):
    out = tmp_path / name
    assert main(["export", "--checkpoint", "any.pt", "--out", str(out)]) == 0
    assert "): torchscript, input N x 3 x T x 8 x 8" in capsys.readouterr().out
    module = torch.jit.load(str(out))  # TorchScript, not ONNX bytes in a .pt file
    x = torch.randn(1, 3, 6, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), tiny(x))


@pytest.mark.parametrize("name, fmt, message", [
    ("x.pt", "onnx", r"x.pt: a .pt file is torchscript, not onnx; name the file .onnx or leave "
                     r"out --format"),
    ("x.onnx", "torchscript", r"x.onnx: a .onnx file is onnx, not torchscript"),
    ("x.bin", None, r"x.bin: cannot tell the format from the extension '.bin'; name the file "
                    r".onnx, .pt, .ts, .torchscript, or give --format"),
])
def test_a_format_that_disagrees_with_the_extension_is_refused(tiny, tmp_path, capsys, name,
                                                                fmt, message):
    args = ["export", "--checkpoint", "any.pt", "--out", str(tmp_path / name)]
    assert main(args + (["--format", fmt] if fmt else [])) == 2
    assert re.search(message, capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_output_is_replaced_only_with_overwrite(tiny, tmp_path, capsys):
    importlib.import_module("onnxruntime")
    out, stale = tmp_path / "m.onnx", tmp_path / "m.onnx.data"
    out.write_bytes(b"an older model")
    stale.write_bytes(b"its weights")
    args = ["export", "--checkpoint", "any.pt", "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err == (f"error: {out}: exists; pass --overwrite to replace it "
                                       f"and {stale}\n")
    assert out.read_bytes() == b"an older model" and stale.exists()
    assert main(args + ["--overwrite"]) == 0
    text = capsys.readouterr().out
    assert f"replaced the existing {out}\nreplaced the existing {stale}\nwrote {out} (" in text
    assert sorted(tmp_path.iterdir()) == [out]  # the stale weights file is gone


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["export", "--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "x.onnx")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_plain_onnx_export_with_dynamic_time_axis(tmp_path):
    """torch's TorchScript-based ONNX exporter (``dynamo=False``) handles the model too."""
    ort = importlib.import_module("onnxruntime")
    torch.manual_seed(0)
    model = build_model("mict_resnet18", num_classes=5).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    path = tmp_path / "mict.onnx"
    torch.onnx.export(
        model, (clip,), str(path), input_names=["clip"], output_names=["logits"],
        dynamic_axes={"clip": {0: "batch", 2: "time"}, "logits": {0: "batch"}}, dynamo=False,
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for frames in (16, 40):
        x = torch.randn(1, 3, frames, 64, 64)
        with torch.no_grad():
            expected = model(x).numpy()
        got = session.run(None, {"clip": x.numpy()})[0]
        assert abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError(28, "No space left on device")])
def test_a_failed_overwrite_keeps_the_previous_export(checkpoint, tmp_path, monkeypatch,
                                                      failure):
    """Ctrl-C or a full disk while the new file is written or checked: the old export stays
    as it was and no partial file is left beside it."""
    out = tmp_path / "model.pt"
    out.write_bytes(b"the previous export")
    real = export.export_torchscript

    def partial(model, example, path, clip=None):
        real(model, example, path, clip)
        path.write_bytes(path.read_bytes()[:1000])  # as if the disk filled up mid-write
        raise failure

    monkeypatch.setattr(export, "export_torchscript", partial)
    with pytest.raises((KeyboardInterrupt, OSError)):
        export.export_checkpoint(checkpoint, "torchscript", out, overwrite=True)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
