"""``ava-detect export`` and the runtimes of exported files: ONNX (onnxruntime, CPU) and TorchScript give
PyTorch's probabilities within 1e-4 for any number of clips and boxes (0 included) and both RoIAlign
``aligned`` flags; the contract round-trips through the file's metadata; files of another model, files
that are not ours and a missing onnxruntime are clear errors; exports replace files atomically.

The fast tests export two small models once each (the tiny preset, and a Slow-only depth-18 model with
``aligned=False``); the exports of the reference fixtures and of the tiny preset with ``aligned=False``
(each tens of seconds on 2 cores) are marked slow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ava_detect import cli
from ava_detect.config import load_config
from ava_detect.data.labelmaps import resolve_labelmap
from ava_detect.deploy import ExportContract, export_onnx, export_torchscript, load_exported
from ava_detect.deploy.contract import METADATA_KEY
from ava_detect.deploy.export import example_inputs
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, load_weights, save_checkpoint
from common import cli_error, folder_state, require_extra, shared_path

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "tiny.yaml"
#: onnxruntime and TorchScript against PyTorch: probabilities within this (measured: about 1e-7).
TOL = 1e-4
#: The tiny preset as the exports here use it (annotate's test clips are small: short side 128).
TINY_OVERRIDES = ["data.test_short_side=128"]
#: A Slow-only depth-18 model with legacy RoIAlign (aligned=False): one `clip` input, a quick export.
SLOW18_OVERRIDES = ["model.arch=slow", "model.num_frames=4", "model.resnet.depth=18", "model.roi_aligned=false",
                    "data.test_short_side=128"]


def _model(overrides, seed: int = 0):
    cfg = load_config(TINY, overrides)
    torch.manual_seed(seed)
    model = build_model(cfg)
    with torch.no_grad():  # non-trivial batch-norm statistics (the initial scales kept), so that folding is tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.mul_(torch.empty_like(m.weight).uniform_(0.8, 1.2))
                m.bias.uniform_(-0.1, 0.1)
        model.head.proj.weight.normal_(0, 0.3)  # scores away from 0.5, so that differences show
    return cfg, model.eval()


def _export(tmp_path_factory, overrides, name: str, fmt: str = "onnx"):
    cfg, model = _model(overrides)
    contract = ExportContract.from_model(cfg, model, resolve_labelmap(kind="all"))
    path = tmp_path_factory.mktemp("export") / name
    path.write_bytes(b"an older file, replaced by the export")
    (export_onnx if fmt == "onnx" else export_torchscript)(model, contract, path)
    assert os.listdir(path.parent) == [name]  # replaced in place, no temporary left
    return cfg, model, path


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """(cfg, model, path): the tiny preset (aligned=True), exported to ONNX."""
    require_extra("onnxruntime")
    return _export(tmp_path_factory, TINY_OVERRIDES, "tiny.onnx")


@pytest.fixture(scope="module")
def slow18_onnx(tmp_path_factory):
    """(cfg, model, path): a Slow-only depth-18 model with aligned=False, exported to ONNX."""
    require_extra("onnxruntime")
    return _export(tmp_path_factory, SLOW18_OVERRIDES, "slow18.onnx")


@pytest.fixture(scope="module")
def tiny_torchscript(tmp_path_factory):
    return _export(tmp_path_factory, TINY_OVERRIDES, "tiny.pt", fmt="torchscript")


def _rois(k: int, clips: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x1y1 = torch.rand(k, 2, generator=g) * torch.tensor([w * 0.6, h * 0.6])
    x2y2 = torch.minimum(x1y1 + 2 + torch.rand(k, 2, generator=g) * torch.tensor([w * 0.5, h * 0.5]),
                         torch.tensor([w - 1.0, h - 1.0]))
    rois = torch.cat([torch.randint(0, clips, (k, 1), generator=g).float(), x1y1, x2y2], dim=1)
    if k >= 7:  # border and full-frame boxes, as the fixtures have
        rois[-1] = torch.tensor([clips - 1, 0.0, 0.0, w - 1.0, h - 1.0])
        rois[-2] = torch.tensor([0, w - 5.0, h - 5.0, w - 1.0, h - 1.0])
    return rois


def _max_diff(cfg, model, exported, clips: int, boxes: int, h: int = 72, w: int = 100) -> float:
    contract = exported.contract
    *pathways, _ = example_inputs(contract, batch=clips, boxes=1, height=h, width=w, seed=clips)
    rois = _rois(boxes, clips, h, w, seed=boxes)
    expected = model.predict(pathways, rois)
    got = exported.predict(pathways, rois)
    assert got.shape == expected.shape == (boxes, cfg.model.num_classes) and got.dtype == torch.float32
    if boxes:
        assert expected.std() > 0.05  # not saturated: the comparison means something
    return float((got - expected).abs().max()) if boxes else 0.0


# ---- the numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("clips", [1, 3])
@pytest.mark.parametrize("boxes", [0, 1, 7])
def test_onnx_matches_pytorch_tiny_preset(tiny_onnx, clips, boxes):
    cfg, model, path = tiny_onnx
    exported = load_exported(path, "onnxruntime")
    assert exported.contract.roi_aligned is True
    assert _max_diff(cfg, model, exported, clips, boxes) < TOL


@pytest.mark.parametrize("clips, boxes", [(1, 0), (1, 1), (3, 7)])
def test_onnx_matches_pytorch_one_pathway_unaligned(slow18_onnx, clips, boxes):
    cfg, model, path = slow18_onnx
    exported = load_exported(path, "onnxruntime")
    assert exported.contract.input_names == ("clip", "rois") and exported.contract.roi_aligned is False
    assert _max_diff(cfg, model, exported, clips, boxes, h=64, w=48) < TOL


def test_aligned_flag_is_kept_in_the_graph(tiny_onnx, slow18_onnx):
    """ONNX RoiAlign's coordinate mode carries the flag: half_pixel (aligned) / output_half_pixel (legacy)."""
    onnx = require_extra("onnx")
    modes = {}
    for _, _, path in (tiny_onnx, slow18_onnx):
        model = onnx.load(str(path))
        (node,) = [n for n in model.graph.node if n.op_type == "RoiAlign"]
        modes[path.name] = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert model.opset_import[0].version >= 16
    assert modes["tiny.onnx"]["coordinate_transformation_mode"] == b"half_pixel"
    assert modes["slow18.onnx"]["coordinate_transformation_mode"] == b"output_half_pixel"


@pytest.mark.parametrize("clips, boxes", [(1, 0), (1, 1), (3, 7)])
def test_torchscript_matches_pytorch(tiny_torchscript, clips, boxes):
    cfg, model, path = tiny_torchscript
    exported = load_exported(path, "torchscript")
    assert _max_diff(cfg, model, exported, clips, boxes) < TOL


def test_contract_round_trips_through_the_metadata(tiny_onnx, tiny_torchscript):
    cfg, model, path = tiny_onnx
    labelmap = resolve_labelmap(kind="all")
    written = ExportContract.from_model(cfg, model, labelmap)
    for file, runtime, opset in ((path, "onnxruntime", 18), (tiny_torchscript[2], "torchscript", 0)):
        contract = load_exported(file, runtime).contract
        assert contract == ExportContract(**{**written.__dict__, "opset": opset})
    contract = load_exported(path, "onnxruntime").contract
    assert contract.input_shapes() == {"slow": ["B", 3, 4, "H", "W"], "fast": ["B", 3, 16, "H", "W"], "rois": ["K", 5]}
    assert contract.class_ids == tuple(labelmap.ids) and contract.class_names[0] == labelmap.names[labelmap.ids[0]]
    assert (contract.short_side, contract.mean, contract.min_side) == (128, (0.45, 0.45, 0.45), 32)
    # the transform rebuilt from the contract alone is the config's test transform
    from ava_detect.data.dataset import build_test_transform

    assert contract.test_transform() == build_test_transform(cfg)
    contract.check_config(cfg, labelmap, path)  # fits the config it was exported with


# ---- files of another model, files that are not ours ------------------------------------------------


def test_config_of_another_model_is_refused(tiny_onnx):
    cfg, model, path = tiny_onnx
    exported = load_exported(path, "onnxruntime")
    other = load_config(TINY, [*TINY_OVERRIDES, "model.num_frames=32", "model.num_classes=60"])
    with pytest.raises(AvaDetectError, match="model.num_frames=32 in the config but 16 in the file; "
                                             "model.num_classes=60 in the config but 80"):
        exported.contract.check_config(other, None, path)
    from ava_detect.data.ava_files import LabelMap

    shifted = LabelMap(ids=tuple(range(2, 82)), names={i: f"action {i}" for i in range(2, 82)})
    with pytest.raises(AvaDetectError, match=r"the label map's action ids \(2, 3, 4, ..., 81\) differ"):
        exported.contract.check_config(cfg, shifted, path)


def _with_contract(src: Path, dst: Path, edit) -> Path:
    """``src`` with its contract's JSON changed by ``edit(dict)`` (or another file's contract)."""
    onnx = require_extra("onnx")
    model = onnx.load(str(src))
    entry = next(p for p in model.metadata_props if p.key == METADATA_KEY)
    entry.value = edit(json.loads(entry.value))
    onnx.save(model, str(dst))
    return dst


def test_onnx_file_of_another_model_names_what_differs(tiny_onnx, slow18_onnx, tmp_path):
    _, _, tiny = tiny_onnx
    _, _, slow = slow18_onnx
    # the tiny graph (16 fast frames) with a contract that says 32 frames
    frames = _with_contract(tiny, tmp_path / "frames.onnx", lambda c: json.dumps({**c, "num_frames": 32}))
    with pytest.raises(AvaDetectError, match=r"input 'slow' has shape \[B,3,4,H,W\], expected \[B,3,8,H,W\]") as e:
        load_exported(frames, "onnxruntime")
    assert str(frames) in str(e.value)
    classes = _with_contract(tiny, tmp_path / "classes.onnx",
                             lambda c: json.dumps({**c, "class_ids": c["class_ids"][:7], "class_names": c["class_names"][:7]}))
    with pytest.raises(AvaDetectError, match=r"output 'probs' has shape \[K,80\], expected \[K,7\]"):
        load_exported(classes, "onnxruntime")
    # the one-pathway graph under the two-pathway contract
    tiny_contract = load_exported(tiny, "onnxruntime").contract.to_json()
    swapped = _with_contract(slow, tmp_path / "swapped.onnx", lambda c: tiny_contract)
    with pytest.raises(AvaDetectError, match="the graph has no input named 'slow' \\(its inputs: 'clip', 'rois'\\)"):
        load_exported(swapped, "onnxruntime")
    version = _with_contract(tiny, tmp_path / "version.onnx", lambda c: json.dumps({**c, "format_version": 99}))
    with pytest.raises(AvaDetectError, match="contract version 99"):
        load_exported(version, "onnxruntime")


def test_onnx_files_that_are_not_exported_detectors(tmp_path):
    onnx = require_extra("onnx")
    require_extra("onnxruntime")
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    plain = tmp_path / "plain.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(plain))
    with pytest.raises(AvaDetectError, match="without an ava_detect export contract") as e:
        load_exported(plain, "onnxruntime")
    assert str(plain) in str(e.value)
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n")
    with pytest.raises(AvaDetectError, match="not an ONNX model"):
        load_exported(text, "onnxruntime")
    with pytest.raises(AvaDetectError, match="not found"):
        load_exported(tmp_path / "missing.onnx", "onnxruntime")
    with pytest.raises(AvaDetectError, match="not a TorchScript model"):
        load_exported(text, "torchscript")
    with pytest.raises(AvaDetectError, match="not a TorchScript model"):
        load_exported(plain, "torchscript")


def test_missing_onnxruntime_says_what_to_install(tiny_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(AvaDetectError, match=r'pip install "ava_detect\[onnx\]"'):
        load_exported(tiny_onnx[2], "onnxruntime")


def test_missing_onnx_exporter_packages_fail_before_writing(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "tiny.pth"
    save_checkpoint(weights, model=_model(TINY_OVERRIDES)[1])
    monkeypatch.setitem(sys.modules, "onnxscript", None)
    before = folder_state(tmp_path)
    line = cli_error(capsys, "export", "--config", TINY, "--weights", weights, "--format", "onnx",
                     "--out", tmp_path / "m.onnx")
    assert "onnxscript" in line and 'pip install "ava_detect[onnx]"' in line
    assert folder_state(tmp_path) == before


# ---- atomic writes -------------------------------------------------------------------------------


def test_export_replaces_an_existing_file_and_a_failed_one_leaves_it(tmp_path, monkeypatch):
    cfg, model = _model(TINY_OVERRIDES)
    contract = ExportContract.from_model(cfg, model, resolve_labelmap(kind="all"))
    out = tmp_path / "model.pt"
    out.write_bytes(b"an older file")
    export_torchscript(model, contract, out)
    assert load_exported(out, "torchscript").contract.num_frames == 16
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]
    written = out.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch.jit, "save", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_torchscript(model, contract, out)
    assert out.read_bytes() == written and sorted(os.listdir(tmp_path)) == ["model.pt"]
    monkeypatch.setattr(torch.onnx, "export", broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_onnx(model, contract, tmp_path / "model.onnx")
    assert sorted(os.listdir(tmp_path)) == ["model.pt"]


# ---- the command line ----------------------------------------------------------------------------


def test_cli_export_and_annotate_with_onnxruntime(tiny_onnx, tmp_path, capsys):
    """``annotate --runtime onnxruntime`` on the exported file writes the torch runtime's CSV (scores within 1e-4)."""
    cfg, model, onnx_path = tiny_onnx
    weights = tmp_path / "tiny.pth"
    save_checkpoint(weights, model=model)
    video = shared_path("videos/carphone_176x144.mp4")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("carphone_176x144,0000,0.2,0.1,0.8,0.9,,0.99\ncarphone_176x144,0000,0.05,0.3,0.4,0.95,,0.95\n"
                     "carphone_176x144,0001,0.25,0.1,0.85,0.9,,0.99\ncarphone_176x144,0002,0.1,0.1,0.5,0.5,,0.9\n")
    common = ["--config", str(TINY), *TINY_OVERRIDES, "--detector", "csv", "--boxes", str(boxes), "--threshold", "0.05",
              "--device", "cpu", "--precision", "fp32"]  # onnxruntime runs fp32 (auto is bf16 on CPUs with bf16 units)
    csvs = {}
    for runtime, file in (("torch", weights), ("onnxruntime", onnx_path)):
        csv = tmp_path / f"{runtime}.csv"
        assert cli.main(["annotate", str(video), "--out", str(tmp_path / f"{runtime}.mp4"), "--csv", str(csv),
                         "--runtime", runtime, "--weights", str(file), *common]) == 0
        csvs[runtime] = pd.read_csv(csv, header=None)
    torch_rows, onnx_rows = csvs["torch"], csvs["onnxruntime"]
    assert len(torch_rows) >= 20 and list(torch_rows.columns) == list(onnx_rows.columns)
    key = [0, 1, 2, 3, 4, 5, 6]
    merged = torch_rows.merge(onnx_rows, on=key, how="outer", suffixes=("_t", "_o"))
    # rows near the threshold could fall on either side of it; none do here
    assert merged.notna().all().all() and len(merged) == len(torch_rows) == len(onnx_rows)
    assert np.abs(merged["7_t"] - merged["7_o"]).max() < TOL
    assert (merged["8_t"] == merged["8_o"]).all()  # the same person ids
    capsys.readouterr()

    # the config of another clip length: one clear line, nothing written
    line = cli_error(capsys, "annotate", str(video), "--out", tmp_path / "x.mp4", "--runtime", "onnxruntime",
                     "--weights", onnx_path, *common, "model.num_frames=8")
    assert "model.num_frames=8 in the config but 16 in the file" in line and str(onnx_path) in line
    assert not (tmp_path / "x.mp4").exists()


def test_cli_export_writes_a_checked_file(tmp_path, capsys):
    weights = tmp_path / "w.pth"
    save_checkpoint(weights, model=_model(TINY_OVERRIDES)[1])
    out = tmp_path / "sub" / "tiny.pt"
    assert cli.main(["export", "--config", str(TINY), *TINY_OVERRIDES, "--weights", str(weights), "--format",
                     "torchscript", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (torchscript" in printed and "fast [B,3,16,H,W]" in printed and "probs [K,80]" in printed
    diff = float(printed.split("from PyTorch ")[1].split()[0])
    assert diff < TOL
    assert sorted(os.listdir(out.parent)) == ["tiny.pt"]


def test_cli_export_bad_input(tmp_path, capsys):
    weights = tmp_path / "w.pth"
    save_checkpoint(weights, model=_model(TINY_OVERRIDES)[1])
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00garbage" * 64)
    (tmp_path / "notes.txt").write_text("a file\n")
    base = ["export", "--config", TINY, "--format", "torchscript"]
    before = folder_state(tmp_path)
    assert "--out is the same file as --weights" in cli_error(capsys, *base, "--weights", weights, "--out", weights)
    assert "garbage.pth" in cli_error(capsys, *base, "--weights", garbage, "--out", tmp_path / "m.pt")
    assert "notes.txt is a file" in cli_error(capsys, *base, "--weights", weights, "--out", tmp_path / "notes.txt/m.pt")
    assert "invalid choice: 'tflite'" in cli_error(capsys, "export", "--config", TINY, "--weights", weights,
                                                   "--format", "tflite", "--out", tmp_path / "m.tflite")
    # weights of another model: the tiny weights under the R50 preset
    line = cli_error(capsys, *base, "--weights", weights, "--out", tmp_path / "m.pt", "model.resnet.width_per_group=16")
    assert "w.pth" in line and "shape" in line
    # a label map of another size
    labelmap = tmp_path / "lm.pbtxt"
    labelmap.write_text('item {\n  name: "stand"\n  id: 1\n}\n')
    assert "the label map has 1 classes but the model predicts 80" in cli_error(
        capsys, *base, "--weights", weights, "--out", tmp_path / "m.pt", "--labelmap", labelmap)
    labelmap.unlink()
    assert folder_state(tmp_path) == before


# ---- the reference fixtures and the tiny preset unaligned (slow: R50-size graphs) -----------------------

FIXTURES = [
    # folder, preset, width
    ("pyslowfast_slowfast_r50_w8", "slowfast_r50_32x2", 8),
    ("pytorchvideo_slowfast_r50_detection_w16", "slowfast_r50_8x8", 16),
    ("pyslowfast_slowfast_r101_nonlocal_w8", "slowfast_r101_8x8_nonlocal", 8),
]


@pytest.mark.slow
@pytest.mark.parametrize("folder, preset, width", FIXTURES)
def test_onnx_and_torchscript_match_the_fixtures(folder, preset, width, tmp_path):
    require_extra("onnxruntime")
    d = shared_path(f"fixtures/models/{folder}")
    inp = torch.load(d / "inputs.pt", weights_only=True)
    exp = torch.load(d / "expected.pt", weights_only=True)
    cfg = load_config(ROOT / f"configs/ava/{preset}.yaml", [f"model.resnet.width_per_group={width}",
                                                             "model.num_frames=32"])
    model = build_model(cfg)
    load_weights(model, d / "checkpoint.pyth")
    model.eval()
    contract = ExportContract.from_model(cfg, model, resolve_labelmap(kind="all"))
    inputs, boxes = [inp["slow"], inp["fast"]], inp["boxes"]
    reference = model.predict(inputs, boxes)
    for fmt, runtime in (("onnx", "onnxruntime"), ("torchscript", "torchscript")):
        path = tmp_path / f"model.{fmt}"
        (export_onnx if fmt == "onnx" else export_torchscript)(model, contract, path)
        got = load_exported(path, runtime).predict(inputs, boxes)
        diff = float((got - reference).abs().max())
        print(f"{folder} {runtime}: max |prob difference| from PyTorch {diff:.2e}, from the fixture "
              f"{float((got - exp['probs']).abs().max()):.2e}, {path.stat().st_size / 1e6:.1f} MB")
        assert diff < TOL
        torch.testing.assert_close(got, exp["probs"], rtol=0, atol=TOL)


@pytest.mark.slow
def test_onnx_matches_pytorch_tiny_preset_unaligned(tmp_path_factory):
    require_extra("onnxruntime")
    cfg, model, path = _export(tmp_path_factory, [*TINY_OVERRIDES, "model.roi_aligned=false"], "tiny_unaligned.onnx")
    exported = load_exported(path, "onnxruntime")
    assert exported.contract.roi_aligned is False
    for clips in (1, 3):
        for boxes in (0, 1, 7):
            diff = _max_diff(cfg, model, exported, clips, boxes)
            print(f"tiny aligned=False, {clips} clips, {boxes} boxes: max |prob difference| {diff:.2e}")
            assert diff < TOL


def test_readme_snippet_runs_the_file_without_ava_detect(tiny_onnx):
    """The README's few lines of numpy + onnxruntime give the probabilities of ``annotate``'s runtime
    (the test transform rebuilt from the contract, then :class:`OnnxActionModel`)."""
    require_extra("onnxruntime")
    cfg, model, path = tiny_onnx
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("Running the file without ava_detect")
    code = text[text.index("```python\n", start) + len("```python\n"):text.index("```", text.index("```python", start) + 3)]
    assert "ava_detect." not in code.replace('"ava_detect.contract"', "")
    g = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (16, 128, 170, 3), dtype=torch.uint8, generator=g).numpy()
    code = code.replace('"model.onnx"', repr(str(path))).replace("frames = ...", "frames = given_frames")
    scope = {"given_frames": frames}
    exec(compile(code, "README.md", "exec"), scope)
    exported = load_exported(path, "onnxruntime")
    boxes = torch.from_numpy(scope["rois"][:, 1:])
    out = exported.contract.test_transform()(torch.from_numpy(frames), boxes)
    assert torch.equal(out.boxes, boxes)  # already at the short side: nothing moves
    expected = exported.predict([x.unsqueeze(0) for x in out.inputs], torch.from_numpy(scope["rois"]))
    np.testing.assert_allclose(scope["probs"], expected.numpy(), atol=1e-6, rtol=0)
    assert len(scope["top"]) == 3 and scope["top"][0][1] in exported.contract.class_names
