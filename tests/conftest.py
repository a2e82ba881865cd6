"""Shared test fixtures.

Reference data lives in two places: small files copied into ``tests/fixtures`` (always there)
and large ones in ``../shared`` beside the project (there in CI; absent in a user's clone, where
the tests that need it skip with a reason).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AVA_DETECT_SHARED", ROOT.parent / "shared"))
FIXTURES = ROOT / "tests" / "fixtures"

# Two cores in CI: keep torch from oversubscribing when several things run.
torch.set_num_threads(min(2, torch.get_num_threads()))


def shared_path(relative: str) -> Path:
    """Path inside ``../shared``; skips the calling test when it is absent."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"needs {relative} from the shared reference data (../shared), which is not present")
    return path


@pytest.fixture
def shared():
    """``shared("fixtures/models/...")`` -> Path, skipping the test when ../shared lacks it."""
    return shared_path


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _library_logging_propagates():
    """Commands run in tests (``cli.main``) route the library's loggers to stderr and stop their
    propagation; undo that after each test so that ``caplog`` sees warnings in the next one."""
    yield
    for name in ("ava_detect", "data_prep"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


@pytest.fixture(scope="session")
def detector_weights(tmp_path_factory) -> Path:
    """A Faster R-CNN v2 with random weights whose classifier calls every proposal "person"
    (score ~0.9995), saved as a state dict: a person detector the tests can build offline."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None,
                                                                    num_classes=91)
    state = model.state_dict()
    state["roi_heads.box_predictor.cls_score.weight"].zero_()
    state["roi_heads.box_predictor.cls_score.bias"][1] = 12.0
    path = tmp_path_factory.mktemp("det") / "frcnn.pth"
    torch.save(state, path)
    return path


#: The shortened quickstart the tests run: a smaller synthetic set (12 videos, 8 train + 4 val, x 12 s at
#: 160x120 -> 72 training keyframes, about 250 people, and 36 validation keyframes) and 20 epochs of 9
#: steps of the quickstart recipe (configs/synthetic/slowfast_tiny.yaml; its 112 px inputs fit these
#: frames as they fit the default 320x240 set). About 2 minutes on 2 cores.
QUICKSTART_SET = ["--videos", "12", "--seconds", "12", "--size", "160x120"]
QUICKSTART_OVERRIDES = ["train.epochs=20", "train.eval_period=0", "train.checkpoint_period=0"]


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """The work folder of one shortened ``ava-detect quickstart`` (dataset, training, test, annotated
    clip), shared by the tests that need a trained model."""
    from ava_detect import cli

    work = tmp_path_factory.mktemp("quickstart")
    code = cli.main(["quickstart", "--workdir", str(work), *QUICKSTART_SET, *QUICKSTART_OVERRIDES])
    assert code == 0
    return work
