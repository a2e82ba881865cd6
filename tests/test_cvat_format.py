"""The CVAT-for-video-1.1 format layer (ava_detect.cvat): writer -> reader round trips, CVAT's
interpolation rules, tracks from keyframe observations, the label constructor JSON, project exports,
and bad inputs refused with one line naming the file and the line (and the track and frame)."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import List

import numpy as np
import pytest

from ava_detect.cvat import (CvatBox, CvatTask, CvatTrack, boxes_at_frames, checkbox_attributes,
                             iter_cvat_export, keyframe_tracks, label_constructor, write_cvat_xml,
                             write_cvat_zip)
from ava_detect.errors import AvaDetectError

ACTIONS = ["stand", "listen to (a person)", "talk & sing", "sit"]


def _task(**kw) -> CvatTask:
    values = dict(id=3, name="clip one", source="clip <1>.mp4", size=300, width=640, height=480)
    values.update(kw)
    return CvatTask(**values)


def _sample_tracks() -> List[CvatTrack]:
    rng = np.random.default_rng(0)
    observations = []
    for track_id in (0, 4, 9):
        for frame in range(0, 300, 30):
            if track_id == 4 and frame in (90, 120):
                continue  # a gap
            if track_id == 9 and frame > 150:
                continue  # leaves
            x, y = rng.uniform(0, 500, 2)
            box = [x, y, x + rng.uniform(5, 130), y + rng.uniform(5, 300)]
            acts = [a for a in ACTIONS if rng.random() < 0.4]
            observations.append((track_id, frame, box, checkbox_attributes(acts, ACTIONS)))
    return keyframe_tracks(observations, keyframe_frames=list(range(0, 300, 30)), num_frames=300)


def _boxes(track: CvatTrack):
    return [(b.frame, b.outside, b.keyframe, b.xtl, b.ytl, b.xbr, b.ybr, b.attributes) for b in track.boxes]


@pytest.mark.parametrize("writer, name", [(write_cvat_xml, "pre.xml"), (write_cvat_zip, "pre.zip")])
def test_round_trip(tmp_path, writer, name):
    tracks = _sample_tracks()
    path = tmp_path / name
    writer(path, _task(), tracks, label_attributes=ACTIONS)
    items = list(iter_cvat_export(path))
    task, read = items[0], items[1:]
    assert isinstance(task, CvatTask)
    assert (task.id, task.name, task.source, task.size, task.width, task.height) == (3, "clip one", "clip <1>.mp4", 300, 640, 480)
    assert task.labels == {"person": ACTIONS}
    assert task.attribute_types == {a: "checkbox" for a in ACTIONS}
    assert [t.id for t in read] == [t.id for t in tracks] and all(t.task_id == 3 for t in read)
    for ours, theirs in zip(tracks, read):
        assert theirs.label == "person" and len(theirs.boxes) == len(ours.boxes)
        for a, b in zip(ours.boxes, theirs.boxes):
            assert (a.frame, a.outside, a.keyframe, a.attributes) == (b.frame, b.outside, b.keyframe, b.attributes)
            assert np.allclose([a.xtl, a.ytl, a.xbr, a.ybr], [b.xtl, b.ytl, b.xbr, b.ybr], atol=0.005 + 1e-9)
            assert b.line is not None
    assert not list(tmp_path.glob(".*tmp*")), "no temporary file left"


def test_writer_refuses_undeclared_attribute_and_other_label(tmp_path):
    track = CvatTrack(1, "person", [CvatBox(0, 1, 2, 3, 4, attributes={"fly": "true"})])
    with pytest.raises(ValueError, match="fly"):
        write_cvat_xml(tmp_path / "a.xml", _task(), [track], label_attributes=ACTIONS)
    with pytest.raises(ValueError, match="car"):
        write_cvat_xml(tmp_path / "a.xml", _task(), [CvatTrack(1, "car", [])], label_attributes=ACTIONS)
    assert not (tmp_path / "a.xml").exists()


def test_label_constructor_json():
    labels = label_constructor(["stand", "sit"])
    assert labels == [{"name": "person", "type": "rectangle", "attributes": [
        {"name": "stand", "mutable": True, "input_type": "checkbox", "default_value": "false", "values": ["false"]},
        {"name": "sit", "mutable": True, "input_type": "checkbox", "default_value": "false", "values": ["false"]},
    ]}]


def test_keyframe_tracks_gaps_and_end():
    on = {"stand": "true"}
    tracks = keyframe_tracks(
        [(5, 0, [0, 0, 10, 10], on), (5, 30, [2, 0, 12, 10], {}), (5, 90, [4, 0, 14, 10], {}),
         (1, 60, [0, 0, 5, 5], {}), (1, 90, [0, 0, 5, 5], {})],
        keyframe_frames=[0, 30, 60, 90], num_frames=100)
    assert [t.id for t in tracks] == [1, 5]
    assert [(b.frame, b.outside) for b in tracks[0].boxes] == [(60, False), (90, False)]
    assert [(b.frame, b.outside) for b in tracks[1].boxes] == [(0, False), (30, False), (60, True), (90, False)]
    assert tracks[1].boxes[2].xtl == 2 and all(b.keyframe for b in tracks[1].boxes)
    # the end: an outside box at the next keyframe only if it is inside the video
    ended = keyframe_tracks([(1, 0, [0, 0, 1, 1], {})], keyframe_frames=[0, 30], num_frames=30)
    assert [(b.frame, b.outside) for b in ended[0].boxes] == [(0, False)]
    ended = keyframe_tracks([(1, 0, [0, 0, 1, 1], {})], keyframe_frames=[0, 30], num_frames=31)
    assert [(b.frame, b.outside) for b in ended[0].boxes] == [(0, False), (30, True)]
    with pytest.raises(ValueError, match="not a keyframe"):
        keyframe_tracks([(1, 5, [0, 0, 1, 1], {})], keyframe_frames=[0, 30], num_frames=60)
    assert checkbox_attributes(["sit"], ["stand", "sit"]) == {"stand": "false", "sit": "true"}
    with pytest.raises(ValueError, match="fly"):
        checkbox_attributes(["fly"], ["stand"])


def test_interpolation_rules():
    track = CvatTrack(1, "person", [
        CvatBox(10, 0, 0, 10, 10, attributes={"stand": "true"}),
        CvatBox(20, 10, 20, 30, 40, attributes={"stand": "false"}),
        CvatBox(30, 10, 20, 30, 40, outside=True),
        CvatBox(40, 50, 50, 60, 60, attributes={"stand": "true"}),
        CvatBox(50, 0, 0, 1, 1, outside=True),
    ])
    got = boxes_at_frames(track, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 99])
    assert got[0] is None                                  # before the first box
    assert np.allclose(got[1][0], [0, 0, 10, 10]) and got[1][1] == {"stand": "true"}
    assert np.allclose(got[2][0], [5, 10, 20, 25]) and got[2][1] == {"stand": "true"}  # interpolated
    assert np.allclose(got[3][0], [10, 20, 30, 40]) and got[3][1] == {"stand": "false"}
    assert np.allclose(got[4][0], [10, 20, 30, 40])        # next is outside: held
    assert got[5] is None and got[6] is None               # outside until the next box
    assert np.allclose(got[7][0], [50, 50, 60, 60])
    assert np.allclose(got[8][0], [50, 50, 60, 60])        # held before an outside box
    assert got[9] is None and got[10] is None
    held = CvatTrack(2, "person", [CvatBox(0, 1, 1, 2, 2)])
    assert np.allclose(boxes_at_frames(held, [1000])[0][0], [1, 1, 2, 2])  # no later box: held
    assert boxes_at_frames(CvatTrack(3, "person", []), [0, 1]) == [None, None]


def _every_frame(track: CvatTrack, num_frames: int) -> CvatTrack:
    """What CVAT downloads, computed here by hand (not with boxes_at_frames): a box at every frame
    where the track is in view (keyframe=0 between keyframes, coordinates rounded to 2 decimals),
    plus the outside keyframes."""
    keys = track.boxes
    boxes = []
    for frame in range(num_frames):
        before = [b for b in keys if b.frame <= frame]
        if not before:
            continue
        prev = before[-1]
        if prev.outside:
            if prev.frame == frame:
                boxes.append(prev)
            continue
        after = [b for b in keys if b.frame > frame]
        c0 = np.array([prev.xtl, prev.ytl, prev.xbr, prev.ybr])
        if prev.frame == frame or not after or after[0].outside:
            coords = c0
        else:
            nb = after[0]
            w = (frame - prev.frame) / (nb.frame - prev.frame)
            coords = c0 + w * (np.array([nb.xtl, nb.ytl, nb.xbr, nb.ybr]) - c0)
        x1, y1, x2, y2 = (round(float(v), 2) for v in coords)
        boxes.append(CvatBox(frame, x1, y1, x2, y2, keyframe=prev.frame == frame, attributes=dict(prev.attributes)))
    return CvatTrack(track.id, track.label, boxes)


def test_keyframe_only_and_every_frame_exports_agree(tmp_path):
    tracks = _sample_tracks()
    write_cvat_xml(tmp_path / "key.xml", _task(), tracks, label_attributes=ACTIONS)
    write_cvat_xml(tmp_path / "all.xml", _task(), [_every_frame(t, 300) for t in tracks], label_attributes=ACTIONS)
    key = list(iter_cvat_export(tmp_path / "key.xml"))[1:]
    full = list(iter_cvat_export(tmp_path / "all.xml"))[1:]
    assert sum(len(t.boxes) for t in full) > 5 * sum(len(t.boxes) for t in key)
    seconds = list(range(0, 300, 30)) + [7, 45, 101, 299]
    for a, b in zip(key, full):
        for x, y in zip(boxes_at_frames(a, seconds), boxes_at_frames(b, seconds)):
            assert (x is None) == (y is None)
            if x is not None:
                assert np.allclose(x[0], y[0], atol=0.011) and x[1] == y[1]


PROJECT = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <project>
      <id>1</id>
      <name>my videos</name>
      <tasks>
        <task>
          <id>12</id>
          <name>b</name>
          <size>50</size>
          <mode>interpolation</mode>
          <subset>default</subset>
          <start_frame>0</start_frame>
          <stop_frame>49</stop_frame>
          <frame_filter></frame_filter>
          <original_size><width>320</width><height>240</height></original_size>
          <source>b.mp4</source>
        </task>
        <task>
          <id>11</id>
          <name>a</name>
          <size>100</size>
          <mode>interpolation</mode>
          <subset>default</subset>
          <start_frame>0</start_frame>
          <stop_frame>99</stop_frame>
          <frame_filter></frame_filter>
          <original_size><width>640</width><height>480</height></original_size>
          <source>a.mp4</source>
        </task>
      </tasks>
      <labels>
        <label>
          <name>person</name>
          <color>#ff0000</color>
          <type>rectangle</type>
          <attributes>
            <attribute><name>stand</name><mutable>True</mutable><input_type>checkbox</input_type><default_value>false</default_value><values>false</values></attribute>
          </attributes>
        </label>
      </labels>
    </project>
    <dumped>2024-01-01 00:00:00+00:00</dumped>
  </meta>
  <track id="0" label="person" source="manual" task_id="11" subset="default">
    <box frame="3" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
      <attribute name="stand">true</attribute>
    </box>
  </track>
  <track id="1" label="person" source="manual" task_id="12" subset="default">
    <box frame="105" keyframe="1" outside="0" occluded="0" xtl="1.00" ytl="2.00" xbr="3.00" ybr="4.00" z_order="0">
      <attribute name="stand">false</attribute>
    </box>
    <polygon frame="106" keyframe="1" outside="0" occluded="0" points="1,2;3,4;5,6" z_order="0"></polygon>
  </track>
</annotations>
"""


def test_project_export_two_tasks(tmp_path, caplog):
    path = tmp_path / "project.xml"
    path.write_text(PROJECT)
    with caplog.at_level(logging.WARNING, logger="ava_detect.cvat.reader"):
        items = list(iter_cvat_export(path))
    tasks = [i for i in items[:2]]
    assert [(t.id, t.source, t.size, t.width, t.labels) for t in tasks] == [
        (12, "b.mp4", 50, 320, {"person": ["stand"]}), (11, "a.mp4", 100, 640, {"person": ["stand"]})]
    tracks = items[2:]
    assert [(t.id, t.task_id) for t in tracks] == [(0, 11), (1, 12)]
    # CVAT numbers a project's frames task after task by id (task 11: 0..99, task 12: 100..149)
    assert tracks[0].boxes[0].frame == 3 and tracks[1].boxes[0].frame == 5
    assert tracks[0].boxes[0].attributes == {"stand": "true"}
    assert "1 polygon shapes" in caplog.text


# -- bad inputs: (name, text of the export or a zip maker, what the message says, the marker of the line)

TASK_HEAD = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>1</id>
      <name>v</name>
      <size>100</size>
      <mode>interpolation</mode>
      <labels>
        <label>
          <name>person</name>
          <attributes>
            <attribute><name>stand</name><mutable>True</mutable><input_type>checkbox</input_type><default_value>false</default_value><values>false</values></attribute>
          </attributes>
        </label>
      </labels>
      <original_size><width>320</width><height>240</height></original_size>
      <source>v.mp4</source>
    </task>
  </meta>
"""


def _doc(body: str) -> str:
    return TASK_HEAD + body + "</annotations>\n"


def _box(frame=0, x1="1", y1="2", x2="30", y2="40", extra='outside="0" occluded="0" keyframe="1"', attrs=""):
    return f'    <box frame="{frame}" {extra} xtl="{x1}" ytl="{y1}" xbr="{x2}" ybr="{y2}">{attrs}</box>\n'


def _track(*boxes, label="person", tid=7, extra=""):
    return f'  <track id="{tid}" label="{label}" source="manual"{extra}>\n' + "".join(boxes) + "  </track>\n"


TWO_TASKS = TASK_HEAD.replace("  </meta>\n", "").replace("    <task>", "    <project><tasks><task>", 1) \
    .replace("    </task>\n", "    </task>\n<task><id>2</id><name>w</name><size>10</size><mode>interpolation</mode>"
             "<original_size><width>1</width><height>1</height></original_size><source>v.mp4</source></task>"
             "</tasks></project>\n  </meta>\n")

BAD_XML = [
    ("malformed", _doc(_track(_box()) + "  <track id=\"8\" label=\"person\"></box>\n"), "malformed XML: mismatched tag", "label=\"person\"></box>"),
    ("truncated", _doc(_track(_box(), _box(5)))[:-60], "ends early", None),
    ("entity bomb", '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
     ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n<annotations>&lol2;</annotations>\n',
     "entity declaration 'lol' refused", '<!ENTITY lol "lol">'),
    ("external entity", '<?xml version="1.0"?>\n<!DOCTYPE a [\n<!ENTITY xxe SYSTEM "file:///etc/passwd">\n]>\n'
     '<annotations>&xxe;</annotations>\n', "external entity", "<!ENTITY xxe"),
    ("x2 < x1", _doc(_track(_box(0), _box(4, x1="50", x2="20"))), "track 7, frame 4: box (50, 2, 20, 40) has xbr < xtl", 'xtl="50"'),
    ("non-numeric", _doc(_track(_box(0, y2="4O.5"))), "track 7, frame 0: ybr='4O.5' is not a number", 'ybr="4O.5"'),
    ("label", _doc(_track(_box(0), label="car")), "track 7: label 'car' is not one of the export's labels", 'label="car"'),
    ("attribute", _doc(_track(_box(3, attrs='<attribute name="fly">true</attribute>'))),
     "track 7, frame 3: attribute 'fly' is not declared for label 'person'", 'name="fly"'),
    ("two tasks one video", _doc(""), None, None),  # replaced below
    ("order", _doc(_track(_box(10), _box(5))), "track 7: box at frame 5 comes after frame 10", 'frame="5"'),
    ("keyframe=2", _doc(_track(_box(6, extra='outside="0" occluded="0" keyframe="2"'))),
     "track 7, frame 6: keyframe='2': expected 0 or 1", 'keyframe="2"'),
    ("missing attribute", _doc(_track(_box(6, extra='outside="0" keyframe="1"'))),
     "track 7, frame 6: <box> has no 'occluded' attribute", 'frame="6"'),
    ("unknown task", _doc(_track(_box(0), extra=' task_id="9"')), "track 7: task_id 9 is not a task of the export", 'task_id="9"'),
    ("images format", _doc('  <image id="0" name="a.jpg" width="3" height="3"></image>\n'), "'CVAT for images' export", "<image"),
    ("checkbox value", _doc(_track(_box(2, attrs='<attribute name="stand">yes</attribute>'))),
     "checkbox 'stand' = 'yes': expected true or false", ">yes<"),
    ("version", _doc("").replace("<version>1.1</version>", "<version>1.0</version>"), "expected CVAT XML version 1.1", "<version>"),
]
BAD_XML[8] = ("two tasks one video", TWO_TASKS + "</annotations>\n",
              "tasks 1 (line 5) and 2 both name the video 'v.mp4'", "<task><id>2</id>")


def _line_of(text: str, marker: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


@pytest.mark.parametrize("name, text, says, marker", BAD_XML, ids=[b[0] for b in BAD_XML])
def test_bad_xml_one_line_with_file_and_line(tmp_path, name, text, says, marker):
    path = tmp_path / "export.xml"
    path.write_text(text)
    with pytest.raises(AvaDetectError) as info:
        list(iter_cvat_export(path))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    assert says in message, message
    if marker is not None:
        assert info.value.line == _line_of(text, marker), message
    else:
        assert info.value.line is not None


def _zip(path: Path, members) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize("members, says", [
    ([("images/frame_000000.png", b"x"), ("task.xml", _doc(""))], "expected annotations.xml at the top of the zip"),
    ([("annotations.xml", _doc("")), ("../evil.xml", b"x")], "zip member '../evil.xml' has an absolute path or '..'"),
    ([("annotations.xml", _doc("")), ("/etc/cron.d/evil", b"x")], "zip member '/etc/cron.d/evil'"),
], ids=["no annotations.xml", "dot-dot member", "absolute member"])
def test_bad_zip(tmp_path, members, says):
    path = _zip(tmp_path / "export.zip", members)
    with pytest.raises(AvaDetectError) as info:
        list(iter_cvat_export(path))
    assert str(info.value).startswith(f"{path}: ") and says in str(info.value), str(info.value)


def test_errors_inside_a_zip_name_the_member_and_line(tmp_path):
    text = _doc(_track(_box(0), _box(4, x1="50", x2="20")))
    path = _zip(tmp_path / "export.zip", [("annotations.xml", text)])
    with pytest.raises(AvaDetectError) as info:
        list(iter_cvat_export(path))
    line = _line_of(text, 'xtl="50"')
    assert str(info.value).startswith(f"{path}/annotations.xml:{line}: track 7, frame 4"), str(info.value)


def test_missing_file_and_not_xml(tmp_path):
    with pytest.raises(AvaDetectError, match="CVAT export not found"):
        list(iter_cvat_export(tmp_path / "nope.xml"))
    (tmp_path / "a.zip").write_bytes(b"not a zip")
    with pytest.raises(AvaDetectError, match="cannot read the zip"):
        list(iter_cvat_export(tmp_path / "a.zip"))


def test_rotation_and_frame_step_are_mapped(tmp_path):
    text = _doc(_track(_box(0, x1="0", y1="0", x2="20", y2="10", extra='outside="0" occluded="0" keyframe="1" rotation="90.0"')))
    text = text.replace("<mode>interpolation</mode>", "<mode>interpolation</mode><frame_filter>step=3</frame_filter>")
    path = tmp_path / "r.xml"
    path.write_text(text)
    task, track = list(iter_cvat_export(path))
    assert task.frame_step == 3
    box = track.boxes[0]
    assert np.allclose([box.xtl, box.ytl, box.xbr, box.ybr], [5, -5, 15, 15])


def test_tracks_stream_before_the_file_is_read_whole(tmp_path):
    """The first track arrives before an error 2 MB later in the file is reached (nothing is read whole)."""
    filler = "".join(_box(f) for f in range(1, 20000))
    text = _doc(_track(_box(0), tid=1) + _track(filler, tid=2) + _track(_box(0, x1="9", x2="1"), tid=3))
    path = tmp_path / "big.xml"
    path.write_text(text)
    items = iter_cvat_export(path)
    assert isinstance(next(items), CvatTask)
    first = next(items)
    assert first.id == 1 and len(first.boxes) == 1
    with pytest.raises(AvaDetectError, match="track 3, frame 0"):
        list(items)  # track 2 (larger than one piece read) may come first, then the error


def test_older_task_export_with_source_beside_the_task(tmp_path):
    text = _doc(_track(_box(0))).replace("      <source>v.mp4</source>\n    </task>\n",
                                         "    </task>\n    <source>old.mp4</source>\n")
    path = tmp_path / "old.xml"
    path.write_text(text)
    task, track = list(iter_cvat_export(path))
    assert task.source == "old.mp4" and track.task_id == 1
