"""ava_detect: spatiotemporal action detection on AVA-style video.

A person detector proposes boxes, a SlowFast network's features feed a RoIAlign head
on its final stage, and an evaluator computes frame-mAP over AVA's atomic actions.
"""

from ava_detect.errors import AvaDetectError

__version__ = "0.1.0"
__all__ = ["AvaDetectError", "__version__"]
