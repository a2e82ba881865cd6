"""Export the whole action detector (backbone, RoIAlign head, sigmoid) to ONNX or TorchScript.

The exported graph is the batch-norm-folded inference model (``optimized_for_inference(channels_last=False)``)
behind :class:`DetectorGraph`, a module with positional tensor inputs ``(*pathways, rois) -> probs``
(:mod:`ava_detect.deploy.contract` gives the shapes). The number of clips ``B >= 1``, of boxes ``K >= 0``
and the frame size ``H, W >= min_side`` are free; the frames per pathway and the classes are fixed.

Files are written to a temporary name in the same folder and renamed (:func:`ava_detect.io.atomic_path`):
an export over an existing file replaces it whole, and a failed one leaves it untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import warnings
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ava_detect.deploy.contract import METADATA_KEY, PROBS, ExportContract
from ava_detect.errors import AvaDetectError
from ava_detect.io import PathLike, atomic_path

if TYPE_CHECKING:
    from ava_detect.config import Config
    from ava_detect.deploy.exported_model import ExportedModel
    from ava_detect.model.detector import ActionDetector

logger = logging.getLogger(__name__)

#: ONNX opset of the exported files: RoiAlign's ``coordinate_transformation_mode`` (``half_pixel`` for
#: ``aligned=True``, ``output_half_pixel`` for the legacy ``aligned=False``) needs opset 16 or later.
OPSET = 18
#: Export formats.
FORMATS = ("onnx", "torchscript")


class DetectorGraph(nn.Module):
    """``forward(*pathways, rois) -> probs``: the detector's backbone, head and sigmoid with positional
    tensor inputs, for tracing and export.

    Args:
        detector: an eval-mode :class:`~ava_detect.model.detector.ActionDetector` (batch norm folded,
            contiguous memory format). Its Python input checks are skipped (tracing would bake the
            example's shapes into them).

    ``pathways``: ``float [B,3,T_p,H,W]`` each, in the backbone's order; ``rois``: ``float [K,5]``
    ``(batch_index, x1, y1, x2, y2)`` in input pixels -> ``float [K,C]`` probabilities.
    """

    def __init__(self, detector: "ActionDetector"):
        super().__init__()
        self.backbone = detector.backbone
        self.head = detector.head

    def forward(self, *inputs: Tensor) -> Tensor:
        pathways, rois = list(inputs[:-1]), inputs[-1]
        return torch.sigmoid(self.head(self.backbone(pathways), rois))


def inference_graph(model: "ActionDetector") -> DetectorGraph:
    """The graph to export: a batch-norm-folded, eval-mode copy of ``model`` (``model`` is left unchanged)."""
    return DetectorGraph(model.optimized_for_inference(channels_last=False)).eval()


def example_inputs(contract: ExportContract, *, batch: int = 2, boxes: int = 3, height: int = 0,
                   width: int = 0, seed: int = 0) -> Tuple[Tensor, ...]:
    """Random inputs that fit ``contract``: ``(*pathways, rois)``; ``height``/``width`` default to
    4 and 5 output strides (different sizes and counts, so that tracing ties no two dimensions together)."""
    g = torch.Generator().manual_seed(seed)
    h = height or 4 * contract.output_stride
    w = width or 5 * contract.output_stride
    clips = torch.randn(batch, 3, contract.num_frames, h, w, generator=g)
    packed = [contract.input_spec().pack(clip) for clip in clips]
    per_pathway = [torch.stack([p[k] for p in packed]) for k in range(len(contract.temporal_ratios))]
    x1y1 = torch.rand(boxes, 2, generator=g) * torch.tensor([w / 2, h / 2])
    x2y2 = x1y1 + 1 + torch.rand(boxes, 2, generator=g) * torch.tensor([w / 2 - 1, h / 2 - 1])
    index = torch.randint(0, batch, (boxes, 1), generator=g).float()
    return (*per_pathway, torch.cat([index, x1y1, x2y2], dim=1))


def _dynamic_shapes(contract: ExportContract) -> dict:
    from torch.export import Dim

    batch, boxes = Dim("B", min=1), Dim("K", min=0)
    # One feature-map pixel (H or W below 2 output strides) would need another graph: broadcasting
    # over a size-1 map is not the same operation, so the exporter specialises on sizes above it.
    height = Dim("H", min=contract.min_side, max=16384)
    width = Dim("W", min=contract.min_side, max=16384)
    pathway = {0: batch, 3: height, 4: width}
    return {"inputs": (*[pathway] * len(contract.temporal_ratios), {0: boxes})}


def export_onnx(model: "ActionDetector", contract: ExportContract, path: PathLike, *,
                opset: int = OPSET) -> ExportContract:
    """Write ``model`` (eval mode, before batch-norm folding) as an ONNX file with ``contract`` in its
    metadata; returns the contract with the opset set.

    Uses ``torch.onnx.export(dynamo=True)`` (torch.export + onnxscript): it translates torchvision's
    ``roi_align`` into ONNX ``RoiAlign`` with the ``aligned`` flag kept as its
    ``coordinate_transformation_mode``, and keeps ``B``, ``K``, ``H`` and ``W`` symbolic, so the
    TorchScript-based exporter (``dynamo=False``) is not needed.

    Raises:
        AvaDetectError: the ``onnx`` / ``onnxscript`` packages are missing; ``path`` cannot be written.
    """
    require_packages(("onnx", "onnxscript"), "ONNX export")
    contract = dataclasses.replace(contract, opset=opset)
    graph = inference_graph(model)
    names = list(contract.input_names)
    with _quiet():
        program = torch.onnx.export(graph, example_inputs(contract), input_names=names, output_names=[PROBS],
                                    dynamic_shapes=_dynamic_shapes(contract), opset_version=opset, dynamo=True,
                                    verbose=False)
    program.model.metadata_props[METADATA_KEY] = contract.to_json()
    program.model.producer_name = "ava_detect"
    with atomic_path(path) as tmp:
        program.save(tmp)
    logger.info("wrote %s (ONNX opset %d)", path, opset)
    return contract


def export_torchscript(model: "ActionDetector", contract: ExportContract, path: PathLike) -> ExportContract:
    """Write ``model`` (eval mode, before batch-norm folding) as a traced TorchScript file with
    ``contract`` as its extra file :data:`~ava_detect.deploy.contract.METADATA_KEY`.

    The file is TorchScript code and tensors (``torch.jit.load`` runs no pickled Python); RoIAlign is
    torchvision's operator, so ``import torchvision`` before loading it.
    """
    contract = dataclasses.replace(contract, opset=0)
    graph = inference_graph(model)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(graph, example_inputs(contract), check_trace=False)
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
        torch.jit.save(traced, str(tmp), _extra_files={METADATA_KEY: contract.to_json()})
    logger.info("wrote %s (TorchScript)", path)
    return contract


def require_packages(modules: Tuple[str, ...], what: str) -> None:
    """Raise :class:`AvaDetectError` with the install command when one of ``modules`` cannot be imported."""
    import importlib

    missing: List[str] = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise AvaDetectError(f"{what} needs {' and '.join(missing)}, which is not installed: "
                             f"pip install \"ava_detect[onnx]\" (or pip install {' '.join(missing)})")


@contextlib.contextmanager
def _quiet():
    """The exporters' progress lines and tracer warnings go to the debug log, not to the terminal."""
    out = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out):
        warnings.simplefilter("ignore")
        yield
    for line in out.getvalue().splitlines():
        logger.debug("%s", line)


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export_from_config` wrote.

    Attributes:
        path: the file. format: ``onnx`` or ``torchscript``. contract: its contract. size: bytes.
        max_abs_diff: largest difference of the file's probabilities from PyTorch's on random inputs of
            another size than the export's example (None: not checked, onnxruntime missing).
    """

    path: str
    format: str
    contract: ExportContract
    size: int
    max_abs_diff: Optional[float]


def export_from_config(cfg: "Config", *, weights: str, fmt: str, out: PathLike,
                       labelmap: Optional[str] = None) -> ExportResult:
    """Build the model of ``cfg.model``, load ``weights`` (which must hold a detection head that fits),
    export it as ``fmt`` to ``out`` with the classes of ``labelmap`` (default: ``annotate.labelmap``,
    ``data.labelmap``, the packaged AVA map), load the file back and compare it with PyTorch.

    Raises:
        AvaDetectError: an unknown format, missing packages, weights that cannot be read or do not fit,
            a label map of another size, a test short side below what the graph takes, an unwritable ``out``.
    """
    from ava_detect.data.labelmaps import resolve_labelmap
    from ava_detect.deploy.exported_model import ExportedModel
    from ava_detect.model import build_model, load_weights

    if fmt not in FORMATS:
        raise AvaDetectError(f"export format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "onnx":
        require_packages(("onnx", "onnxscript"), "ONNX export")
    classes = resolve_labelmap(labelmap or cfg.annotate.labelmap, kind="all", data=cfg.data)
    model = build_model(cfg)
    load_weights(model, weights, head="load")
    model.eval()
    contract = ExportContract.from_model(cfg, model, classes)
    if cfg.data.test_short_side < contract.min_side:
        raise AvaDetectError(f"data.test_short_side={cfg.data.test_short_side}: the exported graph takes frames of at "
                             f"least {contract.min_side} px (2 output strides) a side")
    write = export_onnx if fmt == "onnx" else export_torchscript
    contract = write(model, contract, out)
    loaded: Optional[ExportedModel] = None
    if fmt == "torchscript":
        from ava_detect.deploy.torchscript_model import TorchScriptActionModel

        loaded = TorchScriptActionModel(out)
    else:
        try:
            from ava_detect.deploy.onnx_model import OnnxActionModel, import_onnxruntime

            import_onnxruntime()
            loaded = OnnxActionModel(out)
        except AvaDetectError as e:
            if "not installed" not in str(e):
                raise
            logger.warning("onnxruntime is not installed: the exported file was not checked against PyTorch")
    diff = None if loaded is None else compare_with_torch(model, loaded)
    return ExportResult(path=os.fspath(out), format=fmt, contract=contract, size=os.path.getsize(out),
                        max_abs_diff=diff)


def compare_with_torch(model: "ActionDetector", exported: "ExportedModel", *, seed: int = 1) -> float:
    """Largest ``|probability|`` difference between ``exported`` and ``model`` (PyTorch, eval mode, not
    folded) on random inputs: 1 clip and 4 boxes, at a frame size other than the export's example."""
    stride = exported.contract.output_stride
    *pathways, rois = example_inputs(exported.contract, batch=1, boxes=4, height=3 * stride + 5,
                                     width=6 * stride + 1, seed=seed)
    expected = model.predict(pathways, rois)
    return float((exported.predict(pathways, rois) - expected).abs().max())
