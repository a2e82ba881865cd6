"""CVAT exports for the import's tests and the bad-input probe: a good export of a synthetic video
(its ground truth as person tracks) and hostile variants of it, each with what its error must say."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Dict, List, Tuple

#: name -> (file name in the folder, what the one-line error must match (regex, case-insensitive)).
HOSTILE = {
    "malformed XML": ("malformed.xml", r"malformed\.xml:\d+: .*malformed"),
    "truncated XML": ("truncated.xml", r"truncated\.xml:\d+: .*(ends early|truncated)"),
    "entity expansion bomb": ("bomb.xml", r"bomb\.xml:\d+: .*entit.* refused"),
    "external entity": ("external.xml", r"external\.xml:\d+: .*external entity.* refused"),
    "zip without annotations.xml": ("no_annotations.zip", r"no_annotations\.zip.*annotations\.xml"),
    "zip with a path escaping the folder": ("escape.zip", r"escape\.zip.*\.\./"),
    "box with x2 < x1": ("x2_before_x1.xml", r"x2_before_x1\.xml:\d+: track \d+, frame \d+: .*xbr < xtl"),
    "box outside the frame": ("outside_frame.xml", r"outside_frame\.xml:\d+: track \d+, frame \d+: .*outside the"),
    "frame beyond the video": ("beyond.xml", r"beyond\.xml:\d+: track \d+: .*frame 99999, beyond"),
    "track that is not a person": ("car.xml", r"car\.xml:\d+: track \d+ has the label 'car'; expected 'person'"),
    "attribute not in the label map": ("good.xml", r"good\.xml:\d+: .*attribute '.*' .*not an action of the label map"),
    "two tasks naming one video": ("twice", r"b\.xml:\d+: task 2 names the video .*a\.xml names too"),
    "missing video": ("missing_video.xml", r"missing_video\.xml:\d+: .*'nothere\.mp4'.*not among the videos"),
    "unreadable video": ("unreadable_video.xml", r"notes\.mp4.*(cannot open|not a video)"),
}


def write_good_export(video: Path, gt_csv: Path, labelmap: Path, out: Path, *, task_id: int = 1) -> Path:
    """The CVAT task export of ``video`` (a prepared AVA-format video, t=0 = second 900) with the
    rows of ``gt_csv`` for it as person tracks."""
    from ava_detect.cvat.model import CvatTask
    from ava_detect.cvat.writer import write_cvat_xml
    from ava_detect.data.ava_files import read_ground_truth, read_labelmap
    from ava_detect.data.frame_numbers import frame_times
    from ava_detect.data.video import probe_video
    from ava_detect.synthetic.cvat_example import ground_truth_tracks

    lm = read_labelmap(labelmap)
    actions = [lm.names[i] for i in lm.ids]
    gt = read_ground_truth(gt_csv, lm)
    gt = gt[gt["video_id"] == video.stem]
    info = probe_video(video)
    n = len(frame_times(video))
    task = CvatTask(id=task_id, name=video.stem, source=video.name, size=n, width=info.width, height=info.height,
                    stop_frame=n - 1, labels={"person": actions}, attribute_types={a: "checkbox" for a in actions})
    tracks = ground_truth_tracks(gt, dict(lm.names), actions, width=info.width, height=info.height, fps=info.rate,
                                 num_frames=n)
    write_cvat_xml(out, task, tracks, label_attributes=actions)
    return out


def _replace_first(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write_hostile_exports(good: Path, folder: Path, unreadable_video: Path) -> Dict[str, Tuple[List[Path], str]]:
    """Hostile variants of the export ``good`` in ``folder``: name -> (the files to import, the regex
    its error must match). ``unreadable_video`` is a file named like a video that is not one."""
    import re

    folder.mkdir(parents=True, exist_ok=True)
    text = good.read_text(encoding="utf-8")
    files: Dict[str, str] = {}
    files["malformed.xml"] = _replace_first(text, "</track>", "</trak>")
    files["truncated.xml"] = text[: len(text) // 2]
    doctype = ('<!DOCTYPE annotations [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
               '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>')
    files["bomb.xml"] = _replace_first(text, "<annotations>", doctype + "<annotations>").replace(
        "<name>person</name>", "<name>&d;</name>", 1)
    files["external.xml"] = _replace_first(
        text, "<annotations>", '<!DOCTYPE annotations [<!ENTITY x SYSTEM "file:///etc/passwd">]><annotations>'
    ).replace("<bugtracker></bugtracker>", "<bugtracker>&x;</bugtracker>", 1)
    files["x2_before_x1.xml"] = _first_box(text, xtl="50.00", xbr="10.00")
    files["outside_frame.xml"] = _first_box(text, xbr="5000.00")
    files["beyond.xml"] = _beyond(text)
    person_attributes = re.search(r"<attributes>.*?</attributes>", text, re.S).group(0)
    files["car.xml"] = _replace_first(text, "</labels>", "<label><name>car</name><type>rectangle</type>"
                                                         f"{person_attributes}</label></labels>") \
        .replace('label="person"', 'label="car"', 1)
    files["missing_video.xml"] = re.sub(r"<source>[^<]*</source>", "<source>nothere.mp4</source>", text)
    files["unreadable_video.xml"] = re.sub(r"<source>[^<]*</source>",
                                           f"<source>{unreadable_video.name}</source>", text)
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    (folder / "good.xml").write_text(text, encoding="utf-8")
    with zipfile.ZipFile(folder / "no_annotations.zip", "w") as z:
        z.writestr("images/readme.txt", "no annotations here")
    with zipfile.ZipFile(folder / "escape.zip", "w") as z:
        z.writestr("annotations.xml", text)
        z.writestr("../evil.xml", text)
    twice = folder / "twice"
    twice.mkdir(exist_ok=True)
    (twice / "a.xml").write_text(text, encoding="utf-8")
    (twice / "b.xml").write_text(text.replace("<id>1</id>", "<id>2</id>", 1), encoding="utf-8")
    return {name: ([folder / file] if file != "twice" else [twice], says) for name, (file, says) in HOSTILE.items()}


def _first_box(text: str, **values: str) -> str:
    """``text`` with attributes of its first ``<box>`` element set to ``values``."""
    import re

    m = re.search(r"<box [^>]*>", text)
    element = m.group(0)
    for key, value in values.items():
        element = re.sub(rf'\b{key}="[^"]*"', f'{key}="{value}"', element)
    return text[: m.start()] + element + text[m.end():]


def _beyond(text: str) -> str:
    """The first track's last box moved to frame 99999."""
    import re

    end = text.index("</track>")
    boxes = list(re.finditer(r'<box frame="(\d+)"', text[:end]))
    last = boxes[-1]
    return text[: last.start(1)] + "99999" + text[last.end(1):]
