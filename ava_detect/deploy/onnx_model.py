"""An exported ONNX detector run by onnxruntime on the CPU (the optional extra ``ava_detect[onnx]``).

onnxruntime is imported here only, when a file is loaded.
"""

from __future__ import annotations

import logging
import os
from typing import Any, List

import numpy as np
import torch
from torch import Tensor

from ava_detect.deploy.contract import METADATA_KEY, ExportContract
from ava_detect.deploy.exported_model import ExportedModel
from ava_detect.errors import AvaDetectError, one_line, unreadable_file_error
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)

#: What to run to get onnxruntime.
INSTALL_HINT = 'pip install "ava_detect[onnx]" (or pip install onnxruntime)'


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module.

    Raises:
        AvaDetectError: it is not installed (saying what to install).
    """
    try:
        import onnxruntime
    except ImportError:
        raise AvaDetectError(f"the onnxruntime runtime needs the onnxruntime package, which is not installed: "
                             f"{INSTALL_HINT}") from None
    return onnxruntime


class OnnxActionModel(ExportedModel):
    """An ONNX file written by :func:`~ava_detect.deploy.export.export_onnx`, run by onnxruntime on the CPU.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (0: its default, one per core).

    Raises:
        AvaDetectError: onnxruntime missing; a file that cannot be read, is not ONNX, has no export
            contract in its metadata, or whose graph differs from its contract (naming ``path``).
    """

    runtime = "onnxruntime"

    def __init__(self, path: PathLike, *, threads: int = 0):
        ort = import_onnxruntime()
        shown = os.fspath(path)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise unreadable_file_error(e, path, "ONNX model") from None
        options = ort.SessionOptions()
        options.log_severity_level = 3  # onnxruntime's own warnings are not the user's business
        if threads:
            options.intra_op_num_threads = int(threads)
        try:
            session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types for every kind of bad file
            raise AvaDetectError(f"not an ONNX model that onnxruntime can load ({one_line(str(e))[:300]}); the "
                                 f"onnxruntime runtime takes a file of `ava-detect export --format onnx`", path) from None
        text = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise AvaDetectError(f"an ONNX model without an ava_detect export contract in its metadata (key "
                                 f"{METADATA_KEY!r}); export the detector with `ava-detect export`", path)
        contract = ExportContract.from_json(text, path)
        contract.check_graph({i.name: list(i.shape) for i in session.get_inputs()},
                             {o.name: list(o.shape) for o in session.get_outputs()}, path)
        super().__init__(contract, shown)
        self.session = session
        logger.info("loaded %s: ONNX opset %d, %d classes, onnxruntime %s on the CPU", shown, contract.opset,
                    contract.num_classes, ort.__version__)

    def _run(self, inputs: List[Tensor], rois: Tensor, *, bf16: bool) -> Tensor:
        feeds = {name: np.ascontiguousarray(x.detach().cpu().float().numpy())
                 for name, x in zip(self.contract.input_names, [*inputs, rois])}
        (probs,) = self.session.run(["probs"], feeds)
        return torch.from_numpy(probs)
