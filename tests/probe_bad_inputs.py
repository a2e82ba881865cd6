"""Run a table of hostile inputs through every command and count how each was handled.

    python tests/probe_bad_inputs.py [--work DIR] [--only SUBSTRING] [-v]

Builds a small workspace (a synthetic dataset, a tiny model, its checkpoint, evaluation CSVs, and
hostile files: other encodings, binary data, malformed rows, paths in ids, broken checkpoints,
unreadable videos, configs that break YAML or the schema), then runs each case in this process as
``ava-detect ...`` would run and checks the README's promise for it:

* ``error`` cases: exit status 2, exactly one ``error:`` line on stderr naming what it must name,
  no traceback, and no file of the workspace created, changed or removed;
* ``ok`` / ``warn`` cases (inputs that are unusual but valid): exit status 0 (with a warning that
  says what it must), and for some the same result as the plain input.

Prints one line per case that was not handled and a summary: inputs tried, handled, problems.
Exits 1 when there are problems. ``tests/test_probe_bad_inputs.py`` runs it in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
TINY = ROOT / "configs" / "tiny.yaml"

#: Overrides of the tiny SlowFast for the synthetic set (7 classes, 64 px, 8 frames, CPU).
TINY_OVERRIDES = [
    "model.num_classes=7", "model.num_frames=8", "data.labelmap=annotations/labelmap.pbtxt", "data.num_workers=0",
    "data.train_jitter_min=64", "data.train_jitter_max=80", "data.train_crop_size=64", "data.test_short_side=64",
    "train.batch_size=2", "train.reference_batch_size=2", "train.warmup_epochs=0", "train.eval_period=0",
    "train.amp=false", "test.batch_size=2", "train.device=cpu", "test.device=cpu",
]


@dataclass
class Case:
    """One hostile input.

    Attributes:
        name: what is tried.
        argv: the command line; ``{key}`` is replaced by the workspace path of that name.
        expect: ``error`` (exit 2, one line), ``ok`` (exit 0) or ``warn`` (exit 0 and a warning).
        says: a regular expression the error (or warning) line must match (case-insensitive).
        same_as: for ``ok``: the name of a case whose stdout (without timings) must be identical.
    """

    name: str
    argv: Sequence[str]
    expect: str = "error"
    says: str = ""
    same_as: Optional[str] = None


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    crashed: Optional[str] = None


# ----------------------------------------------------------------------------- the workspace


def _write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def build_workspace(work: Path) -> Dict[str, str]:
    """The files the cases use; returns ``{key: path}`` for the ``{key}`` placeholders."""
    import av
    import numpy as np
    import torch

    from ava_detect.config import load_config
    from ava_detect.model import build_model
    from ava_detect.model.weights import save_checkpoint
    from ava_detect.synthetic import make_synthetic_dataset

    data = work / "data"
    make_synthetic_dataset(data, seed=1, num_videos=2, seconds=6, size=(96, 72))
    ann = data / "annotations"
    p: Dict[str, Path] = {"work": work, "data": data, "tiny": TINY, "labelmap": ann / "labelmap.pbtxt",
                          "gt": ann / "val.csv", "train_gt": ann / "train.csv", "boxes": ann / "val_predicted_boxes.csv",
                          "excl": ann / "val_excluded_timestamps.csv", "videos": data / "videos"}
    video = sorted((data / "videos").glob("*.mp4"))[0]
    p["video"] = video
    vid = video.stem
    gt_lines = p["gt"].read_text().splitlines()

    torch.manual_seed(0)
    model = build_model(load_config(TINY, ["model.num_classes=7", "model.num_frames=8"]))
    p["weights"] = work / "tiny.pth"
    save_checkpoint(p["weights"], model=model)
    p["pred"] = _write(work / "pred.csv", "".join(f"{line.rsplit(',', 1)[0]},0.9\n" for line in gt_lines))

    h = work / "hostile"
    good = p["gt"].read_bytes()
    p["gt_utf16"] = _write(h / "gt_utf16.csv", p["gt"].read_text().encode("utf-16"))
    p["gt_latin1"] = _write(h / "gt_latin1.csv", good + f"{vid},0903,0.1,0.1,0.5,0.5,8,0 caf\xe9\n".encode("latin-1"))
    p["gt_nul"] = _write(h / "gt_nul.csv", good[:40] + b"\0\0\0" + good[40:])
    p["gt_short_row"] = _write(h / "gt_short_row.csv", good + f"{vid},0903,0.1,0.1\n".encode())
    p["gt_text_coord"] = _write(h / "gt_text_coord.csv", good + f"{vid},0903,0.1,abc,0.5,0.5,8,0\n".encode())
    p["gt_path_id"] = _write(h / "gt_path_id.csv", good + b"../../etc/passwd,0903,0.1,0.1,0.5,0.5,8,0\n")
    p["gt_abs_id"] = _write(h / "gt_abs_id.csv", good + b"/tmp/x,0903,0.1,0.1,0.5,0.5,8,0\n")
    p["gt_huge_label"] = _write(h / "gt_huge_label.csv", good + f"{vid},0903,0.1,0.1,0.5,0.5,99999999999999999999,0\n".encode())
    p["gt_neg_second"] = _write(h / "gt_neg_second.csv", good + f"{vid},-5,0.1,0.1,0.5,0.5,8,0\n".encode())
    p["gt_coord_2"] = _write(h / "gt_coord_2.csv", good + f"{vid},0903,0.1,0.1,2.5,0.5,8,0\n".encode())
    p["gt_empty"] = _write(h / "gt_empty.csv", b"")
    p["gt_crlf_bom"] = _write(h / "gt_crlf_bom.csv", b"\xef\xbb\xbf" + good.replace(b"\n", b"\r\n"))
    pred = p["pred"].read_bytes()
    p["pred_nan"] = _write(h / "pred_nan.csv", pred + f"{vid},0902,0.1,0.1,0.5,0.5,8,nan\n".encode())
    p["pred_latin1"] = _write(h / "pred_latin1.csv", pred + f"{vid},0902,0.1,0.1,0.5,0.5,8,0.5\xe9\n".encode("latin-1"))
    p["pred_7col"] = _write(h / "pred_7col.csv", pred + f"{vid},0902,0.1,0.1,0.5,0.5,8\n".encode())
    p["excl_bom"] = _write(h / "excl_bom.csv", b"\xef\xbb\xbf" + p["excl"].read_bytes())
    p["excl_3col"] = _write(h / "excl_3col.csv", f"{vid},0902,extra\n")
    lm = p["labelmap"].read_text()
    p["lm_broken"] = _write(h / "labelmap_broken.pbtxt", lm.replace("}", "", 1))
    p["lm_dup"] = _write(h / "labelmap_dup.pbtxt", lm + 'label {\n  name: "again"\n  label_id: 8\n}\n')
    p["lm_two_ids"] = _write(h / "labelmap_two_ids.pbtxt", 'item {\n  name: "x"\n  id: 3\n  label_id: 4\n}\n')
    p["lm_latin1"] = _write(h / "labelmap_latin1.pbtxt", lm.replace("jump", "j\xfcmp").encode("latin-1"))

    cfg = h / "configs"
    p["cfg_latin1"] = _write(cfg / "latin1.yaml", "train:\n  epochs: 2 # \xe9\n".encode("latin-1"))
    p["cfg_scalar_section"] = _write(cfg / "scalar_section.yaml", "model: 5\n")
    p["cfg_alias_loop"] = _write(cfg / "alias_loop.yaml", "a: &x [*x]\n")
    p["cfg_syntax"] = _write(cfg / "syntax.yaml", "train:\n  epochs: [1, 2\n")
    p["cfg_unknown"] = _write(cfg / "unknown.yaml", "train:\n  epoch: 2\n")
    p["cfg_list_top"] = _write(cfg / "list_top.yaml", "- 1\n- 2\n")
    p["cfg_type"] = _write(cfg / "type.yaml", "train:\n  epochs: many\n")

    wts = h / "weights"
    p["w_garbage"] = _write(wts / "garbage.pth", b"\x00garbage" * 64)
    p["w_empty"] = _write(wts / "empty.pth", b"")
    p["w_truncated"] = _write(wts / "truncated.pth", p["weights"].read_bytes()[: p["weights"].stat().st_size // 2])
    p["w_text"] = _write(wts / "text.pth", "this is not a checkpoint\n")
    p["w_folder"] = wts / "folder.pth"
    p["w_folder"].mkdir(parents=True)
    big = build_model(load_config(TINY, ["model.num_classes=7", "model.num_frames=8", "model.resnet.depth=101"]))
    p["w_other_arch"] = wts / "r101.pth"
    save_checkpoint(p["w_other_arch"], model=big)
    run = work / "run"  # a run that can be resumed (one epoch done)
    from ava_detect.config import config_to_dict, save_config
    from ava_detect.engine.checkpointing import capture_rng, save_training_checkpoint

    cfg7 = load_config(TINY, [*TINY_OVERRIDES, f"data.root={data}", f"train.output_dir={run}"])
    run_model = build_model(cfg7)
    save_training_checkpoint(run / "checkpoints" / "last.pth", {
        "model": run_model.state_dict(), "optimizer": torch.optim.SGD(run_model.parameters(), lr=0.1).state_dict(),
        "scheduler": {}, "scaler": {}, "epoch": 1, "iteration": 1, "rng": capture_rng(), "config": config_to_dict(cfg7),
        "best_map": float("nan"), "history": []})
    save_config(cfg7, run / "config.yaml")
    p["run"] = run
    p["w_pickle"] = wts / "code.pth"
    torch.save({"model": {}, "payload": _Payload()}, p["w_pickle"])

    vids = h / "videos"
    p["v_text"] = _write(vids / "notes.mp4", "not a video\n")
    p["v_zero"] = _write(vids / "zero.mp4", b"")
    stream_copy = vids / "whole" / f"{vid}.mkv"  # Matroska: a cut file still opens and claims its full length
    stream_copy.parent.mkdir(parents=True)
    with av.open(str(video)) as src, av.open(str(stream_copy), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    p["v_truncated"] = _write(vids / f"{vid}.mkv", stream_copy.read_bytes()[: stream_copy.stat().st_size * 2 // 3])
    shutil.rmtree(stream_copy.parent)
    p["v_folder_empty"] = vids / "empty_folder"
    p["v_folder_empty"].mkdir(parents=True)
    p["v_noframes"] = vids / "noframes.mp4"
    with av.open(str(p["v_noframes"]), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height = 64, 48
    p["v_audio_only"] = vids / "audio.mp4"
    with av.open(str(p["v_audio_only"]), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for packet in s.encode(frame):
            c.mux(packet)
        for packet in s.encode(None):
            c.mux(packet)
    p["notes"] = _write(work / "notes.txt", "a file where a folder is expected\n")
    p["afolder"] = work / "afolder"
    p["afolder"].mkdir()
    p["cvat_in"] = work / "cvat_in"  # a folder whose labels.json is given as the label map
    _write(p["cvat_in"] / "labels.json", p["labelmap"].read_bytes())
    p["raw"] = work / "raw"
    p["raw"].mkdir()
    shutil.copy(video, p["raw"] / f"{vid}.mp4")
    p["vid"] = vid  # type: ignore[assignment]
    from cvat_inputs import write_good_export, write_hostile_exports

    split = "val" if f"{vid}," in p["gt"].read_text() else "train"
    good = write_good_export(video, ann / f"{split}.csv", p["labelmap"], work / "good_export.xml")
    write_hostile_exports(good, work / "cvat", p["v_text"])
    p["cvat"] = work / "cvat"
    p["lm_one"] = _write(h / "labelmap_one.pbtxt", 'item {\n  name: "stand"\n  id: 1\n}\n')
    return {k: os.fspath(v) for k, v in p.items()}


class _Payload:
    """Pickled by reference: loading it would need this class, i.e. running code from the file."""

    def __reduce__(self):
        return (os.system, ("echo pickle code ran > /dev/null",))


# ----------------------------------------------------------------------------- the table


def cases() -> List[Case]:
    ev = ["eval", "--gt", "{gt}", "--pred", "{pred}", "--labelmap", "{labelmap}"]
    lm = ["--labelmap", "{labelmap}"]
    tiny = ["--config", "{tiny}", *TINY_OVERRIDES, "data.root={data}"]
    test = ["test", *tiny, "--no-progress", "--output-dir", "{work}/out_test"]
    train = ["train", *tiny, "train.epochs=1", "--output-dir", "{work}/out_train"]
    ann = ["annotate", "{video}", "--config", "{tiny}", "model.num_classes=7", "model.num_frames=8", *lm,
           "--weights", "{weights}", "--detector", "csv", "--boxes", "{boxes}", "--second-offset", "900",
           "--device", "cpu"]
    ann_out = [*ann, "--out", "{work}/o.mp4"]
    exp = ["export", "--config", "{tiny}", "model.num_classes=7", "model.num_frames=8", *lm, "--weights", "{weights}",
           "--format", "onnx"]
    exp_to = [*exp, "--out", "{work}/m.onnx"]
    det = ["detect", "--videos", "{video}", "--detector", "csv", "--boxes", "{boxes}", "--device", "cpu"]
    det_out = [*det, "--out", "{work}/o_boxes.csv"]
    pa = ["prep", "annotations", "--split", "val", "--root", "{data}"]
    syn = ["prep", "synthetic", "--videos", "2", "--seconds", "4", "--size", "64x64", "--no-progress"]
    c = [
        # --- eval: text inputs (one reading policy)
        Case("eval: baseline", [*ev], "ok"),
        Case("eval: ground truth as UTF-16", ["eval", "--gt", "{gt_utf16}", "--pred", "{pred}", *lm], says=r"UTF-16"),
        Case("eval: ground truth with a Latin-1 byte", ["eval", "--gt", "{gt_latin1}", "--pred", "{pred}", *lm],
             says=r"gt_latin1\.csv:\d+: .*not UTF-8"),
        Case("eval: ground truth with NUL bytes", ["eval", "--gt", "{gt_nul}", "--pred", "{pred}", *lm], says="NUL"),
        Case("eval: ground-truth row of 4 columns", ["eval", "--gt", "{gt_short_row}", "--pred", "{pred}", *lm],
             says=r"gt_short_row\.csv:\d+"),
        Case("eval: text in a coordinate", ["eval", "--gt", "{gt_text_coord}", "--pred", "{pred}", *lm],
             says=r"gt_text_coord\.csv:\d+"),
        Case("eval: a path as video id", ["eval", "--gt", "{gt_path_id}", "--pred", "{pred}", *lm],
             says=r"gt_path_id\.csv:\d+"),
        Case("eval: an absolute path as video id", ["eval", "--gt", "{gt_abs_id}", "--pred", "{pred}", *lm],
             says=r"gt_abs_id\.csv:\d+"),
        Case("eval: a label id too large for an integer", ["eval", "--gt", "{gt_huge_label}", "--pred", "{pred}", *lm],
             says=r"gt_huge_label\.csv:\d+"),
        Case("eval: a negative timestamp", ["eval", "--gt", "{gt_neg_second}", "--pred", "{pred}", *lm],
             says=r"gt_neg_second\.csv:\d+"),
        Case("eval: a coordinate of 2.5", ["eval", "--gt", "{gt_coord_2}", "--pred", "{pred}", *lm],
             says=r"gt_coord_2\.csv:\d+"),
        Case("eval: empty ground truth", ["eval", "--gt", "{gt_empty}", "--pred", "{pred}", *lm], says="gt_empty"),
        Case("eval: BOM and CRLF ground truth", ["eval", "--gt", "{gt_crlf_bom}", "--pred", "{pred}", *lm], "ok",
             same_as="eval: baseline"),
        Case("eval: a NaN score", ["eval", "--gt", "{gt}", "--pred", "{pred_nan}", *lm], says=r"pred_nan\.csv:\d+"),
        Case("eval: a Latin-1 byte in predictions", ["eval", "--gt", "{gt}", "--pred", "{pred_latin1}", *lm],
             says=r"pred_latin1\.csv:\d+"),
        Case("eval: a prediction row without a score", ["eval", "--gt", "{gt}", "--pred", "{pred_7col}", *lm],
             says=r"pred_7col\.csv:\d+"),
        Case("eval: exclusions baseline", [*ev, "--exclusions", "{excl}"], "ok"),
        Case("eval: exclusions with a BOM", [*ev, "--exclusions", "{excl_bom}"], "ok",
             same_as="eval: exclusions baseline"),
        Case("eval: exclusions of 3 columns", [*ev, "--exclusions", "{excl_3col}"], says=r"excl_3col\.csv:1"),
        Case("eval: missing ground truth", ["eval", "--gt", "{work}/nope.csv", "--pred", "{pred}"], says="not found"),
        Case("eval: ground truth is a folder", ["eval", "--gt", "{afolder}", "--pred", "{pred}"], says="folder"),
        Case("eval: broken label map", ["eval", "--gt", "{gt}", "--pred", "{pred}", "--labelmap", "{lm_broken}"],
             says=r"labelmap_broken\.pbtxt"),
        Case("eval: label map with a duplicate id", ["eval", "--gt", "{gt}", "--pred", "{pred}", "--labelmap", "{lm_dup}"],
             says=r"labelmap_dup\.pbtxt:\d+"),
        Case("eval: label map entry with two different ids", ["eval", "--gt", "{gt}", "--pred", "{pred}", "--labelmap",
                                                                "{lm_two_ids}"], says=r"labelmap_two_ids\.pbtxt:\d+"),
        Case("eval: Latin-1 label map", ["eval", "--gt", "{gt}", "--pred", "{pred}", "--labelmap", "{lm_latin1}"],
             says=r"labelmap_latin1\.pbtxt:\d+"),
        Case("eval: unknown protocol", [*ev, "--protocol", "coco"], says="invalid choice"),
        # --- eval: outputs (declared inputs and outputs)
        Case("eval: --json is --gt", [*ev, "--json", "{gt}"], says="refusing to overwrite"),
        Case("eval: --json is --pred through ./", [*ev, "--json", "{work}/./pred.csv"], says="refusing to overwrite"),
        Case("eval: --json is a folder", [*ev, "--json", "{afolder}"], says="is a folder"),
        Case("eval: --json under a file", [*ev, "--json", "{notes}/r.json"], says="is a file, not a folder"),
        Case("eval: --plots is a file", [*ev, "--plots", "{notes}"], says="is a file"),
        # --- configs (any command that reads one)
        Case("train: Latin-1 config", ["train", "--config", "{cfg_latin1}"], says=r"latin1\.yaml:\d+"),
        Case("train: a section that is a number", ["train", "--config", "{cfg_scalar_section}"], says="model"),
        Case("train: a self-referencing YAML alias", ["train", "--config", "{cfg_alias_loop}"], says="alias_loop"),
        Case("train: YAML syntax error", ["train", "--config", "{cfg_syntax}"], says=r"syntax\.yaml:\d+"),
        Case("train: misspelt key in the file", ["train", "--config", "{cfg_unknown}"], says="epoch"),
        Case("train: a list instead of sections", ["train", "--config", "{cfg_list_top}"], says="list_top"),
        Case("train: a word for a number", ["train", "--config", "{cfg_type}"], says="epochs"),
        Case("train: missing config", ["train", "--config", "{work}/none.yaml"], says="not found"),
        Case("train: config is a folder", ["train", "--config", "{afolder}"], says="folder"),
        Case("train: epochs=-2", [*train, "train.epochs=-2"], says="train.epochs"),
        Case("train: batch_size=0", [*train, "train.batch_size=0"], says="train.batch_size"),
        Case("train: base_lr=nan", [*train, "train.base_lr=nan"], says="train.base_lr"),
        Case("train: negative crop size", [*train, "data.train_crop_size=-64"], says="train_crop_size"),
        Case("train: misspelt override", [*train, "train.epoch=3"], says="train.epoch"),
        Case("train: override without a value", [*train, "train.epochs"], says="train.epochs"),
        Case("train: output folder is a file", [*train[:-1], "{notes}"], says="is a file"),
        Case("train: output folder under a file", [*train[:-1], "{notes}/run"], says="is a file, not a folder"),
        Case("train: initial weights are garbage", [*train, "--weights", "{w_garbage}"], says="garbage"),
        Case("train: initial weights run code when unpickled", [*train, "--weights", "{w_pickle}"],
             says="refused|would run code"),
        Case("train: a published name that does not exist", [*train, "--weights", "no_such_model"],
             says="no_such_model"),
        Case("train: ground truth with a path id", [*train, "data.train_gt={gt_path_id}"], says=r"gt_path_id\.csv:\d+"),
        Case("train: ground truth file missing", [*train, "data.train_gt={work}/none.csv"], says="none.csv"),
        Case("train: resume with another architecture", [*train[:-1], "{run}", "model.resnet.depth=101", "--resume"],
             says="cannot resume.*resnet"),
        Case("train: resume with nothing to resume", [*train, "--resume"], says="last.pth"),
        # --- test
        Case("test: garbage weights", [*test, "--weights", "{w_garbage}"], says="garbage.pth"),
        Case("test: empty weights file", [*test, "--weights", "{w_empty}"], says="empty.pth"),
        Case("test: truncated checkpoint", [*test, "--weights", "{w_truncated}"], says="truncated.pth"),
        Case("test: a text file as weights", [*test, "--weights", "{w_text}"], says="text.pth"),
        Case("test: weights that are a folder", [*test, "--weights", "{w_folder}"], says="folder.pth"),
        Case("test: weights of another architecture", [*test, "--weights", "{w_other_arch}"], says="r101.pth|shape"),
        Case("test: weights that run code when unpickled", [*test, "--weights", "{w_pickle}"],
             says="refused|would run code"),
        Case("test: output folder is a file", [*test[:-1], "{notes}", "--weights", "{weights}"], says="is a file"),
        Case("test: boxes with a Latin-1 byte", [*test, "data.val_boxes={pred_latin1}", "--weights", "{weights}"],
             says=r"pred_latin1\.csv:\d+"),
        Case("test: protocol unknown", [*test, "test.protocol=coco", "--weights", "{weights}"], says="test.protocol"),
        Case("test: bad device name", [*test, "test.device=gpu", "--weights", "{weights}"], says="test.device"),
        Case("test: videos folder missing", [*test, "data.video_dir={work}/novideos", "--weights", "{weights}"],
             says="novideos"),
        # --- export
        Case("export: --out is the weights", [*exp, "--out", "{weights}"], says="refusing to overwrite"),
        Case("export: --out is the config", [*exp, "--out", "{tiny}"], says="refusing to overwrite"),
        Case("export: --out is a folder", [*exp, "--out", "{afolder}"], says="is a folder"),
        Case("export: --out under a file", [*exp, "--out", "{notes}/m.onnx"], says="is a file, not a folder"),
        Case("export: unknown format", [*exp_to[:-4], "--format", "tflite", "--out", "{work}/m.tflite"],
             says="invalid choice"),
        Case("export: garbage weights", [*exp_to[:exp_to.index("--weights")], "--weights", "{w_garbage}",
                                         *exp_to[exp_to.index("--weights") + 2:]], says="garbage.pth"),
        Case("export: empty weights", [*exp_to[:exp_to.index("--weights")], "--weights", "{w_empty}",
                                       *exp_to[exp_to.index("--weights") + 2:]], says="empty.pth"),
        Case("export: weights that run code", [*exp_to[:exp_to.index("--weights")], "--weights", "{w_pickle}",
                                               *exp_to[exp_to.index("--weights") + 2:]], says="refused|would run code"),
        Case("export: weights of another architecture", [*exp_to[:exp_to.index("--weights")], "--weights",
                                                         "{w_other_arch}", *exp_to[exp_to.index("--weights") + 2:]],
             says="r101.pth|shape"),
        Case("export: label map of another size", [*exp_to, "--labelmap",
                                                    os.fspath(ROOT / "ava_detect/resources/ava_action_list_v2.2.pbtxt")],
             says="label map has 80 classes"),
        Case("export: a short side below two output strides", [*exp_to, "data.test_short_side=16"],
             says="test_short_side=16"),
        # --- annotate
        Case("annotate: --runtime onnxruntime with a checkpoint", [*ann_out, "--runtime", "onnxruntime"],
             says="tiny.pth: not an ONNX model"),
        Case("annotate: --runtime onnxruntime with a text file", [*ann_out[:ann_out.index("--weights")], "--weights",
                                                                   "{w_text}", *ann_out[ann_out.index("--weights") + 2:],
                                                                   "--runtime", "onnxruntime"],
             says="text.pth: not an ONNX model"),
        Case("annotate: --runtime torchscript with a checkpoint", [*ann_out, "--runtime", "torchscript"],
             says="tiny.pth: not a TorchScript model"),
        Case("annotate: unknown runtime", [*ann_out, "--runtime", "tensorrt"], says="invalid choice"),
        Case("annotate: threshold 2", [*ann_out, "--threshold", "2"], says="threshold"),
        Case("annotate: threshold nan", [*ann_out, "--threshold", "nan"], says="threshold"),
        Case("annotate: every 0", [*ann_out, "--every", "0"], says="every"),
        Case("annotate: top-k -1", [*ann_out, "--top-k", "-1"], says="top_k"),
        Case("annotate: box threshold 1.5", [*ann_out, "--box-threshold", "1.5"], says="score_threshold"),
        Case("annotate: a text file as video", ["annotate", "{v_text}", *ann[2:], "--out", "{work}/o.mp4"],
             says="notes.mp4"),
        Case("annotate: an empty file as video", ["annotate", "{v_zero}", *ann[2:], "--out", "{work}/o.mp4"],
             says="zero.mp4"),
        Case("annotate: a video without frames", ["annotate", "{v_noframes}", *ann[2:], "--out", "{work}/o.mp4"],
             says="noframes.mp4"),
        Case("annotate: an audio-only file", ["annotate", "{v_audio_only}", *ann[2:], "--out", "{work}/o.mp4"],
             says="audio.mp4"),
        Case("annotate: missing video", ["annotate", "{work}/none.mp4", *ann[2:], "--out", "{work}/o.mp4"],
             says="none.mp4"),
        Case("annotate: --out is the video", [*ann, "--out", "{video}"], says="refusing to overwrite"),
        Case("annotate: --json is the weights", [*ann_out, "--json", "{weights}"], says="refusing to overwrite"),
        Case("annotate: --csv is the box file", [*ann_out, "--csv", "{boxes}"], says="refusing to overwrite"),
        Case("annotate: --csv and --json are one file", [*ann_out, "--csv", "{work}/r.txt", "--json", "{work}/r.txt"],
             says="same file"),
        Case("annotate: --out is a folder", [*ann, "--out", "{afolder}"], says="is a folder"),
        Case("annotate: --out without a suffix", [*ann, "--out", "{work}/annotated"], says="suffix"),
        Case("annotate: --csv under a file", [*ann_out, "--csv", "{notes}/o.csv"], says="is a file, not a folder"),
        Case("annotate: garbage weights", [*ann_out[:ann_out.index("--weights")], "--weights", "{w_garbage}",
                                             *ann_out[ann_out.index("--weights") + 2:]], says="garbage.pth"),
        Case("annotate: weights of another architecture", [*ann_out[:ann_out.index("--weights")], "--weights",
                                                             "{w_other_arch}", *ann_out[ann_out.index("--weights") + 2:]],
             says="r101.pth|shape"),
        Case("annotate: label map of another size", [*ann_out, "--labelmap",
                                                      os.fspath(ROOT / "ava_detect/resources/ava_action_list_v2.2.pbtxt")],
             says="classes"),
        Case("annotate: bad device", [*ann_out, "--device", "tpu"], says="tpu"),
        Case("annotate: a truncated video warns", ["annotate", "{v_truncated}", *ann[2:], "--out", "{work}/t.mp4"],
             "warn", says="truncat"),
        # --- detect
        Case("detect: every 0", [*det_out, "--every", "0"], says="every"),
        Case("detect: bad seconds range", [*det_out, "--seconds", "9-3"], says="seconds"),
        Case("detect: --out is the box file", [*det, "--out", "{boxes}"], says="refusing to overwrite"),
        Case("detect: --out is the video", [*det, "--out", "{video}"], says="refusing to overwrite"),
        Case("detect: --out under a file", [*det, "--out", "{notes}/b.csv"], says="is a file, not a folder"),
        Case("detect: folder without videos", ["detect", "--videos", "{v_folder_empty}", *det[3:], "--out",
                                               "{work}/o_boxes.csv"], says="no video"),
        Case("detect: missing video", ["detect", "--videos", "{work}/none.mp4", *det[3:], "--out", "{work}/o_boxes.csv"],
             says="none.mp4"),
        Case("detect: ground truth in UTF-16", [*det_out, "--gt", "{gt_utf16}"], says="UTF-16"),
        Case("detect: garbage detector weights", ["detect", "--videos", "{video}", "--detector", "torchvision",
                                                  "--detector-weights", "{w_garbage}", "--device", "cpu", "--out",
                                                  "{work}/o_boxes.csv"], says="garbage.pth"),
        Case("detect: min size 0", [*det_out, "--min-size", "0"], says="min_size"),
        Case("detect: CVAT pre-labels", [*det, "--cvat", "{work}/o_cvat"], expect="ok"),
        Case("detect: neither --out nor --cvat", det, says="nothing to write"),
        Case("detect: --cvat is a file", [*det, "--cvat", "{notes}"], says="is a file; expected a folder"),
        Case("detect: --cvat under a file", [*det, "--cvat", "{notes}/cvat"], says="is a file, not a folder"),
        Case("detect: --cvat writes over the label map", [*det, "--cvat", "{cvat_in}", "--labelmap",
                                                           "{cvat_in}/labels.json"], says="same file as --labelmap"),
        Case("detect: --out is the label map", [*det, "--cvat", "{work}/o_cvat", *lm, "--out", "{labelmap}"],
             says="refusing to overwrite"),
        Case("detect: --weights without --cvat", [*det_out, "--weights", "{weights}"], says="give --cvat"),
        Case("detect: --action-threshold without --weights", [*det, "--cvat", "{work}/o_cvat", "--action-threshold",
                                                               "0.5"], says="needs --weights"),
        Case("detect: --action-threshold 2", [*det, "--cvat", "{work}/o_cvat", "--action-threshold", "2"],
             says="action-threshold"),
        Case("detect: label map does not fit the model", [*det, "--cvat", "{work}/o_cvat", "--config", "{tiny}",
                                                           "model.num_classes=7", "model.num_frames=8", "--weights",
                                                           "{weights}"], says="label map has 80 classes"),
        Case("detect: weights with another number of actions", [*det, "--cvat", "{work}/o_cvat", "--config", "{tiny}",
                                                                 "model.num_frames=8", "--weights", "{weights}"],
             says="tiny.pth.*(7|80)"),
        Case("detect: weights of another model", [*det, "--cvat", "{work}/o_cvat", "--config", "{tiny}", *lm,
                                                   "model.num_classes=7", "model.num_frames=8", "--weights",
                                                   "{w_other_arch}"], says="r101.pth"),
        Case("detect: garbage action weights", [*det, "--cvat", "{work}/o_cvat", "--config", "{tiny}", *lm,
                                                 "model.num_classes=7", "--weights", "{w_garbage}"], says="garbage.pth"),
        Case("detect: action weights that run code", [*det, "--cvat", "{work}/o_cvat", "--config", "{tiny}", *lm,
                                                       "model.num_classes=7", "--weights", "{w_pickle}"],
             says="refused|would run code"),
        # --- prep
        Case("prep synthetic: --out is a file", [*syn, "--out", "{notes}"], says="is a file"),
        Case("prep synthetic: frame size 0x0", [*syn[:-3], "--size", "0x0", "--out", "{work}/s"], says="size"),
        Case("prep synthetic: frame size too large", [*syn[:-3], "--size", "100000x100000", "--out", "{work}/s"],
             says="size"),
        Case("prep synthetic: -1 videos", ["prep", "synthetic", "--videos", "-1", "--out", "{work}/s"], says="videos"),
        Case("prep synthetic: 0 seconds", ["prep", "synthetic", "--seconds", "0", "--out", "{work}/s"], says="seconds"),
        Case("prep synthetic: val fraction 2", ["prep", "synthetic", "--val-fraction", "2", "--out", "{work}/s"],
             says="val"),
        Case("prep synthetic: into a foreign folder", [*syn, "--out", "{raw}"], says="raw"),
        Case("prep videos: --out is --src", ["prep", "videos", "--src", "{raw}", "--out", "{raw}", "--no-progress"],
             says="source folder"),
        Case("prep videos: --src missing", ["prep", "videos", "--src", "{work}/none", "--out", "{work}/pv"],
             says="none"),
        Case("prep videos: --src is a file", ["prep", "videos", "--src", "{notes}", "--out", "{work}/pv"],
             says="notes.txt"),
        Case("prep videos: --out is a file", ["prep", "videos", "--src", "{raw}", "--out", "{notes}"], says="notes.txt"),
        Case("prep videos: end before start", ["prep", "videos", "--src", "{raw}", "--out", "{work}/pv",
                                               "--end-second", "100"], says="end-second"),
        Case("prep frames: --out is --videos", ["prep", "frames", "--videos", "{videos}", "--out", "{videos}"],
             says="same folder"),
        Case("prep frames: --out is a file", ["prep", "frames", "--videos", "{videos}", "--out", "{notes}"],
             says="is a file"),
        Case("prep frames: qscale 0", ["prep", "frames", "--videos", "{videos}", "--out", "{work}/fr", "--qscale", "0"],
             says="qscale"),
        Case("prep frames: no videos", ["prep", "frames", "--videos", "{v_folder_empty}", "--out", "{work}/fr"],
             says="no prepared videos"),
        Case("prep annotations: --out is --gt", [*pa, "--out", "{gt}"], says="refusing to overwrite"),
        Case("prep annotations: --iou 2", [*pa, "--iou", "2", "--out", "{work}/lab.csv"], says="iou"),
        Case("prep annotations: ground truth with a path id", [*pa, "--gt", "{gt_path_id}", "--out", "{work}/lab.csv"],
             says=r"gt_path_id\.csv:\d+"),
        Case("prep annotations: Latin-1 boxes", [*pa, "--boxes", "{pred_latin1}", "--out", "{work}/lab.csv"],
             says=r"pred_latin1\.csv:\d+"),
        # --- prep import, prep cvat-example
        *_import_cases(),
        Case("prep import: --out is a file", ["prep", "import", "--cvat", "{cvat}/good.xml", "--videos", "{videos}",
                                              "--out", "{notes}", "--config", "{tiny}"], says="notes.txt"),
        Case("prep import: --out is the videos folder", ["prep", "import", "--cvat", "{cvat}/good.xml", "--videos",
                                                         "{videos}", "--out", "{videos}", "--config", "{tiny}"],
             says="videos"),
        Case("prep import: no export in the folder", ["prep", "import", "--cvat", "{afolder}", "--videos", "{videos}",
                                                      "--out", "{work}/imp", "--config", "{tiny}"],
             says="no CVAT exports"),
        Case("prep cvat-example: --out is a file", ["prep", "cvat-example", "--out", "{notes}"], says="notes.txt"),
        Case("prep cvat-example: 1 video", ["prep", "cvat-example", "--out", "{work}/ex", "--videos", "1"],
             says="videos"),
        # --- quickstart
        Case("quickstart: --workdir is a file", ["quickstart", "--workdir", "{notes}"], says="is a file"),
        Case("quickstart: misspelt override", ["quickstart", "--workdir", "{work}/qs", "train.epoch=1"],
             says="train.epoch"),
        Case("quickstart: size 1x1", ["quickstart", "--workdir", "{work}/qs", "--size", "1x1"], says="size"),
        # --- the command line itself
        Case("cli: unknown command", ["frobnicate"], says="invalid choice"),
        Case("cli: unknown flag", ["eval", "--gt", "{gt}", "--pred", "{pred}", "--bogus"], says="unrecognized"),
        Case("cli: missing required flag", ["eval", "--gt", "{gt}"], says="--pred"),
    ]
    return c


def _import_cases() -> List[Case]:
    """``prep import`` of each hostile CVAT export of :mod:`cvat_inputs`."""
    from cvat_inputs import HOSTILE

    out = []
    for name, (file, says) in HOSTILE.items():
        argv = ["prep", "import", "--cvat", f"{{cvat}}/{file}", "--videos", "{videos}", "{v_text}", "--out",
                "{work}/imp", "--config", "{tiny}", "--detector", "csv", "--boxes", "{boxes}", "--device", "cpu"]
        if "label map" in name:
            argv += ["--labelmap", "{lm_one}"]
        out.append(Case(f"prep import: {name}", argv, says=says))
    return out


# ----------------------------------------------------------------------------- running


def _state(folder: Path) -> Dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): (b"<dir>" if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


def run_case(argv: Sequence[str]) -> Outcome:
    """``ava-detect ARGV`` in this process, its output captured."""
    import logging

    from ava_detect import cli

    out, err = io.StringIO(), io.StringIO()
    crashed = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as e:
            code = int(e.code) if isinstance(e.code, int) else 1
        except BaseException as e:  # a traceback: a problem of ours
            code = 1
            crashed = "".join(traceback.format_exception_only(type(e), e)).strip().splitlines()[-1]
            traceback.print_exc(file=err)
    logger = logging.getLogger("ava_detect")  # the CLI routes the library's log to the stderr of that moment
    logger.handlers.clear()
    return Outcome(code, out.getvalue(), err.getvalue(), crashed)


_TIMING = re.compile(r"\d+(\.\d+)? ?(s|min)\b|in \d+(\.\d+)? s")


def judge(case: Case, outcome: Outcome, before: Dict[str, bytes], after: Dict[str, bytes],
          results: Dict[str, Outcome]) -> Optional[str]:
    """None when the case was handled as promised, else what went wrong."""
    if outcome.crashed:
        return f"traceback: {outcome.crashed}"
    if "Traceback" in outcome.err:
        return "a traceback on stderr"
    errors = [line for line in outcome.err.splitlines() if ": error: " in line]
    if case.expect == "error":
        if outcome.code != 2:
            return f"exit status {outcome.code}, expected 2" + (f" ({errors[0]})" if errors else "")
        if len(errors) != 1:
            return f"{len(errors)} error lines: {outcome.err.strip()[-300:]!r}"
        if case.says and not re.search(case.says, errors[0], re.IGNORECASE):
            return f"error does not say /{case.says}/: {errors[0]}"
        changed = sorted(set(before) ^ set(after) | {k for k in before.keys() & after.keys() if before[k] != after[k]})
        if changed:
            return f"files created, changed or removed: {', '.join(changed[:5])}"
        return None
    if outcome.code != 0:
        return f"exit status {outcome.code}, expected 0: {(errors or [outcome.err.strip()[-200:]])[0]}"
    if case.expect == "warn":
        warnings = [line[line.index("warning:"):] for line in outcome.err.splitlines() if "warning:" in line]
        if not any(re.search(case.says, w, re.IGNORECASE) for w in warnings):
            return f"no warning saying /{case.says}/ (stderr: {outcome.err.strip()[-200:]!r})"
    if case.same_as is not None:
        reference = results.get(case.same_as)
        if reference is None or reference.code != 0:
            return f"reference case {case.same_as!r} did not run"
        strip = lambda text: [_TIMING.sub("", line) for line in text.splitlines() if not line.startswith("wrote ")]  # noqa: E731
        if strip(reference.out) != strip(outcome.out):
            return f"result differs from {case.same_as!r}"
    return None


def probe(work: Path, only: str = "", verbose: bool = False) -> Dict[str, int]:
    """Build the workspace in ``work``, run the cases, print the problems and the summary."""
    start = time.perf_counter()
    paths = build_workspace(work)
    results: Dict[str, Outcome] = {}
    problems: List[str] = []
    table = [c for c in cases() if only.lower() in c.name.lower()]
    for case in table:
        argv = [a.format(**paths) for a in case.argv]
        before = _state(work)
        outcome = run_case(argv)
        after = _state(work)
        results[case.name] = outcome
        problem = judge(case, outcome, before, after, results)
        _clean_outputs(work, before)
        if problem:
            problems.append(f"{case.name}: {problem}")
            print(f"PROBLEM  {case.name}: {problem}", flush=True)
        elif verbose:
            shown = next((line for line in outcome.err.splitlines() if ": error: " in line or "warning:" in line), "ok")
            print(f"handled  {case.name}: {shown}", flush=True)
    summary = {"tried": len(table), "handled": len(table) - len(problems), "problems": len(problems)}
    print(f"inputs tried: {summary['tried']}, handled: {summary['handled']}, problems: {summary['problems']} "
          f"({time.perf_counter() - start:.0f} s)")
    return summary


def _clean_outputs(work: Path, before: Dict[str, bytes]) -> None:
    """Remove what an ``ok`` case wrote, so that the next case starts from the same workspace."""
    for path in sorted(work.rglob("*"), key=lambda p: -len(p.parts)):
        key = path.relative_to(work).as_posix()
        if key not in before:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", help="workspace folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.fspath(ROOT))
    with contextlib.ExitStack() as stack:
        work = Path(args.work) if args.work else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        summary = probe(work, args.only, args.verbose)
    return 1 if summary["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
