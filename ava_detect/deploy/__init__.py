"""Deploy the action detector: export it whole (backbone, RoIAlign head, sigmoid) to ONNX or
TorchScript with its input/output contract in the file, and run the exported file.

::

    from ava_detect.deploy import export_from_config, load_exported

    result = export_from_config(cfg, weights="model.pth", fmt="onnx", out="model.onnx")
    model = load_exported("model.onnx", runtime="onnxruntime")   # model.predict(inputs, rois) -> probs [K,C]
    transform = model.contract.test_transform()                    # the test transform the model expects

Files: :mod:`~ava_detect.deploy.contract` (what the file takes and gives), :mod:`~ava_detect.deploy.export`
(writing), :mod:`~ava_detect.deploy.onnx_model` and :mod:`~ava_detect.deploy.torchscript_model` (running).
"""

from __future__ import annotations

from typing import Union

import torch

from ava_detect.deploy.contract import METADATA_KEY, ExportContract
from ava_detect.deploy.export import (FORMATS, OPSET, DetectorGraph, ExportResult, export_from_config, export_onnx,
                                      export_torchscript)
from ava_detect.deploy.exported_model import ExportedModel
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike

#: Runtimes of exported files (``annotate.runtime`` besides ``torch``).
RUNTIMES = ("onnxruntime", "torchscript")

__all__ = ["DetectorGraph", "ExportContract", "ExportResult", "ExportedModel", "FORMATS", "METADATA_KEY", "OPSET",
           "RUNTIMES", "export_from_config", "export_onnx", "export_torchscript", "load_exported"]


def load_exported(path: PathLike, runtime: str, *, device: Union[str, torch.device] = "cpu") -> ExportedModel:
    """The exported detector in ``path``, run by ``runtime`` (``onnxruntime``: on the CPU whatever ``device``).

    Raises:
        AvaDetectError: an unknown runtime; what the runtime's loader raises (naming ``path``).
    """
    if runtime == "onnxruntime":
        from ava_detect.deploy.onnx_model import OnnxActionModel

        return OnnxActionModel(path)
    if runtime == "torchscript":
        from ava_detect.deploy.torchscript_model import TorchScriptActionModel

        return TorchScriptActionModel(path, device=device)
    raise AvaDetectError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
