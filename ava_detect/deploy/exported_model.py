"""What the runtimes of exported detectors share: the input checks and the ``predict`` interface that
:class:`~ava_detect.annotate.action.ActionPredictor` uses from a model."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import List

from torch import Tensor

from ava_detect.deploy.contract import ExportContract
from ava_detect.model.base import InputSpec
from ava_detect.model.detector import require_finite_scores


class ExportedModel(metaclass=ABCMeta):
    """An exported detector behind the interface of :class:`~ava_detect.model.detector.ActionDetector`
    that inference uses: ``num_classes``, ``input_spec``, ``predict``.

    Attributes:
        contract: the file's :class:`~ava_detect.deploy.contract.ExportContract`.
        path: the file it was loaded from (for messages).
    """

    #: What runs the file (for logs).
    runtime: str = "exported"

    def __init__(self, contract: ExportContract, path: str):
        self.contract = contract
        self.path = path

    @property
    def num_classes(self) -> int:
        return self.contract.num_classes

    @property
    def input_spec(self) -> InputSpec:
        return self.contract.input_spec()

    def check_inputs(self, inputs: List[Tensor], rois: Tensor) -> None:
        """Raise ``ValueError`` for inputs that do not fit the contract (a caller's mistake, as for
        :class:`~ava_detect.model.detector.ActionDetector`)."""
        c = self.contract
        shapes = c.input_shapes()
        names = c.input_names[:-1]
        if isinstance(inputs, Tensor) or len(inputs) != len(names):
            raise ValueError(f"expected {len(names)} pathway tensor(s) ({', '.join(names)}), got "
                             f"{'one tensor' if isinstance(inputs, Tensor) else len(inputs)}")
        first = inputs[0].shape
        for name, x in zip(names, inputs):
            frames = shapes[name][2]
            if x.dim() != 5 or x.shape[1] != 3 or x.shape[2] != frames or x.shape[0] != first[0] \
                    or x.shape[3:] != first[3:]:
                raise ValueError(f"{name} must be [B,3,{frames},H,W] with the B, H, W of the other pathways; got "
                                 + ", ".join(str(tuple(t.shape)) for t in inputs))
        if min(first[3:]) < c.min_side:
            raise ValueError(f"frames of {tuple(first[3:])} px; the exported graph takes H, W >= {c.min_side}")
        if rois.dim() != 2 or rois.shape[1] != 5:
            raise ValueError(f"rois must be [K,5] (batch_index, x1, y1, x2, y2), got {tuple(rois.shape)}")

    def predict(self, inputs: List[Tensor], rois: Tensor, *, bf16: bool = False) -> Tensor:
        """Probabilities ``float32 [K, num_classes]`` on the CPU (``[0, C]`` for ``K = 0``).

        Args:
            inputs: one ``float [B,3,T_p,H,W]`` tensor per pathway (``input_spec.pack`` of normalised clips).
            rois: ``float [K,5]`` ``(batch_index, x1, y1, x2, y2)`` in input pixels.
            bf16: bfloat16 autocast where the runtime has it (TorchScript); the ONNX graph runs in float32.

        Raises:
            ValueError: inputs that do not fit the contract.
            AvaDetectError: non-finite scores (broken weights).
        """
        self.check_inputs(inputs, rois)
        return require_finite_scores(self._run(inputs, rois, bf16=bf16).float().cpu())

    @abstractmethod
    def _run(self, inputs: List[Tensor], rois: Tensor, *, bf16: bool) -> Tensor:
        """The graph's ``probs`` for checked inputs."""
