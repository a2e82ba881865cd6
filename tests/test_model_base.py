"""The backbone contract: input packing, declared shapes, and the table of architectures."""

from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
import torch
from torch import Tensor

from ava_detect.config import load_config
from ava_detect.data.dataset import build_test_transform
from ava_detect.errors import AvaDetectError
from ava_detect.model import ARCHITECTURES, ActionDetector, Backbone, InputSpec, RoIActionHead, build_model
from ava_detect.model.architectures import input_spec_from_config
from ava_detect.model.base import slow_indices

ROOT = Path(__file__).resolve().parent.parent


def test_slow_subset_of_32_frames():
    assert slow_indices(32, 4).tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert slow_indices(8, 4).tolist() == [0, 7]
    assert slow_indices(16, 4).tolist() == torch.linspace(0, 15, 4).long().tolist()


def test_input_spec_packs_pyslowfast_slow_frames():
    x = torch.arange(32, dtype=torch.float32).view(1, 32, 1, 1).expand(3, 32, 2, 2)
    slow, fast = InputSpec((4, 1)).pack(x)
    assert slow[0, :, 0, 0].tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    assert torch.equal(fast, x)
    (only,) = InputSpec((1,)).pack(x)
    assert only.shape == (3, 32, 2, 2) and only is x
    assert InputSpec((4, 1)).num_pathways == 2
    with pytest.raises(ValueError, match="temporal_ratios"):
        InputSpec(())
    with pytest.raises(ValueError, match="temporal_ratios"):
        InputSpec((0, 1))


@pytest.mark.parametrize("preset", ["slowfast_r50_8x8", "slowfast_r101_32x2", "slow_r50_4x16"])
def test_built_backbone_declares_what_its_output_and_the_config_say(preset):
    cfg = load_config(ROOT / f"configs/ava/{preset}.yaml", ["model.resnet.width_per_group=8", "model.num_frames=8"])
    model = build_model(cfg).eval()
    backbone = model.backbone
    assert isinstance(backbone, Backbone)
    assert backbone.input_spec == input_spec_from_config(cfg.model) == build_test_transform(cfg).input_spec
    assert backbone.num_pathways == len(backbone.out_channels) == model.num_pathways
    inputs = [x.unsqueeze(0) for x in backbone.input_spec.pack(torch.randn(3, 8, 64, 96))]
    with torch.no_grad():
        features = backbone(inputs)
    assert [f.shape[1] for f in features] == backbone.out_channels
    assert all(f.shape[-2:] == (64 // backbone.output_stride, 96 // backbone.output_stride) for f in features)
    assert sum(backbone.out_channels) == model.head.proj.in_features


class _MeanPool(Backbone):
    """A one-pathway backbone that is not a ResNet: average-pools the clip to stride 8."""

    def __init__(self):
        super().__init__(input_spec=InputSpec((1,)), out_channels=[3], output_stride=8)

    def forward(self, inputs: List[Tensor]) -> List[Tensor]:
        return [torch.nn.functional.avg_pool3d(inputs[0], (1, 8, 8))]


def test_detector_and_head_need_only_the_contract():
    model = ActionDetector(_MeanPool(), RoIActionHead(3, 5, spatial_scale=1 / 8, dropout=0.0)).eval()
    (x,) = model.input_spec.pack(torch.randn(3, 4, 32, 32))
    probs = model([x.unsqueeze(0)], torch.tensor([[0.0, 0.0, 0.0, 16.0, 16.0]]))
    assert probs.shape == (1, 5) and bool(((probs > 0) & (probs < 1)).all())


def test_backbone_contract_is_enforced():
    with pytest.raises(TypeError):
        Backbone(input_spec=InputSpec((1,)), out_channels=[3], output_stride=8)  # abstract: no forward

    class TwoPathways(_MeanPool):
        def __init__(self):
            Backbone.__init__(self, input_spec=InputSpec((4, 1)), out_channels=[3], output_stride=8)

    with pytest.raises(ValueError, match="pathway"):
        TwoPathways()


def test_unknown_arch_names_the_table():
    with pytest.raises(AvaDetectError) as e:
        input_spec_from_config(load_config(None, ["model.arch=x3d"]).model)
    assert "model.arch" in str(e.value) and all(repr(name) in str(e.value) for name in ARCHITECTURES)


def test_model_modules_import_each_other_one_way():
    """No import cycle inside ava_detect/model (TYPE_CHECKING imports included)."""
    import ast

    folder = ROOT / "ava_detect" / "model"
    deps = {}
    for path in folder.glob("*.py"):
        names = {n.module for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ImportFrom) and n.module}
        deps[path.stem] = {m.rsplit(".", 1)[1] for m in names if m.startswith("ava_detect.model.")}

    def reaches(start: str, goal: str, seen=()) -> bool:
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in deps.get(start, ()))

    assert deps["optimize"] == set() and "optimize" in deps["detector"]
    assert [m for m in deps if m != "__init__" and reaches(m, m)] == []
