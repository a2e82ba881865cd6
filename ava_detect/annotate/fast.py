"""``annotate --fast``: the settings measured fastest on a CPU, as config overrides.

Measured with ``bench/annotate.py`` (R50 SlowFast at 256 short side, 2 CPU cores, AVX2 without bf16
units; the README's "Speed on a CPU" table has the numbers of each stage):

* person detector: ``fasterrcnn_mobilenet_v3_large_320_fpn`` (22.8 COCO box AP against the default's
  46.7) at its own settings (320-pixel short side, 150 RPN proposals), one keyframe per pass (batches of
  keyframes were slower on the CPU): about 75x less time than the default detector. For more accuracy
  at about 3x its time, add ``--detector-model fasterrcnn_mobilenet_v3_large_fpn --detector-size 480``;
* action model: batch norm folded into the convolutions (``annotate.fuse_bn``; probabilities
  within ~1e-5 of the unfolded model); bf16 with channels-last weights where the CPU has bf16 matrix
  units (``annotate.precision=auto``, the default), fp32 elsewhere.

The overrides come before the user's own, so any explicit flag or ``section.key=value`` wins.
"""

from __future__ import annotations

from typing import List

#: ``section.key=value`` overrides of ``--fast``.
FAST_CPU_OVERRIDES: List[str] = [
    "detector.model=fasterrcnn_mobilenet_v3_large_320_fpn",
    "detector.min_size=320",
    "detector.max_size=640",
    "detector.proposals=150",
    "detector.batch_size=1",
    "annotate.fuse_bn=true",
    "annotate.precision=auto",
    "detector.precision=auto",
]
