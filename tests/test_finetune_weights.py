"""Fine-tuning from weights trained on other actions: the backbone loads, the head is re-initialised,
and the rows of actions also named in the file's label map start from the file's rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ava_detect.config import load_config
from ava_detect.data.ava_files import LabelMap, read_labelmap, write_labelmap
from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
from ava_detect.errors import AvaDetectError
from ava_detect.model import build_model, load_weights, read_checkpoint, save_checkpoint
from ava_detect.model.head_transfer import match_rows, normalise_name

from common import ROOT, TINY_SYNTHETIC, folder_state, require_extra
from test_model_weights import assert_same_weights, pyslowfast_state, randomized

#: The model's label map: three AVA actions (written in other case and spacing) and two new ones.
TARGET = {1: "Stand", 2: "walk", 3: "talk to (e.g., self,  a person, a group)", 4: "wave to the camera",
          5: "pour coffee"}
#: Their AVA v2.2 ids (the source rows are id - 1 in an 80-class head).
AVA_IDS = {"Stand": 12, "walk": 14, "talk to (e.g., self,  a person, a group)": 79}


def tiny(*overrides: str):
    return build_model(load_config(ROOT / "configs/tiny.yaml", list(overrides)))


def ava_source() -> torch.nn.Module:
    """A tiny detector with an 80-class (AVA-shaped) head and random weights everywhere."""
    return randomized(tiny("model.num_classes=80"), seed=1)


def assert_fresh(proj: torch.nn.Linear, columns, source_weight: torch.Tensor) -> None:
    """Rows initialised as a new head is (normal, std 0.01; bias 0), not copied from the file."""
    for c in columns:
        assert float(proj.bias.detach()[c]) == 0.0
        assert 0 < float(proj.weight.detach()[c].abs().max()) < 0.1  # the file's rows are N(0, 1)
        assert not any(torch.equal(proj.weight[c], row) for row in source_weight)


def assert_copied_from_ava(report, target: torch.nn.Module, source_weight, source_bias) -> None:
    copied = {r.name: (r.source_id, r.column) for r in report.head_copied}
    assert copied == {name: (AVA_IDS[name], list(TARGET.values()).index(name)) for name in AVA_IDS}
    for r in report.head_copied:
        assert r.source_row == r.source_id - 1
        assert torch.equal(target.head.proj.weight[r.column], source_weight[r.source_id - 1])
        assert torch.equal(target.head.proj.bias[r.column], source_bias[r.source_id - 1])
    assert report.head_fresh == [(3, "wave to the camera"), (4, "pour coffee")]
    assert_fresh(target.head.proj, [3, 4], source_weight)
    assert report.head_initialised and report.head_names_from == "AVA v2.2 label map, 80 classes"
    summary = report.summary()
    for name, ava_id in AVA_IDS.items():
        assert f"    {name}: file id {ava_id} -> column {list(TARGET.values()).index(name)}" in summary
    assert "freshly initialised: 2 actions: wave to the camera (column 3), pour coffee (column 4)" in summary


def test_names_match_after_normalising_case_and_whitespace():
    assert normalise_name("  Talk to (e.g., self,\ta  person, a group) ") == "talk to (e.g., self, a person, a group)"
    copied, fresh = match_rows({5: "Stand", 9: "walk", 11: "stand"}, {1: "stand up", 2: "STAND", 3: " Walk"})
    assert [(r.name, r.source_id, r.source_row, r.column) for r in copied] == [("STAND", 5, 0, 1), (" Walk", 9, 1, 2)]
    assert fresh == [(0, "stand up")]


def test_old_ava_checkpoint_of_ours_copies_rows_by_ava_names(tmp_path):
    source = ava_source()
    path = tmp_path / "ava80.pt"
    save_checkpoint(path, model=source)  # no class_names: written as before checkpoints kept them
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert_same_weights(source, target, skip_prefix="head.")
    assert_copied_from_ava(report, target, source.head.proj.weight, source.head.proj.bias)
    assert not report.missing
    assert sorted(k for k, _ in report.skipped) == ["head.proj.bias", "head.proj.weight"]
    assert any("stores no class names" in n and "AVA v2.2's 80 classes" in n for n in report.notes)
    # without the model's label map a head for other actions is still an error, as it always was
    with pytest.raises(AvaDetectError, match="head shape mismatch"):
        load_weights(tiny("model.num_classes=5"), path)


@pytest.mark.parametrize("cfg_text", ["DETECTION:\n  ENABLE: true\n  ALIGNED: true\n", None],
                         ids=["pyth_with_cfg", "without_cfg_like_caffe2"])
def test_pyslowfast_ava_file_copies_rows_by_ava_names(tmp_path, cfg_text):
    source = ava_source()
    path = tmp_path / "SLOWFAST_32x2_R50_AVA.pyth"
    torch.save({"model_state": pyslowfast_state(source), **({"cfg": cfg_text} if cfg_text else {})}, path)
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert report.layout == "pyslowfast" and not report.missing
    assert_same_weights(source, target, skip_prefix="head.")
    assert_copied_from_ava(report, target, source.head.proj.weight, source.head.proj.bias)


def test_pytorchvideo_ava_detection_file_copies_rows_by_ava_names(tmp_path):
    """The layout of the published ``slow_r50_4x16_ava`` (PyTorchVideo's slow_r50_detection), made by PyTorchVideo."""
    hub = require_extra("pytorchvideo.models.hub")
    torch.manual_seed(0)
    reference = randomized(hub.slow_r50_detection(pretrained=False, stem_dim_out=8), seed=7)
    path = tmp_path / "SLOW_4x16_R50_DETECTION.pyth"
    torch.save({"model_state": reference.state_dict()}, path)
    slow = ["model.resnet.width_per_group=8", "model.num_classes=5"]
    target = build_model(load_config(ROOT / "configs/ava/slow_r50_4x16.yaml", slow))
    report = load_weights(target, path, target_names=TARGET)
    assert report.layout == "pytorchvideo_detection" and not report.missing
    w = reference.state_dict()["detection_head.proj.weight"]
    assert_copied_from_ava(report, target, w, reference.state_dict()["detection_head.proj.bias"])
    assert torch.equal(target.backbone.stem[0].conv.weight, reference.state_dict()["model.blocks.0.conv.weight"])


def test_sixty_row_head_is_matched_with_the_sixty_class_list(tmp_path):
    source = randomized(tiny("model.num_classes=60"), seed=2)
    path = tmp_path / "ava60.pyth"
    torch.save({"model_state": pyslowfast_state(source), "cfg": "DETECTION:\n  ENABLE: true\n"}, path)
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    ids60 = list(read_labelmap(labelmap_60_path()).ids)
    rows = {r.name: (r.source_id, r.source_row) for r in report.head_copied}
    assert rows == {n: (i, ids60.index(i)) for n, i in AVA_IDS.items()}
    for r in report.head_copied:
        assert torch.equal(target.head.proj.weight[r.column], source.head.proj.weight[r.source_row])
    assert "60 classes" in report.head_names_from


def test_checkpoint_with_stored_names_matches_those_names(tmp_path):
    source = randomized(tiny("model.num_classes=4"), seed=3)
    stored = {7: "pour coffee", 3: "Walk", 9: "stand", 12: "sit"}
    path = tmp_path / "own.pt"
    save_checkpoint(path, model=source, class_names=stored)
    assert read_checkpoint(path)["class_names"] == stored and list(read_checkpoint(path)["class_names"]) == [7, 3, 9, 12]
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert [(r.name, r.source_id, r.source_row, r.column) for r in report.head_copied] == [
        ("Stand", 9, 2, 0), ("walk", 3, 1, 1), ("pour coffee", 7, 0, 4)]
    for r in report.head_copied:
        assert torch.equal(target.head.proj.weight[r.column], source.head.proj.weight[r.source_row])
        assert torch.equal(target.head.proj.bias[r.column], source.head.proj.bias[r.source_row])
    assert report.head_fresh == [(2, "talk to (e.g., self,  a person, a group)"), (3, "wave to the camera")]
    assert report.head_names_from == "class names stored in the checkpoint" and not report.notes
    assert_same_weights(source, target, skip_prefix="head.")

    # same number of rows, same actions in the same order (case aside): the head loads as it is
    same = tiny("model.num_classes=4")
    report = load_weights(same, path, target_names={1: "Pour Coffee", 2: "walk", 3: "stand", 4: "sit"})
    assert not report.head_initialised and not report.head_copied and "head.proj.weight" in report.loaded
    assert_same_weights(source, same)
    # same number of rows, other order: re-initialised and every row copied to its action's column
    moved = tiny("model.num_classes=4")
    report = load_weights(moved, path, target_names={1: "sit", 2: "stand", 3: "walk", 4: "pour coffee"})
    assert report.head_initialised and not report.head_fresh
    assert torch.equal(moved.head.proj.weight, source.head.proj.weight.flip(0))


def test_old_checkpoint_without_names_and_not_ava_shaped_copies_nothing(tmp_path):
    source = randomized(tiny("model.num_classes=7"), seed=4)
    path = tmp_path / "old7.pt"
    save_checkpoint(path, model=source)
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert report.head_initialised and report.head_copied == []
    assert report.head_fresh == list(enumerate(TARGET.values()))
    assert any("stores no class names" in n and "7-row head cannot be matched" in n for n in report.notes)
    assert_fresh(target.head.proj, range(5), source.head.proj.weight)
    assert_same_weights(source, target, skip_prefix="head.")
    # a head of the same size without names loads as it is (the behaviour before names were stored)
    same = tiny("model.num_classes=7")
    report = load_weights(same, path, target_names={i: f"action {i}" for i in range(1, 8)})
    assert not report.head_initialised and not report.notes
    assert_same_weights(source, same)


def test_stored_names_that_do_not_fit_the_head_are_ignored(tmp_path):
    source = ava_source()
    path = tmp_path / "bad_names.pt"
    save_checkpoint(path, model=source, class_names={1: "stand", 2: "walk"})
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert any("names 2 classes but its head has 80 rows; ignored" in n for n in report.notes)
    assert_copied_from_ava(report, target, source.head.proj.weight, source.head.proj.bias)


def test_kinetics_file_copies_nothing(tmp_path):
    source = randomized(tiny(), seed=5)
    state = pyslowfast_state(source)
    state["head.projection.weight"] = torch.randn(400, state["head.projection.weight"].shape[1])
    state["head.projection.bias"] = torch.randn(400)
    path = tmp_path / "kinetics.pyth"
    torch.save({"model_state": state}, path)
    target = tiny("model.num_classes=5")
    report = load_weights(target, path, target_names=TARGET)
    assert report.head_initialised and report.head_copied == [] and not report.head_names_from
    assert report.head_fresh == list(enumerate(TARGET.values()))
    assert all("classification head (400 classes" in r for _, r in report.skipped)
    assert "freshly initialised (train it before use)" in report.summary()
    assert_fresh(target.head.proj, range(5), state["head.projection.weight"])
    assert_same_weights(source, target, skip_prefix="head.")


# ----------------------------------------------------------------------------- ava-detect train


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from ava_detect.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic_dataset(root, seed=3, num_videos=3, seconds=6, size=(96, 72))
    # a smaller label map of the synthetic set's AVA ids: two AVA names, one in other case, one new
    write_labelmap(root / "annotations" / "small.pbtxt",
                   LabelMap(ids=(12, 11, 14, 69), names={12: "stand", 11: "sitting", 14: "Walk", 69: "hand wave"}))
    return root


def _train_args(data: Path, out: Path, weights: Path, *extra: str):
    return ["train", "--config", str(ROOT / "configs/tiny.yaml"), "--weights", str(weights), "--output-dir", str(out),
            *TINY_SYNTHETIC, f"data.root={data}", "data.labelmap=annotations/small.pbtxt", "model.num_classes=4",
            "train.epochs=1", "train.checkpoint_period=1", *extra]


def test_train_fine_tunes_from_an_ava_checkpoint_and_reports_the_copied_actions(tiny_data, tmp_path, capsys):
    from ava_detect import cli

    cfg = load_config(ROOT / "configs/tiny.yaml", [*TINY_SYNTHETIC, "model.num_classes=80"])
    source = randomized(build_model(cfg), seed=6)
    weights = tmp_path / "ava80.pt"
    save_checkpoint(weights, model=source)
    out = tmp_path / "run"
    assert cli.main(_train_args(tiny_data, out, weights)) == 0
    captured = capsys.readouterr()
    printed, logged = captured.out, captured.err  # the command prints the report; the library logs it
    for line in ("stand: file id 12 -> column 0", "Walk: file id 14 -> column 2", "hand wave: file id 69 -> column 3",
                 "freshly initialised: 1 actions: sitting (column 1)"):
        assert line in printed and line in logged, line
    assert "trained 1 epochs" in printed
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses and all(torch.isfinite(torch.tensor(losses)))

    # the run's checkpoint keeps its label map, so the next fine-tuning matches by these names
    saved = read_checkpoint(out / "checkpoints" / "last.pth")
    assert not torch.equal(saved["model"]["head.proj.weight"][0], source.head.proj.weight[11])  # trained on
    assert saved["class_names"] == {12: "stand", 11: "sitting", 14: "Walk", 69: "hand wave"}
    again = build_model(load_config(out / "config.yaml", ["model.num_classes=3"]))
    report = load_weights(again, out / "checkpoints" / "last.pth",
                          target_names={1: "hand wave", 2: "sitting", 3: "jump"})
    assert [(r.name, r.source_id, r.source_row, r.column) for r in report.head_copied] == [
        ("hand wave", 69, 3, 0), ("sitting", 11, 1, 1)]


def test_train_refuses_a_head_size_other_than_the_label_map_before_writing(tiny_data, tmp_path, capsys):
    from common import cli_error

    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model=build_model(load_config(ROOT / "configs/tiny.yaml", TINY_SYNTHETIC)))
    before = folder_state(tmp_path)
    line = cli_error(capsys, *_train_args(tiny_data, tmp_path / "run", weights, "model.num_classes=7"))
    assert "small.pbtxt" in line and "model.num_classes=7 but the label map has 4 classes" in line
    assert "set model.num_classes=4" in line
    assert folder_state(tmp_path) == before


# ----------------------------------------------------------------------------- the recipes


@pytest.mark.parametrize("recipe", ["custom/slowfast_r50_finetune.yaml", "custom/cpu.yaml"])
def test_fine_tuning_recipes_fit_their_published_weights_and_read_own_videos(recipe):
    from dataclasses import asdict

    from ava_detect.config import packaged_config
    from ava_detect.model.published import PUBLISHED

    cfg = load_config(packaged_config(recipe))
    assert (cfg.data.start_second, cfg.data.keyframe_range, cfg.data.labelmap) == (0, [], "annotations/labelmap.pbtxt")
    assert cfg.train.freeze_bn
    # the architecture is the one the published file was trained with (num_classes aside: that is the label map's)
    preset = load_config(packaged_config(PUBLISHED[cfg.train.weights].config))
    assert dict(asdict(cfg.model), num_classes=0) == dict(asdict(preset.model), num_classes=0)
    assert "ava" in cfg.train.weights
