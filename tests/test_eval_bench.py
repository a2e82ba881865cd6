"""``bench/eval_speed.py --reference-dir``: the plumbing only (which files the official evaluator
is given, how its result is read, what the output says), with fake checkouts made here. The fakes
compute nothing: this cannot say anything about the official evaluators' speed or numbers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from common import ROOT

GT = ["vidA,0902,0.1,0.1,0.5,0.5,12,0", "vidA,0903,0.1,0.1,0.5,0.5,12,0", "vidB,0902,0.2,0.2,0.6,0.6,17,1"]
PRED = ["vidA,0902,0.1,0.1,0.5,0.5,12,0.9", "vidA,0903,0.1,0.1,0.5,0.5,12,0.8", "vidB,0902,0.2,0.2,0.6,0.6,17,0.7"]

FAKE_OFFICIAL = '''
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument("-l", "--labelmap"); parser.add_argument("-g", "--groundtruth"); parser.add_argument("-d", "--detections")
args = parser.parse_args()
record = {"argv": sys.argv[1:], "cwd": os.getcwd(), "optimized": not __debug__,
          "gt": open(args.groundtruth).read().splitlines(), "pred": open(args.detections).read().splitlines()}
json.dump(record, open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "called.json"), "w"))
print("{ 'PascalBoxes/Precision/mAP@0.5IOU': 0.0,\\n  'PascalBoxes_Precision/mAP@0.5IOU': 0.625}")
'''

FAKE_HELPER = '''
import json, os
CALLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "called.json")
def read_labelmap(path):
    return [{"id": 12, "name": "stand"}], {12, 17}
def read_exclusions(path):
    return {"vidA,0903"}
def read_csv(path, whitelist, load_score=False):
    rows = open(path).read().splitlines()
    return {"path": path, "rows": len(rows), "load_score": load_score}
def run_evaluation(categories, groundtruth, detections, excluded_keys, verbose=True):
    json.dump({"gt": groundtruth, "pred": detections, "excluded": sorted(excluded_keys)}, open(CALLS, "w"))
    return {"PascalBoxes_Precision/mAP@0.5IOU": 0.375}
'''


def _bench():
    spec = importlib.util.spec_from_file_location("eval_speed_bench", ROOT / "bench" / "eval_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gt.csv").write_text("\n".join(GT) + "\n")
    (data / "pred.csv").write_text("\n".join(PRED) + "\n")
    (data / "excluded.csv").write_text("vidA,0903\n")
    return data


def test_reference_dir_runs_the_official_script_on_the_same_rows(tmp_path, capsys):
    checkout = tmp_path / "ActivityNet"
    (checkout / "Evaluation" / "ava").mkdir(parents=True)
    (checkout / "Evaluation" / "get_ava_performance.py").write_text(FAKE_OFFICIAL)
    data = _data(tmp_path)
    assert _bench().main(["--data-dir", str(data), "--protocol", "both", "--skip-loop",
                          "--reference-dir", str(checkout)]) == 0
    out = capsys.readouterr().out
    called = json.loads((checkout / "Evaluation" / "called.json").read_text())
    assert called["cwd"] == str(checkout / "Evaluation") and called["optimized"]
    assert called["argv"][called["argv"].index("-l") + 1].endswith("ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    # this script has no exclusions flag: it gets the rows without the excluded key, nothing else changed
    assert called["gt"] == [GT[0], GT[2]] and called["pred"] == [PRED[0], PRED[2]]
    line = next(ln for ln in out.splitlines() if ln.startswith("reference:"))
    assert "official ActivityNet get_ava_performance.py" in line and "mAP 0.625000" in line
    assert "speed ratio reference/ours" in line
    assert "no --reference-dir" not in out


def test_reference_dir_runs_pyslowfast_helper(tmp_path, capsys):
    checkout = tmp_path / "SlowFast"
    (checkout / "slowfast" / "utils").mkdir(parents=True)
    (checkout / "slowfast" / "__init__.py").write_text("")
    (checkout / "slowfast" / "utils" / "__init__.py").write_text("")
    (checkout / "slowfast" / "utils" / "ava_eval_helper.py").write_text(FAKE_HELPER)
    data = _data(tmp_path)
    assert _bench().main(["--data-dir", str(data), "--protocol", "pyslowfast", "--skip-loop",
                          "--reference-dir", str(checkout)]) == 0
    out = capsys.readouterr().out
    called = json.loads((checkout / "slowfast" / "utils" / "called.json").read_text())
    assert called["gt"] == {"path": str(data / "gt.csv"), "rows": 3, "load_score": False}
    assert called["pred"] == {"path": str(data / "pred.csv"), "rows": 3, "load_score": True}
    assert called["excluded"] == ["vidA,0903"]
    line = next(ln for ln in out.splitlines() if ln.startswith("reference:"))
    assert "PySlowFast ava_eval_helper" in line and "mAP 0.375000" in line


def test_without_reference_dir_the_output_says_the_reference_is_our_own_loop(tmp_path, capsys):
    data = _data(tmp_path)
    assert _bench().main(["--data-dir", str(data), "--skip-loop"]) == 0
    out = capsys.readouterr().out
    assert "no official evaluator is timed" in out and "own loop implementation" in out
