"""Clip loading speed and disk use: prepared video vs PySlowFast's JPEG frame folders.

On a synthetic AVA-format set (made here with `ava-detect prep synthetic` unless --data is
given), reads clips (default 32x2: 32 frames, stride 2) at random keyframes through a DataLoader
with 2 workers, from:

  video       the set's videos, decoded with seek + decode (ava_detect.data.video.VideoFolder)
  video-prep  the same videos re-encoded with `prep videos`' settings (keyframe every 16 frames,
              non-reference frames at odd indices, which 32x2 clips never need)
  frames      JPEG frame folders of the same videos, written as PySlowFast does (`-q:v 1`)

and prints clips per second and the bytes on disk of each, with ratios against the frame
folders measured in the same run. The same keyframes are read from every source, in the same
order. Timings are wall-clock on this machine; nothing is asserted.

Example:
  python bench/clip_loading.py --videos 6 --seconds 60 --clips 300
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ava_detect.data.constants import FIRST_KEYFRAME_SECOND
from ava_detect.data.sampler import clip_frame_indices, keyframe_center
from ava_detect.data.video import FrameFolder, VideoFolder


class ClipReads(Dataset):
    """Item ``i`` = the uint8 clip ``[T,H,W,3]`` of keyframe ``keys[i]`` from ``source``."""

    def __init__(self, source, keys: List[Tuple[str, int]], counts, num_frames: int, sampling_rate: int):
        self.source, self.keys, self.counts = source, keys, counts
        self.num_frames, self.sampling_rate = num_frames, sampling_rate

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> torch.Tensor:
        video_id, second = self.keys[i]
        n = self.counts[video_id]
        idx = clip_frame_indices(keyframe_center(second), num_frames=self.num_frames,
                                 sampling_rate=self.sampling_rate, num_video_frames=n)
        return self.source.read(video_id, idx, num_frames=n)


def folder_bytes(path: Path, suffix: str) -> int:
    return sum(p.stat().st_size for p in path.rglob(f"*{suffix}") if p.is_file())


def clips_per_second(source, keys, counts, args) -> float:
    ds = ClipReads(source, keys, counts, args.num_frames, args.sampling_rate)
    loader = DataLoader(ds, batch_size=None, shuffle=False, num_workers=args.workers,
                        prefetch_factor=4 if args.workers else None)
    it = iter(loader)
    warm = max(2 * args.workers, 2)
    for _ in range(warm):  # worker start-up is not clip loading
        next(it)
    start = time.perf_counter()
    n = 0
    for _ in it:
        n += 1
    return n / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="an existing synthetic set (default: make one in a temporary folder)")
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--clips", type=int, default=300, help="clips read per source")
    parser.add_argument("--num-frames", type=int, default=32)
    parser.add_argument("--sampling-rate", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="rounds over the sources (best round is reported)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from ava_detect.prep.frames import extract_frames
    from ava_detect.prep.videos import EncodeSettings, cut_video

    tmp = tempfile.TemporaryDirectory(prefix="clip_loading.")
    work = Path(tmp.name)
    if args.data:
        data = Path(args.data)
    else:
        from ava_detect.synthetic import make_synthetic_dataset

        w, h = (int(v) for v in args.size.lower().split("x"))
        data = work / "synthetic"
        t = time.perf_counter()
        make_synthetic_dataset(data, seed=args.seed, num_videos=args.videos, seconds=args.seconds, size=(w, h))
        print(f"made a synthetic set: {args.videos} videos x {args.seconds} s at {w}x{h} ({time.perf_counter() - t:.0f} s)")
    videos = sorted((data / "videos").glob("*.mp4"))
    if not videos:
        print(f"no videos in {data / 'videos'}", file=sys.stderr)
        return 2
    frames_dir, prep_dir = work / "frames", work / "videos_prep"
    t = time.perf_counter()
    for v in videos:
        extract_frames(v, frames_dir)
        n = VideoFolder(v.parent).num_frames(v.stem)
        cut_video(v, prep_dir / v.name, EncodeSettings(start=0, end=n / 30, preset="fast"))
    print(f"wrote JPEG frame folders (-q:v 1) and prep-videos re-encodes ({time.perf_counter() - t:.0f} s)")

    sources = {"video": VideoFolder(data / "videos"), "video-prep": VideoFolder(prep_dir), "frames": FrameFolder(frames_dir)}
    counts = {v.stem: sources["video"].num_frames(v.stem) for v in videos}
    rng = np.random.default_rng(args.seed)
    keys = []
    for _ in range(args.clips + 2 * max(args.workers, 1)):
        vid = videos[int(rng.integers(len(videos)))].stem
        last = FIRST_KEYFRAME_SECOND - 2 + counts[vid] // 30 - 1
        keys.append((vid, int(rng.integers(FIRST_KEYFRAME_SECOND, max(last, FIRST_KEYFRAME_SECOND) + 1))))
    torch.set_num_threads(1)
    best = {name: 0.0 for name in sources}
    for r in range(args.repeats):
        for name, src in sources.items():
            best[name] = max(best[name], clips_per_second(src, keys, counts, args))
    size = {"video": folder_bytes(data / "videos", ".mp4"), "video-prep": folder_bytes(prep_dir, ".mp4"),
            "frames": folder_bytes(frames_dir, ".jpg")}
    print(f"\n{args.clips} clips of {args.num_frames}x{args.sampling_rate} at random keyframes, "
          f"{args.workers} DataLoader workers, {len(videos)} videos, {sum(counts.values())} frames")
    print(f"{'source':<12}{'clips/s':>10}{'vs frames':>11}{'bytes':>14}{'frames/bytes':>14}")
    for name in sources:
        print(f"{name:<12}{best[name]:>10.1f}{best[name] / best['frames']:>10.2f}x{size[name]:>14,d}"
              f"{size['frames'] / size[name]:>13.1f}x")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
