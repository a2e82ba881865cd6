"""Frame-mAP against the numbers the reference evaluators produced on the fixture files
(``expected.json`` of each fixture folder): every per-class AP within 1e-12, NaN exactly where
the reference has null, and the mAP."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ava_detect.data.constants import labelmap_60_path, labelmap_80_path
from ava_detect.evaluation.frame_map import evaluate_files

from common import FIXTURES, SHARED, shared_path

TOL = 1e-12
PACKAGED = {"ava_action_list_v2.2.pbtxt": labelmap_80_path(),
            "ava_action_list_v2.2_for_activitynet_2019.pbtxt": labelmap_60_path()}


def _cases(folder: Path):
    path = folder / "expected.json"
    if not path.exists():
        return []
    return [(folder.name, i, case) for i, case in enumerate(json.loads(path.read_text()))]


LOCAL = _cases(FIXTURES / "eval" / "ava_val_excerpt") + _cases(FIXTURES / "eval" / "mmaction2_small")
SYNTHETIC = _cases(SHARED / "fixtures" / "eval" / "synthetic_a") or [("synthetic_a", 0, None)]


def _check(folder: Path, case: dict) -> None:
    labelmap = folder / case["labelmap"]
    if not labelmap.exists():
        labelmap = PACKAGED[case["labelmap"]]
    exclusions = folder / case["exclusions"] if case["exclusions"] else None
    result = evaluate_files(gt_path=folder / "gt.csv", pred_path=folder / "pred.csv", labelmap=labelmap,
                            exclusions_path=exclusions, protocol=case["protocol"])
    assert result.protocol == case["protocol"]
    assert {str(k) for k in result.per_class_ap} == set(case["per_class_ap"])
    for cid, expected in case["per_class_ap"].items():
        got = result.per_class_ap[int(cid)]
        if expected is None:
            assert math.isnan(got), f"class {cid}: expected NaN (no ground truth), got {got}"
        else:
            assert abs(got - expected) <= TOL, f"class {cid}: {got!r} != {expected!r}"
    assert abs(result.mAP - case["mAP"]) <= TOL


@pytest.mark.parametrize("name,index,case", LOCAL, ids=[f"{n}-{i}-{c['protocol']}" for n, i, c in LOCAL])
def test_local_fixture(name, index, case):
    _check(FIXTURES / "eval" / name, case)


@pytest.mark.parametrize("name,index,case", SYNTHETIC,
                         ids=[f"{n}-{i}-{c['protocol'] if c else 'absent'}" for n, i, c in SYNTHETIC])
def test_synthetic_fixture(name, index, case):
    folder = shared_path("fixtures/eval/synthetic_a")
    assert case is not None
    _check(folder, case)


def test_fixture_labelmaps_agree_with_packaged_ones():
    """The label maps named by the cases are the packaged ones (so the cases test what users run)."""
    ava = shared_path("ava")
    for name, packaged in PACKAGED.items():
        assert (ava / name).read_text() == packaged.read_text()
