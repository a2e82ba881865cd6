"""Shared test fixtures (plain values and functions shared by the test files are in ``common.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from common import FIXTURES, QUICKSTART_OVERRIDES, QUICKSTART_SET, shared_path

# Two cores in CI: keep torch from oversubscribing when several things run.
torch.set_num_threads(min(2, torch.get_num_threads()))


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
    logger = logging.getLogger("ava_detect")
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


@pytest.fixture(scope="session")
def quickstart_run(tmp_path_factory) -> Path:
    """The work folder of one shortened ``ava-detect quickstart`` (dataset, training, test, annotated
    clip), shared by the tests that need a trained model."""
    from ava_detect import cli

    work = tmp_path_factory.mktemp("quickstart")
    code = cli.main(["quickstart", "--workdir", str(work), *QUICKSTART_SET, *QUICKSTART_OVERRIDES])
    assert code == 0
    return work
