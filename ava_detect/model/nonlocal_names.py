"""Checkpoint names of non-local blocks in the layouts we load (data for :mod:`ava_detect.model.weights`).

One non-local block after residual block ``i`` of stage ``res<s>``, pathway ``p``:

============================================  ==================================================
layout                                        names
============================================  ==================================================
ours                                          ``backbone.stages.<s-2>.<p>.nonlocal<i>.{conv_theta,conv_phi,conv_g,conv_out,bn}.*``
PySlowFast ``.pyth``                          ``s<s>.pathway<p>_nonlocal<i>.{conv_theta,conv_phi,conv_g,conv_out}.{weight,bias}``,
                                              ``s<s>.pathway<p>_nonlocal<i>.bn.{weight,bias,running_mean,running_var}``
                                              (``norm`` instead of ``bn`` in PySlowFast versions that name it so)
PySlowFast Caffe2 ``.pkl`` (model zoo)        ``nonlocal_conv<s>_<i>_{theta,phi,g,out}_{w,b}``,
                                              ``nonlocal_conv<s>_<i>_bn_{s,b,rm,riv}`` (slow pathway only)
============================================  ==================================================

The Caffe2 names are those of the Caffe2 non-local code the model zoo files come from (the prefix
``nonlocal_conv<stage>_<block index>``, then ``_theta``, ``_phi``, ``_g``, ``_out``, ``_bn``; blob
suffixes ``_w``, ``_b`` for convolutions and ``_s``, ``_b``, ``_rm``, ``_riv`` for batch norm);
PySlowFast's ``c2_model_loading`` turns them into its PyTorch names with pathway 0 and the same
block index, which is what :func:`caffe2_nonlocal_to_pyslowfast` does.
"""

from __future__ import annotations

import re
from typing import Optional

#: PySlowFast PyTorch name of a non-local tensor (``norm`` accepted as another name of ``bn``).
PYSLOWFAST_NONLOCAL = re.compile(
    r"^s(?P<stage>\d)\.pathway(?P<pathway>\d+)_nonlocal(?P<block>\d+)\."
    r"(?P<part>conv_theta|conv_phi|conv_g|conv_out|bn|norm)\.(?P<param>\w+)$")

#: Caffe2 blob name of a non-local tensor.
CAFFE2_NONLOCAL = re.compile(
    r"^nonlocal_conv(?P<stage>\d)_(?P<block>\d+)_(?:(?P<conv>theta|phi|g|out)_(?P<conv_param>[wb])"
    r"|bn_(?P<bn_param>s|b|rm|riv))$")

#: Caffe2 blob suffix -> PyTorch parameter name.
CAFFE2_CONV_PARAMS = {"w": "weight", "b": "bias"}
CAFFE2_BN_PARAMS = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}


def pyslowfast_nonlocal_to_ours(m: "re.Match[str]") -> str:
    """A :data:`PYSLOWFAST_NONLOCAL` match -> our state-dict name."""
    part = "bn" if m["part"] == "norm" else m["part"]
    return f"backbone.stages.{int(m['stage']) - 2}.{m['pathway']}.nonlocal{m['block']}.{part}.{m['param']}"


def caffe2_nonlocal_to_pyslowfast(blob: str) -> Optional[str]:
    """``nonlocal_conv4_6_theta_w`` -> ``s4.pathway0_nonlocal6.conv_theta.weight``; None for other blobs."""
    m = CAFFE2_NONLOCAL.match(blob)
    if m is None:
        return None
    prefix = f"s{m['stage']}.pathway0_nonlocal{m['block']}"
    if m["conv"]:
        return f"{prefix}.conv_{m['conv']}.{CAFFE2_CONV_PARAMS[m['conv_param']]}"
    return f"{prefix}.bn.{CAFFE2_BN_PARAMS[m['bn_param']]}"
