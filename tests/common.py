"""What several test files share: where the reference data is, the test extras, the device pin.

Imported as ``from common import ...`` (pytest puts this folder on ``sys.path`` for the test files
here); fixtures built on these live in ``conftest.py``.

Reference data lives in two places: small files copied into ``tests/fixtures`` (always there)
and large ones in ``../shared`` beside the project (there in CI; absent in a user's clone, where
the tests that need it skip with a reason).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AVA_DETECT_SHARED", ROOT.parent / "shared"))
FIXTURES = ROOT / "tests" / "fixtures"

#: Config overrides that pin training and test inference to the CPU, so that a test gives the same
#: result on a machine with a GPU as in CI (``annotate`` and ``detect`` take ``--device cpu``).
CPU = ["train.device=cpu", "test.device=cpu"]

#: The shortened quickstart the tests run: a smaller synthetic set (12 videos, 8 train + 4 val, x 12 s at
#: 160x120 -> 72 training keyframes, about 250 people, and 36 validation keyframes) and 20 epochs of 9
#: steps of the quickstart recipe (configs/synthetic/slowfast_tiny.yaml; its 112 px inputs fit these
#: frames as they fit the default 320x240 set). About 2 minutes on 2 cores.
QUICKSTART_SET = ["--videos", "12", "--seconds", "12", "--size", "160x120"]
QUICKSTART_OVERRIDES = ["train.epochs=20", "train.eval_period=0", "train.checkpoint_period=0", *CPU]

#: The tiny SlowFast (configs/tiny.yaml) at 64 px and 8 frames on a small synthetic set (7 classes):
#: overrides for CPU tests of training and testing.
TINY_SYNTHETIC = [
    "model.num_classes=7", "model.num_frames=8", "model.resnet.width_per_group=8",
    "data.labelmap=annotations/labelmap.pbtxt", "data.num_workers=0",
    "data.train_jitter_min=64", "data.train_jitter_max=80", "data.train_crop_size=64", "data.test_short_side=64",
    "train.batch_size=2", "train.reference_batch_size=2", "train.base_lr=0.05", "train.warmup_epochs=0",
    "train.eval_period=0", "train.amp=false", "test.batch_size=2", *CPU,
]


def shared_path(relative: str) -> Path:
    """Path inside ``../shared``; skips the calling test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {relative} from the shared reference data (../shared), which is not present")
    return path


def in_ci() -> bool:
    """Whether the tests run in CI (which sets ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_extra(module: str) -> ModuleType:
    """Import ``module``, a test extra (``pip install -e ".[test]"``, e.g. ``pytorchvideo``).

    Where it is missing, the calling test skips with the reason; in CI (``CI=true``), which installs
    the extras, it fails instead, so that a broken install cannot pass as skipped tests.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        reason = f"needs {module} from the test extras (pip install -e \".[test]\"): {e}"
        if in_ci():
            pytest.fail(f"{reason}; CI installs the test extras, so its absence is a failure", pytrace=False)
        pytest.skip(reason)


def subprocess_env(**extra: str) -> Dict[str, str]:
    """Environment for a child Python process that imports this checkout's ``ava_detect``."""
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return dict(os.environ, PYTHONPATH=path, **extra)


def command(*words: str) -> List[str]:
    """``ava-detect WORDS...`` as a child process of this interpreter."""
    return [sys.executable, "-m", "ava_detect", *words]


def cli_error(capsys, *argv) -> str:
    """Run ``ava-detect ARGV`` in this process and return its error line, after checking the promise
    of the README: exit status 2, exactly one ``error:`` line on stderr, no traceback."""
    from ava_detect import cli

    try:
        code = cli.main([os.fspath(a) for a in argv])
    except SystemExit as e:  # argparse's errors
        code = e.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert code == 2, f"exit status {code}; stderr: {err}"
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def folder_state(folder: Path) -> Dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes: compare before and after a command
    to check that it changed or left nothing."""
    return {p.relative_to(folder).as_posix(): (b"<dir>" if p.is_dir() else p.read_bytes())
            for p in sorted(folder.rglob("*"))}


#: A trained model must beat the random-score mean by at least this, and by 4 of its standard deviations.
LEARNING_MARGIN = 0.08


def chance_map(cfg, draws: int = 50) -> Tuple[float, float]:
    """Mean and standard deviation of the frame-mAP of uniform random scores on the validation
    boxes (same split, same evaluator)."""
    import numpy as np
    import torch

    from ava_detect.data.dataset import build_dataset
    from ava_detect.engine.inference import build_evaluator

    dataset = build_dataset(cfg, "val")
    kf = dataset.keyframes
    counts = np.diff(kf.offsets)
    video_ids = list(np.repeat(kf.video_ids, counts))
    seconds = torch.from_numpy(np.repeat(kf.seconds, counts))
    boxes = torch.from_numpy(kf.boxes)
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(draws):
        evaluator = build_evaluator(cfg)
        evaluator.add(video_ids, seconds, boxes, torch.from_numpy(rng.random((len(boxes), len(dataset.class_ids)))),
                      dataset.class_ids)
        maps.append(evaluator.evaluate().mAP)
    return float(np.mean(maps)), float(np.std(maps))
