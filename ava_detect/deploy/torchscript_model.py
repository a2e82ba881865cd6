"""An exported TorchScript detector, run by torch (``torch.jit.load``: TorchScript code and tensors,
no pickled Python)."""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from typing import List, Union

import torch
from torch import Tensor

from ava_detect.deploy.contract import METADATA_KEY, ExportContract
from ava_detect.deploy.exported_model import ExportedModel
from ava_detect.errors import AvaDetectError, one_line, unreadable_file_error
from ava_detect.io import PathLike

logger = logging.getLogger(__name__)


class TorchScriptActionModel(ExportedModel):
    """A file written by :func:`~ava_detect.deploy.export.export_torchscript`.

    Args:
        path: the TorchScript file.
        device: where it runs.

    Raises:
        AvaDetectError: a file that cannot be read, is not TorchScript, has no export contract, or
            whose graph takes another number of inputs than its contract says (naming ``path``).
    """

    runtime = "torchscript"

    def __init__(self, path: PathLike, *, device: Union[str, torch.device] = "cpu"):
        import torchvision  # noqa: F401  (registers torchvision::roi_align, which the graph calls)

        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise unreadable_file_error(e, path, "TorchScript model") from None
        extra = {METADATA_KEY: ""}
        try:
            with warnings.catch_warnings():  # torch.jit's deprecation notice is for writers of new code, not users
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(os.fspath(path), map_location=torch.device(device), _extra_files=extra)
        except Exception as e:  # torch raises RuntimeError, ValueError, ... for files it cannot read
            raise AvaDetectError(f"not a TorchScript model that torch can load ({one_line(str(e))[:300]}); the "
                                 f"torchscript runtime takes a file of `ava-detect export --format torchscript`",
                                 path) from None
        if not extra[METADATA_KEY]:
            raise AvaDetectError(f"a TorchScript model without an ava_detect export contract (extra file "
                                 f"{METADATA_KEY!r}); export the detector with `ava-detect export`", path)
        contract = ExportContract.from_json(extra[METADATA_KEY], path)
        arguments = len(list(module.graph.inputs())) - 1  # the first is the module itself
        if arguments != len(contract.input_names):
            raise AvaDetectError(f"the graph takes {arguments} inputs but its export contract describes "
                                 f"{len(contract.input_names)} ({', '.join(contract.input_names)}); it is another model",
                                 path)
        super().__init__(contract, os.fspath(path))
        self.module = module.eval()
        self.device = torch.device(device)
        logger.info("loaded %s: TorchScript, %d classes, on %s", path, contract.num_classes, self.device)

    def _run(self, inputs: List[Tensor], rois: Tensor, *, bf16: bool) -> Tensor:
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return self.module(*[x.to(self.device) for x in inputs], rois.to(self.device))
