"""Forward-pass speed of our SlowFast R50 detector against PyTorchVideo's ``slowfast_r50_detection``,
against the machine's own limit, and where the time goes; and the cost of the R101 non-local model
(``slowfast_r101_8x8_nonlocal``) relative to R50.

Both R50 models hold the same weights (PyTorchVideo's model with random weights and batch-norm
statistics, saved as ``.pyth`` and loaded into ours) and see the same input: one clip of 8 slow /
32 fast frames at 256x256 and 5 boxes, eval mode. Variants are timed interleaved in one run; the
script prints each variant's time, its speed ratio against PyTorchVideo fp32 (reference / variant,
> 1 = faster), the extra peak memory of one forward pass, the largest probability difference
to the reference (for the R101 variants: to our R101 in fp32 without BN folding), and the share of
the machine's limit it reaches: FLOPs per clip (torch's FLOP counter) / time, against the best
matrix-multiply rate measured in the same run with the same threads (``torch.mm`` and oneDNN's 1x1
convolution, fp32 and bf16). For R101 with non-local blocks it also prints its time relative to our
R50 in the same variant, and the share of its forward time spent inside the three non-local blocks
(timed with forward hooks in a separate pass). ``--profile`` adds where the fastest fp32 variant
spends its time, per layer type (forward hooks), with each type's rate against the limit. bf16
variants run only where bf16 is fast (a GPU, or a CPU with bf16 matrix units); elsewhere the run
says so and prints the measured bf16 rate. It never asserts anything about time.

    python bench/model_forward.py                 # CPU: fp32 (and bf16 where the CPU has bf16 units)
    python bench/model_forward.py --profile --no-r101
    python bench/model_forward.py --device cuda   # on a GPU (TF32 off for fp32)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AVA_DETECT_SHARED", ROOT.parent / "shared"))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_extra_memory_mib(fn: Callable[[], object], device: torch.device) -> float:
    """Peak memory one call of ``fn`` adds on top of what is resident before it (MiB)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    if not os.path.exists("/proc/self/clear_refs"):
        return float("nan")
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM (the peak RSS) to the current RSS
        f.write("5")
    before = _rss_kib("VmRSS")
    fn()
    return (_rss_kib("VmHWM") - before) / 1024


def randomize(model: torch.nn.Module, seed: int = 0) -> None:
    """Random weights and BN statistics of trained-like size (as the reference fixtures were made):
    He-scaled convolutions (x0.8, last conv of each residual branch x0.5), BN gamma in [0.5, 1.5]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.Conv3d):
                gain = 0.4 if name.endswith("conv_c") else 0.8
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * gain * (2 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm3d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            elif isinstance(m, torch.nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / m.in_features ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def _best_seconds(fn: Callable[[], object], repeats: int = 3) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def machine_limit(device: torch.device) -> Dict[str, float]:
    """The best matrix-multiply rate (GFLOP/s) in fp32 and bf16 with the current threads: ``torch.mm`` of
    square matrices and a 1x1 convolution (oneDNN on a CPU) of a res5-like map, whichever is faster."""
    out = {}
    for dtype, name in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        slow_bf16 = dtype == torch.bfloat16 and device.type == "cpu" and not _cpu_has_bf16_units()
        sizes = (512,) if slow_bf16 else (1024, 2048)
        rates = []
        for n in sizes:
            a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
            rates.append(2 * n ** 3 / _best_seconds(lambda: torch.mm(a, b), 1 if slow_bf16 else 3) / 1e9)
        if not slow_bf16:
            x = torch.randn(8, 1024, 32, 32, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
            w = torch.randn(1024, 1024, 1, 1, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode():
                rates.append(2 * 8 * 32 * 32 * 1024 * 1024 / _best_seconds(lambda: torch.nn.functional.conv2d(x, w)) / 1e9)
        out[name] = max(rates)
    return out


def _cpu_has_bf16_units() -> bool:
    from ava_detect.precision import cpu_has_bf16_units

    return cpu_has_bf16_units()


def clip_flops(model: torch.nn.Module, inputs, boxes) -> float:
    """FLOPs of one forward (torch's FLOP counter: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(inputs, boxes)
    return float(counter.get_total_flops())


def layer_profile(model: torch.nn.Module, run: Callable[[], object], limit: float, repeats: int) -> None:
    """Where one forward of ``model`` (called by ``run``) spends its time, per layer type: convolutions
    grouped by pathway, stage and kernel (forward hooks; FLOPs from the output size), the rest as one line."""
    import re

    def group(name: str, m: torch.nn.Module) -> str:
        k = tuple(m.kernel_size)
        kind = ("1x1x1" if all(x == 1 for x in k) else "spatial 1xkxk" if k[0] == 1 or len(k) == 2
                else "temporal kx1x1" if k[1:] == (1, 1) else "spatio-temporal")
        found = re.search(r"stages\.(\d)\.(\d)\.", name)
        if found:
            return f"{'slow' if found.group(2) == '0' else 'fast'} res{int(found.group(1)) + 2} {kind}"
        return ("fusion (fast->slow lateral)" if "fusions" in name else "stem" if "stem" in name else name) + f" {kind}"

    spent: Dict[str, float] = {}
    flops: Dict[str, float] = {}
    started: Dict[int, float] = {}
    handles = []
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv3d, torch.nn.Conv2d)):
            key = group(name.replace(".conv", "") if isinstance(m, torch.nn.Conv2d) else name, m)

            def pre(mod, args, _key=key):
                started[id(mod)] = time.perf_counter()

            def post(mod, args, out, _key=key):
                spent[_key] = spent.get(_key, 0.0) + time.perf_counter() - started[id(mod)]
                k = 1
                for x in mod.kernel_size:
                    k *= x
                flops[_key] = flops.get(_key, 0.0) + 2.0 * out.numel() * (mod.in_channels // mod.groups) * k

            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    totals = []
    try:
        run()
        for _ in range(repeats):
            spent.clear()
            flops.clear()
            start = time.perf_counter()
            run()
            totals.append((time.perf_counter() - start, dict(spent), dict(flops)))
    finally:
        for h in handles:
            h.remove()
    total, spent, flops = min(totals, key=lambda x: x[0])
    conv = sum(spent.values())
    print(f"\nprofile of one forward ({total:.3f} s, best of {repeats}), per layer type:")
    print(f"  {'layers':<40}{'seconds':>9}{'share':>8}{'GFLOP':>8}{'GFLOP/s':>9}{'of limit':>10}")
    for key in sorted(spent, key=lambda k: -spent[k]):
        rate = flops[key] / spent[key] / 1e9
        print(f"  {key:<40}{spent[key]:9.3f}{100 * spent[key] / total:7.1f}%{flops[key] / 1e9:8.1f}{rate:9.1f}"
              f"{100 * rate / limit:9.0f}%")
    rest = total - conv
    print(f"  {'all convolutions':<40}{conv:9.3f}{100 * conv / total:7.1f}%{sum(flops.values()) / 1e9:8.1f}"
          f"{sum(flops.values()) / conv / 1e9:9.1f}{100 * sum(flops.values()) / conv / 1e9 / limit:9.0f}%")
    print(f"  {'everything else (ReLU, adds, concat, pooling, RoIAlign, head)':<40}{rest:9.3f}{100 * rest / total:7.1f}%")


def fixture_bf16_difference() -> Dict[str, float]:
    """Largest |bf16 autocast - fp32| probability on the reference fixtures' inputs (if present)."""
    from ava_detect.config import load_config
    from ava_detect.model import build_model, load_weights

    out = {}
    for name, preset, width, aligned in (
            ("pyslowfast_slowfast_r50_w8", "slowfast_r50_8x8", 8, "true"),
            ("pytorchvideo_slowfast_r50_detection_w16", "slowfast_r50_8x8", 16, "false"),
            ("pyslowfast_slowfast_r101_nonlocal_w8", "slowfast_r101_8x8_nonlocal", 8, "false")):
        folder = SHARED / "fixtures" / "models" / name
        if not folder.is_dir():
            continue
        cfg = load_config(ROOT / f"configs/ava/{preset}.yaml",
                          [f"model.resnet.width_per_group={width}", f"model.roi_aligned={aligned}"])
        model = build_model(cfg)
        load_weights(model, folder / "checkpoint.pyth")
        inp = torch.load(folder / "inputs.pt", weights_only=True)
        fast = model.optimized_for_inference()
        p32 = fast.predict([inp["slow"], inp["fast"]], inp["boxes"])
        p16 = fast.predict([inp["slow"], inp["fast"]], inp["boxes"], bf16=True)
        out[name] = (p16 - p32).abs().max().item()
    return out


def non_local_share(fn: Callable[[], object], model: torch.nn.Module, device: torch.device, repeats: int) -> float:
    """Fraction of the wall time of ``fn`` spent inside the model's non-local blocks (forward hooks)."""
    from ava_detect.model import NonLocalBlock

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    spent, start = [0.0], [0.0]

    def pre(module, args):
        sync()
        start[0] = time.perf_counter()

    def post(module, args, out):
        sync()
        spent[0] += time.perf_counter() - start[0]

    handles = []
    for m in model.modules():
        if isinstance(m, NonLocalBlock):
            handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    shares = []
    try:
        for _ in range(repeats):
            spent[0] = 0.0
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            shares.append(spent[0] / (time.perf_counter() - t0))
    finally:
        for h in handles:
            h.remove()
    return statistics.median(shares)


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per variant (interleaved)")
    parser.add_argument("--frames", type=int, default=32, help="fast-pathway frames (slow = frames / 4)")
    parser.add_argument("--size", type=int, default=256, help="input height and width")
    parser.add_argument("--boxes", type=int, default=5)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast variants")
    parser.add_argument("--no-r101", action="store_true", help="skip the R101 non-local model")
    parser.add_argument("--profile", action="store_true", help="also: time per layer type of the fastest fp32 variant")
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if not args.no_bf16 and device.type == "cpu" and not _cpu_has_bf16_units():
        args.no_bf16 = True
        print("bf16 variants skipped: this CPU has no bf16 matrix units (AMX or AVX-512 BF16), so bf16 matrix "
              "products are emulated; the bf16 rate below shows how slow")
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True

    from pytorchvideo.models.hub import slowfast_r50_detection

    from ava_detect.config import load_config
    from ava_detect.model import build_model, load_weights

    torch.manual_seed(0)
    reference = slowfast_r50_detection(pretrained=False)
    randomize(reference)
    reference.eval()
    ours = build_model(load_config(ROOT / "configs/ava/slowfast_r50_8x8.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "slowfast_r50_detection.pyth"
        torch.save({"model_state": reference.state_dict()}, path)
        load_weights(ours, path)
    ours.eval()
    optimized = ours.optimized_for_inference(channels_last=True)
    optimized_3d = ours.optimized_for_inference(channels_last=True, frame_convs=False)
    folded_only = ours.optimized_for_inference(channels_last=False)
    reference.to(device), ours.to(device), optimized.to(device), folded_only.to(device), optimized_3d.to(device)
    r101 = r101_optimized = None
    if not args.no_r101:
        r101 = build_model(load_config(ROOT / "configs/ava/slowfast_r101_8x8_nonlocal.yaml"))
        randomize(r101, seed=2)
        r101.eval()
        r101_optimized = r101.optimized_for_inference(channels_last=True).to(device)
        r101.to(device)

    g = torch.Generator().manual_seed(1)
    t, s = args.frames, args.size
    fast_clip = torch.randn(1, 3, t, s, s, generator=g)
    slow_clip = fast_clip[:, :, torch.linspace(0, t - 1, t // 4).long()]
    inputs = [slow_clip.to(device), fast_clip.to(device)]
    xy = torch.rand(args.boxes, 4, generator=g) * s
    boxes = torch.cat([torch.zeros(args.boxes, 1), torch.minimum(xy[:, :2], xy[:, 2:]),
                       torch.maximum(xy[:, :2], xy[:, 2:])], dim=1).to(device)

    def bf16():
        return torch.autocast(device.type, dtype=torch.bfloat16)

    def run_reference():
        with torch.no_grad():
            return reference(list(inputs), boxes)  # PyTorchVideo overwrites the list it is given

    def run_reference_bf16():
        with torch.no_grad(), bf16():
            return reference(list(inputs), boxes).float()

    def run(model, autocast=False):
        def fn():
            with torch.inference_mode(), (bf16() if autocast else contextlib.nullcontext()):
                return model(inputs, boxes).float()
        return fn

    variants: Dict[str, Callable[[], torch.Tensor]] = {
        "pytorchvideo fp32 (reference)": run_reference,
        "ours fp32": run(ours),
        "ours fp32, BN folded": run(folded_only),
        "ours fp32, BN folded + channels-last, 3D convs": run(optimized_3d),
        "ours fp32, BN folded + channels-last": run(optimized),
    }
    if not args.no_bf16:
        variants["pytorchvideo bf16 autocast"] = run_reference_bf16
        variants["ours bf16 autocast, BN folded + channels-last"] = run(optimized, autocast=True)
    r101_names = {}  # R101 variant -> the R50 variant it is compared with
    if r101 is not None:
        r101_names["R101 non-local fp32, BN folded + channels-last"] = "ours fp32, BN folded + channels-last"
        if not args.no_bf16:
            r101_names["R101 non-local bf16 autocast, BN folded + channels-last"] = \
                "ours bf16 autocast, BN folded + channels-last"
        for name in r101_names:
            variants[name] = run(r101_optimized, autocast="bf16" in name)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    expected = run_reference()
    expected_r101 = run(r101)() if r101 is not None else None
    diffs, memory = {}, {}
    for name, fn in variants.items():  # warm-up, output check and memory
        diffs[name] = (fn() - (expected_r101 if name in r101_names else expected)).abs().max().item()
        sync()
        memory[name] = peak_extra_memory_mib(fn, device)
    times: Dict[str, List[float]] = {name: [] for name in variants}
    cpu_times: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            sync()
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)

    limit = machine_limit(device)
    flops = clip_flops(ours, inputs, boxes)
    ref_name = "pytorchvideo fp32 (reference)"
    ref_min, ref_med = min(times[ref_name]), statistics.median(times[ref_name])
    print(f"SlowFast R50 detector forward, {device.type}"
          f"{f', {args.threads} threads' if device.type == 'cpu' else ''}: 1 clip {t // 4}/{t} frames at {s}x{s}, "
          f"{args.boxes} boxes, eval, {args.repeats} interleaved repeats (torch {torch.__version__})")
    print(f"machine limit (best matrix multiply, {args.threads if device.type == 'cpu' else 'all'} threads): "
          f"fp32 {limit['fp32']:.1f} GFLOP/s, bf16 {limit['bf16']:.2f} GFLOP/s; R50 forward: {flops / 1e9:.1f} GFLOP "
          f"per clip (torch's FLOP counter)")
    ref_cpu = min(cpu_times[ref_name])
    print(f"{'variant':48s} {'min s':>7s} {'median s':>9s} {'speed (min)':>11s} {'speed (med)':>11s} "
          f"{'speed (cpu)':>11s} {'peak +MiB':>9s} {'max |dp|':>9s} {'of limit':>9s}")
    for name in variants:
        tmin, tmed = min(times[name]), statistics.median(times[name])
        r50 = name not in r101_names
        share = f"{100 * flops / tmin / 1e9 / limit['bf16' if 'bf16' in name else 'fp32']:8.0f}%" if r50 else f"{'-':>9s}"
        print(f"{name:48s} {tmin:7.3f} {tmed:9.3f} {ref_min / tmin:10.2f}x {ref_med / tmed:10.2f}x "
              f"{ref_cpu / min(cpu_times[name]):10.2f}x {memory[name]:9.0f} {diffs[name]:9.2e} {share}")
    print("speed = reference time / variant time (> 1: faster than PyTorchVideo fp32), from the fastest (min) and "
          "median wall time and from the least process CPU time (cpu; less sensitive to other load on the machine); "
          "peak +MiB = extra peak memory of one forward; max |dp| = largest probability difference to the reference; "
          "of limit = R50 FLOPs per clip / time, as a share of the machine's matrix-multiply rate")
    for name, r50_name in r101_names.items():
        share = non_local_share(variants[name], r101_optimized, device, args.repeats)
        print(f"{name}: {min(times[name]) / min(times[r50_name]):.2f}x the time of R50 (min; "
              f"{statistics.median(times[name]) / statistics.median(times[r50_name]):.2f}x median, "
              f"{min(cpu_times[name]) / min(cpu_times[r50_name]):.2f}x CPU time); "
              f"{100 * share:.1f}% of its forward time in the 3 non-local blocks")
    if args.profile:
        layer_profile(optimized, variants["ours fp32, BN folded + channels-last"], limit["fp32"], args.repeats)
    if not args.no_bf16 and device.type == "cpu":
        diffs_fixture = fixture_bf16_difference()
        for name, d in diffs_fixture.items():
            print(f"bf16 autocast vs fp32 on the {name} fixture inputs: max |dp| = {d:.2e}")
        if not diffs_fixture:
            print("(reference fixtures not found; bf16 difference on their inputs not measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
