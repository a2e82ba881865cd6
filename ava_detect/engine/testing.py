"""Test a trained detector: inference on the validation split, frame-mAP, written reports.

:func:`run_test` is what ``ava-detect test`` does, as a library call (``quickstart`` and users'
scripts call it too). One process or many (``torchrun``): every process runs its share of the
keyframes, the evaluator gathers them, the main process writes the outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ava_detect.config import Config
from ava_detect.engine.hooks import ProgressFactory
from ava_detect.evaluation.frame_map import FrameMAPResult
from ava_detect.evaluation.report import PLOT_FILES
from ava_detect.io import PathLike
from ava_detect.io_paths import IOPaths

logger = logging.getLogger(__name__)


@dataclass
class TestResult:
    """What :func:`run_test` did.

    Attributes:
        result: the frame-mAP of the configured protocol and label map.
        report: the readable report (the text of ``report.txt``).
        weights_summary: what loading the weights did (layout, loaded and initialised parts).
        keyframes, boxes, seconds: the inference work of this process.
        detections, report_txt, report_json, report_html, config: the files written (main process
            only; None on the others); plots: the plot files.
        main: whether this is the process that wrote the files.
    """

    __test__ = False  # not a pytest test class

    result: FrameMAPResult
    report: str
    weights_summary: str
    keyframes: int
    boxes: int
    seconds: float
    main: bool = True
    detections: Optional[Path] = None
    report_txt: Optional[Path] = None
    report_json: Optional[Path] = None
    report_html: Optional[Path] = None
    config: Optional[Path] = None
    plots: List[Path] = field(default_factory=list)

    @property
    def mAP(self) -> float:
        return float(self.result.mAP)

    @property
    def paths(self) -> List[Path]:
        """Every file written, in the order they are listed to users."""
        files = (self.detections, self.report_txt, self.report_json, self.report_html)
        return [p for p in files if p is not None] + list(self.plots)


#: The files :func:`run_test` writes into its output folder.
TEST_FILES = ("detections.csv", "report.txt", "report.json", "report.html", "config.yaml",
              *(f"plots/{name}" for name in PLOT_FILES))


def declared_paths(cfg: Config, weights: str, output_dir: PathLike) -> IOPaths:
    """What :func:`run_test` reads (weights, the data section's files) and writes (``output_dir``)."""
    from ava_detect.data.layout import data_inputs

    paths = IOPaths().input("weights", weights).folder("test.output_dir", output_dir, writes=TEST_FILES)
    for label, path in data_inputs(cfg.data):
        paths.input(label, path)
    return paths


def run_test(cfg: Config, weights: str, output_dir: Optional[PathLike] = None, *,
             progress: Optional[ProgressFactory] = None) -> TestResult:
    """Run the model of ``cfg`` with ``weights`` on the validation split and evaluate it.

    Writes into ``output_dir`` (default ``test.output_dir``): ``detections.csv``
    (video,SSSS,x1,y1,x2,y2,action,score), ``report.txt``, ``report.json``, ``report.html`` (the
    report page, with thumbnails of the videos when ``data.source`` is ``video``),
    ``plots/per_class_ap.png``, ``plots/precision_recall.png`` and ``config.yaml``.

    Args:
        cfg: the whole config (read here once): model, data (boxes with score >=
            ``data.test_box_threshold``, short side ``data.test_short_side``), ``test.*``.
        weights: a checkpoint of ours, a PyTorchVideo/PySlowFast ``.pyth``, or a published name.
        progress: ``make_bar(total=, initial=, desc=)`` for a progress bar (the CLI's); None: none.

    Raises:
        AvaDetectError: unreadable weights, bad data files, an unknown protocol.
    """
    from ava_detect.config import save_config
    from ava_detect.engine import distributed as du
    from ava_detect.engine.inference import evaluate_split
    from ava_detect.evaluation.report import format_report, write_json, write_plots
    from ava_detect.io import atomic_open
    from ava_detect.model import build_model, load_weights

    out = Path(output_dir if output_dir is not None else cfg.test.output_dir)
    declared_paths(cfg, weights, out).check()
    device = du.init_from_env(cfg.test.device)
    main = du.is_main_process()
    model = build_model(cfg)
    loaded = load_weights(model, weights)
    model.to(device).eval()
    evaluation = evaluate_split(cfg, model, "val", device=device, progress=progress)
    evaluator, result = evaluation["evaluator"], evaluation["result"]
    evaluator.write_detections(out / "detections.csv")  # gathers on every process; rank 0 writes
    text = format_report(result)
    tested = TestResult(result=result, report=text, weights_summary=loaded.summary(),
                        keyframes=int(evaluation["keyframes"]), boxes=int(evaluation["boxes"]),
                        seconds=float(evaluation["seconds"]), main=main)
    if not main:
        return tested
    tested.config = out / "config.yaml"
    save_config(cfg, tested.config)
    tested.detections, tested.report_txt, tested.report_json = (out / "detections.csv", out / "report.txt",
                                                                out / "report.json")
    with atomic_open(tested.report_txt, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    write_json(tested.report_json, result)
    tested.plots = list(write_plots(out / "plots", result))
    tested.report_html = _write_report_page(cfg, evaluator.matching, out)
    logger.debug("test: mAP %.4f on %d keyframes; wrote %s", tested.mAP, tested.keyframes,
                ", ".join(str(p) for p in tested.paths))
    return tested


def _write_report_page(cfg: Config, matching, out: Path) -> Path:
    """``report.html`` of a test run, with thumbnails from the split's videos (``data.source=video``)."""
    from ava_detect.data.layout import resolve_data_path
    from ava_detect.evaluation.html_report import write_html_report

    d = cfg.data
    videos = resolve_data_path(d, d.video_dir) if d.source == "video" else None
    if videos is None:
        logger.info("report.html: no thumbnails (they are read from videos; data.source is %r)", d.source)
    files = {"ground truth": str(resolve_data_path(d, d.val_gt)), "detections": str(out / "detections.csv"),
             "exclusions": str(resolve_data_path(d, d.exclusions)) if d.exclusions else None,
             "videos": str(videos) if videos is not None else None}
    path = out / "report.html"
    write_html_report(path, matching, files=files, videos=videos, video_suffixes=[d.video_suffix],
                      second_offset=d.start_second)
    return path
