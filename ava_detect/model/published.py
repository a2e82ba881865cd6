"""Published weights by name: where they are, which preset they fit, and the download into the torch hub cache.

``load_weights(model, "slowfast_r50_8x8_ava")`` (or ``--weights slowfast_r50_8x8_ava``) downloads the
file once into ``<torch hub dir>/checkpoints/`` with a progress bar and loads it. Without network
access, download the URL elsewhere and pass the file's path instead; the loading code is the same.
"""

from __future__ import annotations

import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Dict
from urllib.parse import urlparse

import torch

from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

_PTV = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"
_PSF = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo"


@dataclass(frozen=True)
class PublishedWeights:
    """One published checkpoint."""

    url: str
    #: the preset whose architecture the file fits, relative to the configs folder
    #: (:func:`ava_detect.config.packaged_config`)
    config: str
    description: str


#: Name -> published file. AVA models carry a detection head; Kinetics models are backbones
#: (their classification head is dropped and the detection head freshly initialised).
PUBLISHED: Dict[str, PublishedWeights] = {
    "slowfast_r50_8x8_ava": PublishedWeights(
        f"{_PTV}/ava/SLOWFAST_8x8_R50_DETECTION.pyth", "ava/slowfast_r50_8x8.yaml",
        "PyTorchVideo slowfast_r50_detection, AVA v2.2, 24.67 frame-mAP (RoIAlign aligned=False)"),
    "slow_r50_4x16_ava": PublishedWeights(
        f"{_PTV}/ava/SLOW_4x16_R50_DETECTION.pyth", "ava/slow_r50_4x16.yaml",
        "PyTorchVideo slow_r50_detection, AVA v2.2 (RoIAlign aligned=False)"),
    "slow_r50_4x16_ava_pyslowfast": PublishedWeights(
        f"{_PSF}/ava/C2D_8x8_R50.pkl", "ava/slow_r50_4x16.yaml",
        "PySlowFast model zoo Slow R50 4x16, AVA v2.2, 19.5 frame-mAP (Caffe2 .pkl, aligned=False)"),
    "slowfast_r101_8x8_nonlocal_ava": PublishedWeights(
        f"{_PSF}/ava/SLOWFAST_32x2_R101_50_50.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "PySlowFast model zoo SlowFast R101 8x8 with non-local blocks, AVA v2.2, 29.1 frame-mAP as published "
        "(Caffe2 .pkl, aligned=False)"),
    "slowfast_r101_16x8_nonlocal_ava": PublishedWeights(
        f"{_PSF}/ava/SLOWFAST_64x2_R101_50_50.pkl", "ava/slowfast_r101_16x8_nonlocal.yaml",
        "PySlowFast model zoo SlowFast R101 16x8 with non-local blocks, AVA v2.2, 29.4 frame-mAP as published "
        "(Caffe2 .pkl, aligned=False)"),
    "slowfast_r101_8x8_nonlocal_ava_v2.1": PublishedWeights(
        f"{_PSF}/ava/SLOWFAST_32x2_R101_50_50_v2.1.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "PySlowFast model zoo SlowFast R101 8x8 with non-local blocks, AVA v2.1, 28.2 frame-mAP as published "
        "(Caffe2 .pkl, aligned=False)"),
    "slowfast_r101_32x2_ava": PublishedWeights(  # the former name of slowfast_r101_8x8_nonlocal_ava
        f"{_PSF}/ava/SLOWFAST_32x2_R101_50_50.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "former name of slowfast_r101_8x8_nonlocal_ava (the same file and preset)"),
    "slowfast_r50_8x8_kinetics400": PublishedWeights(
        f"{_PTV}/kinetics/SLOWFAST_8x8_R50.pyth", "ava/slowfast_r50_8x8.yaml",
        "PyTorchVideo slowfast_r50, Kinetics-400 backbone (76.4 top-1) to train AVA heads from"),
    "slow_r50_8x8_kinetics400": PublishedWeights(
        f"{_PTV}/kinetics/SLOW_8x8_R50.pyth", "ava/slow_r50_4x16.yaml",
        "PyTorchVideo slow_r50, Kinetics-400 backbone to train AVA heads from"),
    "slowfast_r50_8x8_kinetics400_pyslowfast": PublishedWeights(
        f"{_PSF}/kinetics400/SLOWFAST_8x8_R50.pkl", "ava/slowfast_r50_32x2.yaml",
        "PySlowFast model zoo SlowFast R50 8x8, Kinetics-400 backbone (Caffe2 .pkl)"),
    "slowfast_r101_8x8_nonlocal_kinetics600": PublishedWeights(
        f"{_PSF}/ava/pretrain/SLOWFAST_32x2_R101_50_50.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "PySlowFast model zoo Kinetics-600 SlowFast R101 8x8 backbone with non-local blocks, the start of its "
        "29.1 AVA model (Caffe2 .pkl)"),
    "slowfast_r101_16x8_nonlocal_kinetics600": PublishedWeights(
        f"{_PSF}/ava/pretrain/SLOWFAST_64x2_R101_50_50.pkl", "ava/slowfast_r101_16x8_nonlocal.yaml",
        "PySlowFast model zoo Kinetics-600 SlowFast R101 16x8 backbone with non-local blocks, the start of its "
        "29.4 AVA model (Caffe2 .pkl)"),
    "slowfast_r101_8x8_nonlocal_kinetics600_v2.1": PublishedWeights(
        f"{_PSF}/ava/pretrain/SLOWFAST_32x2_R101_50_50_v2.1.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "PySlowFast model zoo Kinetics-600 SlowFast R101 8x8 backbone with non-local blocks, the start of its "
        "28.2 AVA v2.1 model (Caffe2 .pkl)"),
    "slowfast_r101_32x2_kinetics600": PublishedWeights(  # the former name of slowfast_r101_8x8_nonlocal_kinetics600
        f"{_PSF}/ava/pretrain/SLOWFAST_32x2_R101_50_50.pkl", "ava/slowfast_r101_8x8_nonlocal.yaml",
        "former name of slowfast_r101_8x8_nonlocal_kinetics600 (the same file and preset)"),
}


def cache_path(name: str) -> Path:
    """Where the published file ``name`` is kept: ``<torch hub dir>/checkpoints/<name><ext>``."""
    url = PUBLISHED[name].url
    suffix = posixpath.splitext(urlparse(url).path)[1]
    return Path(torch.hub.get_dir()) / "checkpoints" / f"{name}{suffix}"


def download_published(name: str, *, progress: bool = True) -> Path:
    """The local copy of published weights ``name``, downloaded on first use (progress bar on stderr).

    Raises:
        AvaDetectError: unknown name, or the download failed (offline, URL gone), naming the URL and how
            to pass a local file instead.
    """
    if name not in PUBLISHED:
        raise AvaDetectError(f"unknown published weights {name!r}; known: {', '.join(sorted(PUBLISHED))}")
    entry = PUBLISHED[name]
    dst = cache_path(name)
    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s from %s to %s", name, entry.url, dst)
    try:
        # Writes to a temporary file beside dst and renames it when complete.
        torch.hub.download_url_to_file(entry.url, os.fspath(dst), progress=progress)
    except Exception as e:  # URLError, HTTPError, timeouts, DNS failures, disk errors
        reason = getattr(e, "reason", None) or e
        raise AvaDetectError(
            f"could not download published weights {name!r} from {entry.url} ({type(e).__name__}: {reason}); "
            f"without network access, fetch that URL on another machine and pass the file instead, "
            f"e.g. --weights /path/to/{posixpath.basename(urlparse(entry.url).path)}") from None
    return dst


def resolve_weights(source: PathLike, *, progress: bool = True) -> Path:
    """A weights argument (a file path or a published name) -> a local file.

    Raises:
        AvaDetectError: neither an existing file nor a published name, or the download failed.
    """
    path = Path(source)
    if path.is_file():
        return path
    name = os.fspath(source)
    if name in PUBLISHED:
        return download_published(name, progress=progress)
    raise AvaDetectError(f"weights not found: {name!r} is neither a file nor a published name "
                         f"(published: {', '.join(sorted(PUBLISHED))})")
