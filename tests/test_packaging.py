"""The wheel works outside a source checkout: built from this checkout, installed without its
dependencies into a fresh virtual environment that sees the current site-packages (torch and the
rest come from there), ``ava-detect`` runs from a folder outside the source tree and finds the
configs that ship inside the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from common import ROOT

#: What the wheel is built from (copied, so that the build leaves nothing in the checkout).
SOURCES = ("ava_detect", "configs", "data_prep", "setup.py", "README.md")

#: Run inside the installed environment: where the package and its configs are, and the default
#: annotate preset resolved and loaded the way ``ava-detect annotate`` does without ``--config``.
PROBE = """
import json, sys
import ava_detect
from ava_detect.annotate import preset_config
from ava_detect.commands.quickstart import recipe_path
from ava_detect.config import AnnotateConfig, configs_dir, load_config, packaged_configs
preset = preset_config(AnnotateConfig().weights)
cfg = load_config(preset)
recipe = load_config(recipe_path())
print(json.dumps({"package": ava_detect.__file__, "configs_dir": str(configs_dir()), "preset": str(preset),
                  "arch": cfg.model.arch, "depth": cfg.model.resnet.depth, "roi_aligned": cfg.model.roi_aligned,
                  "recipe_classes": recipe.model.num_classes, "recipe_depth": recipe.model.resnet.depth,
                  "shipped": packaged_configs()}))
"""


def _can_build_wheels() -> bool:
    try:
        import setuptools.command.bdist_wheel  # noqa: F401  (setuptools >= 70.1)
        return True
    except ImportError:
        try:
            import wheel  # noqa: F401
            return True
        except ImportError:
            return False


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.skipif(not _can_build_wheels(), reason="building a wheel needs setuptools >= 70.1 or the wheel package")
def test_wheel_installs_and_runs_outside_the_source_tree(tmp_path):
    src = tmp_path / "src"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", dist, src])
    (wheel,) = dist.glob("ava_detect-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # the report page's style and script ship with the package
        assert {"ava_detect/resources/report.css", "ava_detect/resources/report.js"} <= set(archive.namelist())

    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)  # this pip installs into it (--python)
    bin_dir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # --ignore-installed: a copy of the package installed outside the environment (an editable
    # install of a checkout, say) is neither uninstalled nor taken for this one.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--ignore-installed",
          "-q", wheel], env=env)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    help_text = _run([bin_dir / "ava-detect", "quickstart", "--help"], cwd=outside, env=env).stdout
    assert "--workdir" in help_text and "synthetic/slowfast_tiny.yaml" in help_text

    facts = json.loads(_run([python, "-c", PROBE], cwd=outside, env=env).stdout.strip().splitlines()[-1])
    site = Path(facts["package"]).resolve().parent.parent
    # The wheel's copy is the one imported, not the checkout (nor an editable install of one).
    assert Path(facts["package"]).resolve().is_relative_to(env_dir.resolve()), facts["package"]
    assert not Path(facts["package"]).resolve().is_relative_to(ROOT.resolve())
    assert Path(facts["configs_dir"]) == site / "ava_detect" / "configs"
    assert Path(facts["preset"]) == site / "ava_detect" / "configs" / "ava" / "slowfast_r50_8x8.yaml"
    assert (facts["arch"], facts["depth"], facts["roi_aligned"]) == ("slowfast", 50, False)
    assert (facts["recipe_classes"], facts["recipe_depth"]) == (7, 18)  # its _base_ (../tiny.yaml) resolved too
    assert facts["shipped"] == sorted(p.relative_to(ROOT / "configs").as_posix()
                                      for p in (ROOT / "configs").rglob("*.yaml"))
