"""Importing a large CVAT-for-video-1.1 export: time, throughput and peak memory of the streamed reader.

Generates (streamed, never in memory) the zip CVAT downloads for a *project* export, the one file
CVAT gives for a folder of videos each in its own task: ``--videos`` tasks of ``--minutes`` at 30 fps,
``--tracks`` person tracks per video, a box at every frame (CVAT writes every frame; keyframe="1" at
whole seconds, "0" between) with ``--attributes`` checkbox attributes each, frames numbered project-wide
as CVAT does. Then, in fresh processes (so generation does not count in the peak memory):

1. ours: ``iter_cvat_export`` + ``boxes_at_frames`` at whole seconds (every 30th frame), on the big
   export and on a 1-video export (the peak memory must not grow with the file);
2. reference: ``xml.etree.ElementTree.parse`` (the whole tree in memory) on the 1-video export;
3. the alternative streaming parser: ``defusedxml.ElementTree.iterparse`` (elements cleared as they
   end) reading the same values, on the 1-video export; it cannot name a box's line in an error.

Peak memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of each process; ``baseline`` is the
same process after its imports, before reading. The zip is written under ``--dir`` (default: the
system temporary folder) and deleted at the end.

    python -u bench/cvat_import.py [--videos 100] [--minutes 10] [--tracks 5] [--attributes 6]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

FPS = 30


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _meta(videos: int, frames: int, attributes: list) -> str:
    tasks = "".join(
        f"""      <task>
        <id>{i + 1}</id>
        <name>video {i:03d}</name>
        <size>{frames}</size>
        <mode>interpolation</mode>
        <overlap>0</overlap>
        <bugtracker></bugtracker>
        <subset>default</subset>
        <start_frame>0</start_frame>
        <stop_frame>{frames - 1}</stop_frame>
        <frame_filter></frame_filter>
        <original_size>
          <width>1280</width>
          <height>720</height>
        </original_size>
        <source>video_{i:03d}.mp4</source>
      </task>
""" for i in range(videos))
    attrs = "".join(
        f"""          <attribute>
            <name>{a.replace("&", "&amp;")}</name>
            <mutable>True</mutable>
            <input_type>checkbox</input_type>
            <default_value>false</default_value>
            <values>false</values>
          </attribute>
""" for a in attributes)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <project>
      <id>1</id>
      <name>bench</name>
      <tasks>
{tasks}      </tasks>
      <labels>
        <label>
          <name>person</name>
          <color>#ff0000</color>
          <type>rectangle</type>
          <attributes>
{attrs}          </attributes>
        </label>
      </labels>
    </project>
  </meta>
"""


def write_export(path: Path, videos: int, minutes: float, tracks: int, n_attributes: int) -> int:
    """Write the project export zip, streamed; returns the number of boxes."""
    frames = int(round(minutes * 60 * FPS))
    attributes = [f"action {k} (a & b)" if k == 1 else f"action{k}" for k in range(n_attributes)]
    blocks = []  # the attribute lines of a box, for each pattern of checked attributes
    for pattern in range(8):
        blocks.append("".join(
            f'      <attribute name="{a.replace("&", "&amp;")}">{"true" if (pattern >> (k % 3)) & 1 else "false"}</attribute>\n'
            for k, a in enumerate(attributes)))
    boxes = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("annotations.xml", "w", force_zip64=True) as raw:
            f = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
            f.write(_meta(videos, frames, attributes))
            track_id = 0
            for v in range(videos):
                offset = v * frames  # CVAT numbers a project's frames task after task
                for t in range(tracks):
                    x0, y0 = 100 + 200 * t, 100 + 20 * t
                    parts = [f'  <track id="{track_id}" label="person" source="manual" task_id="{v + 1}" subset="default">\n']
                    for fr in range(frames):
                        x = x0 + 50 * math.sin(fr / 300 + t)
                        y = y0 + 30 * math.cos(fr / 400 + v)
                        parts.append(
                            f'    <box frame="{offset + fr}" keyframe="{int(fr % FPS == 0)}" outside="0" occluded="0" '
                            f'xtl="{x:.2f}" ytl="{y:.2f}" xbr="{x + 120:.2f}" ybr="{y + 300:.2f}" z_order="0">\n'
                            f'{blocks[(fr // 90 + t) % 8]}    </box>\n')
                        if len(parts) >= 2000:
                            f.write("".join(parts))
                            parts.clear()
                    parts.append("  </track>\n")
                    f.write("".join(parts))
                    boxes += frames
                    track_id += 1
            f.write("</annotations>\n")
            f.flush()
            f.detach()
    return boxes


# -- the measurements, each run in a fresh process -----------------------------------------------

def measure_ours(path: str) -> dict:
    from ava_detect.cvat import CvatTask, boxes_at_frames, iter_cvat_export

    baseline = _rss_mb()
    t = time.perf_counter()
    sizes, boxes, shown, tracks = {}, 0, 0, 0
    for item in iter_cvat_export(path):
        if isinstance(item, CvatTask):
            sizes[item.id] = item.size
            continue
        tracks += 1
        boxes += len(item.boxes)
        at = boxes_at_frames(item, range(0, sizes[item.task_id], FPS))
        shown += sum(entry is not None for entry in at)
    seconds = time.perf_counter() - t
    return {"boxes": boxes, "tracks": tracks, "seconds_shown": shown, "time": seconds,
            "peak_mb": _rss_mb(), "baseline_mb": baseline}


def measure_etree(path: str) -> dict:
    import xml.etree.ElementTree as ET

    baseline = _rss_mb()
    t = time.perf_counter()
    with zipfile.ZipFile(path) as archive, archive.open("annotations.xml") as f:
        root = ET.parse(f).getroot()
    boxes = sum(1 for _ in root.iter("box"))
    return {"boxes": boxes, "time": time.perf_counter() - t, "peak_mb": _rss_mb(), "baseline_mb": baseline}


def measure_iterparse(path: str) -> dict:
    from defusedxml.ElementTree import iterparse

    baseline = _rss_mb()
    t = time.perf_counter()
    boxes = 0
    with zipfile.ZipFile(path) as archive, archive.open("annotations.xml") as f:
        current = []
        for _, el in iterparse(f, events=("end",)):
            tag = el.tag
            if tag == "box":
                a = el.attrib
                current.append((int(a["frame"]), float(a["xtl"]), float(a["ytl"]), float(a["xbr"]),
                                float(a["ybr"]), a["outside"] == "1",
                                {c.get("name"): c.text or "" for c in el}))
                boxes += 1
                el.clear()
            elif tag == "track":
                current = []
                el.clear()
    return {"boxes": boxes, "time": time.perf_counter() - t, "peak_mb": _rss_mb(), "baseline_mb": baseline}


MEASURES = {"ours": measure_ours, "etree": measure_etree, "iterparse": measure_iterparse}


def run_measure(kind: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, "-u", __file__, "--measure", kind, str(path)],
                         capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    if out.returncode != 0:
        sys.exit(f"the {kind} measurement failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--tracks", type=int, default=5)
    parser.add_argument("--attributes", type=int, default=6)
    parser.add_argument("--dir", default=None, help="where to write the zips (deleted at the end)")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(MEASURES[args.measure[0]](args.measure[1])))
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        small, big = Path(tmp) / "one_video.zip", Path(tmp) / "project.zip"
        t = time.perf_counter()
        n_small = write_export(small, 1, args.minutes, args.tracks, args.attributes)
        print(f"1-video export: {n_small:,} boxes, {small.stat().st_size / 1e6:.1f} MB zip "
              f"({time.perf_counter() - t:.1f} s to write)")
        t = time.perf_counter()
        n_big = write_export(big, args.videos, args.minutes, args.tracks, args.attributes)
        xml_gb = zipfile.ZipFile(big).getinfo("annotations.xml").file_size / 1e9
        print(f"{args.videos}-video export: {n_big:,} boxes ({args.tracks} tracks x {args.minutes:g} min x "
              f"{FPS} fps per video, {args.attributes} checkbox attributes per box), {xml_gb:.2f} GB XML, "
              f"{big.stat().st_size / 1e6:.0f} MB zip ({time.perf_counter() - t:.1f} s to write)")

        big_ours = run_measure("ours", big)
        one_ours = run_measure("ours", small)
        one_ref = run_measure("etree", small)
        one_iter = run_measure("iterparse", small)
    assert big_ours["boxes"] == n_big and one_ours["boxes"] == n_small  # a check of the run, not of speed

    print(f"\nours, {args.videos} videos: {big_ours['boxes']:,} boxes in {big_ours['tracks']} tracks, "
          f"{big_ours['seconds_shown']:,} track-seconds interpolated; {big_ours['time']:.1f} s, "
          f"{big_ours['boxes'] / big_ours['time']:,.0f} boxes/s; peak RSS {big_ours['peak_mb']:.0f} MB "
          f"(baseline after imports {big_ours['baseline_mb']:.0f} MB)")
    print(f"ours, 1 video:   {one_ours['boxes']:,} boxes; {one_ours['time']:.2f} s, "
          f"{one_ours['boxes'] / one_ours['time']:,.0f} boxes/s; peak RSS {one_ours['peak_mb']:.0f} MB "
          f"(baseline {one_ours['baseline_mb']:.0f} MB)")
    print(f"peak memory, {args.videos} videos vs 1 video ({n_big // n_small}x the boxes): "
          f"{big_ours['peak_mb'] / one_ours['peak_mb']:.2f}x")
    print(f"\nreference ElementTree.parse, 1 video: {one_ref['time']:.2f} s, peak RSS {one_ref['peak_mb']:.0f} MB "
          f"(baseline {one_ref['baseline_mb']:.0f} MB)")
    print(f"  time ratio (reference / ours): {one_ref['time'] / one_ours['time']:.2f}x; "
          f"peak memory ratio (reference / ours): {one_ref['peak_mb'] / one_ours['peak_mb']:.2f}x")
    print(f"alternative defusedxml iterparse, 1 video (no line numbers): {one_iter['time']:.2f} s, "
          f"peak RSS {one_iter['peak_mb']:.0f} MB; time ratio (iterparse / ours): "
          f"{one_iter['time'] / one_ours['time']:.2f}x")


if __name__ == "__main__":
    main()
