import json
import os
import subprocess
import sys

import pytest

from keras_mvf.data import (
    NO_LABEL,
    build_dataset,
    index_annotations,
    load_manifest,
    pack_tfrecords,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_something_json,
    parse_ucf101,
    write_manifest,
    write_video,
)
from tests.data.conftest import make_frames, write_frame_folder


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text)
    return str(path)


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    """Videos laid out as the datasets ship them, plus one frame folder."""
    root = tmp_path_factory.mktemp("root")
    frames = make_frames(12, 32, 48)
    for relative in (
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "Archery/v_Archery_g01_c01.avi",
        "abseiling/abc_000010_000020.mp4",
        "air drumming/xyz_000001_000011.mp4",
        "78687.webm",
        "brush_hair/a.avi",
        "cartwheel/b.avi",
        "tst_000003_000013.mp4",
    ):
        os.makedirs(os.path.dirname(root / relative), exist_ok=True)
        write_video(str(root / relative), frames, fps=30)
    write_frame_folder(str(root / "frames" / "clip1"), frames[:5])
    return root


def test_list_files_for_videos_and_frame_folders(dataset_root, tmp_path):
    path = _write(
        tmp_path / "list.txt",
        "Archery/v_Archery_g01_c01.avi 1\n\nframes/clip1 5 0\nnot/there.avi 1\n",
    )
    annotations, classes = parse_list_file(path)
    assert classes == ["0", "1"]
    entries, problems = index_annotations(annotations, str(dataset_root))
    assert [(e.path, e.kind, e.num_frames, e.label) for e in entries] == [
        ("Archery/v_Archery_g01_c01.avi", "video", 12, 1),
        ("frames/clip1", "frames", 5, 0),
    ]
    assert problems == [f"missing\tnot/there.avi\t{path}:4"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("a.avi", "list.txt:2: expected 'path label'"),
        ("a.avi one", "list.txt:2: label must be an integer"),
        ("a.avi 5", "list.txt:2: label 5 is outside the class list of 2 classes"),
        ("a 0 1", "list.txt:2: num_frames must be positive"),
    ],
)
def test_list_file_errors_name_file_and_line(tmp_path, line, message):
    path = _write(tmp_path / "list.txt", f"b.avi 0\n{line}\n")
    with pytest.raises(ValueError, match=message):
        parse_list_file(path, classes=["x", "y"])


def test_kinetics_csv_with_label_folders(dataset_root, tmp_path):
    path = _write(
        tmp_path / "k.csv",
        "label,youtube_id,time_start,time_end,split\n"
        "air drumming,xyz,1,11,train\nabseiling,abc,10,20,train\n"
        "abseiling,gone,0,10,train\n",
    )
    annotations, classes = parse_kinetics_csv(path)
    assert classes == ["abseiling", "air drumming"]
    entries, problems = index_annotations(annotations, str(dataset_root), workers=2)
    assert [(e.path, e.label) for e in entries] == [
        ("air drumming/xyz_000001_000011.mp4", 1),
        ("abseiling/abc_000010_000020.mp4", 0),
    ]
    assert len(problems) == 1 and "gone_000000_000010" in problems[0]
    with pytest.raises(ValueError, match=r"k.csv:3: label 'abseiling' is not in the class list"):
        parse_kinetics_csv(path, classes=["air drumming"])
    bad = _write(tmp_path / "bad.csv", "label,youtube_id,time_start,time_end,split\nx,y,z\n")
    with pytest.raises(ValueError, match="bad.csv:2: expected 5 fields"):
        parse_kinetics_csv(bad)


def test_kinetics_test_split_without_labels(dataset_root, tmp_path):
    no_column = _write(
        tmp_path / "test.csv", "youtube_id,time_start,time_end,split\ntst,3,13,test\n"
    )
    empty = _write(
        tmp_path / "test2.csv",
        "label,youtube_id,time_start,time_end,split\n,tst,3,13,test\nabseiling,abc,10,20,val\n",
    )
    annotations, classes = parse_kinetics_csv(no_column, classes=["abseiling", "air drumming"])
    assert classes == ["abseiling", "air drumming"]
    assert [(a.candidates, a.label) for a in annotations] == [(("tst_000003_000013",), NO_LABEL)]
    annotations, classes = parse_kinetics_csv(empty)
    assert classes == ["abseiling"] and [a.label for a in annotations] == [NO_LABEL, 0]
    entries, problems = index_annotations(annotations, str(dataset_root))
    assert problems == [] and [(e.path, e.label) for e in entries] == [
        ("tst_000003_000013.mp4", NO_LABEL),
        ("abseiling/abc_000010_000020.mp4", 0),
    ]
    manifest = load_manifest(
        write_manifest(str(tmp_path / "m.jsonl"), entries, classes, str(dataset_root))
    )
    assert [e.label for e in manifest.entries] == [NO_LABEL, 0]
    small = {"num_frames": 2, "frame_interval": 2, "crop_size": 16, "short_side": 16}
    labels = [
        y.numpy().tolist()
        for _, y in build_dataset(
            manifest, training=False, batch_size=2, deterministic=True, **small
        )
    ]
    assert labels == [[NO_LABEL, 0]]
    pack_tfrecords(manifest, str(tmp_path / "shards"), num_shards=1, short_side=16)
    labels = [
        y.numpy().tolist()
        for _, y in build_dataset(
            str(tmp_path / "shards"), training=False, batch_size=2, deterministic=True, **small
        )
    ]
    assert labels == [[NO_LABEL, 0]]
    with pytest.raises(ValueError, match="1 have no label .* tst_000003_000013.mp4"):
        build_dataset(manifest, training=True, **small)


def test_something_something_json(dataset_root, tmp_path):
    labels = _write(
        tmp_path / "labels.json",
        json.dumps(
            {"Holding something next to something": "1", "Something falling like a rock": "0"}
        ),
    )
    items = _write(
        tmp_path / "train.json",
        json.dumps(
            [
                {
                    "id": "78687",
                    "label": "holding a cup next to a pen",
                    "template": "Holding [something] next to [something]",
                    "placeholders": ["a", "b"],
                },
            ]
        ),
    )
    annotations, classes = parse_something_json(items, labels)
    assert classes == ["Something falling like a rock", "Holding something next to something"]
    entries, problems = index_annotations(annotations, str(dataset_root))
    assert (entries[0].path, entries[0].label, problems) == ("78687.webm", 1, [])
    bad = _write(tmp_path / "bad.json", json.dumps([{"id": "1", "template": "Dropping [x]"}]))
    with pytest.raises(ValueError, match="bad.json:item 1: class 'Dropping x' is not in"):
        parse_something_json(bad, labels)


def test_ucf101_split_files(dataset_root, tmp_path):
    class_ind = _write(tmp_path / "classInd.txt", "1 ApplyEyeMakeup\n2 Archery\n")
    train = _write(tmp_path / "trainlist01.txt", "Archery/v_Archery_g01_c01.avi 2\n")
    test = _write(tmp_path / "testlist01.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\n")
    annotations, classes = parse_ucf101(train, class_ind)
    assert classes == ["ApplyEyeMakeup", "Archery"] and annotations[0].label == 1
    annotations, _ = parse_ucf101(test, class_ind)
    entries, _ = index_annotations(annotations, str(dataset_root))
    assert entries[0].label == 0 and entries[0].num_frames == 12
    bad = _write(tmp_path / "bad.txt", "Archery/v.avi 3\n")
    with pytest.raises(ValueError, match="bad.txt:1: label 2 is outside the class list"):
        parse_ucf101(bad, class_ind)


def test_hmdb51_split_flags(dataset_root, tmp_path):
    splits = tmp_path / "splits"
    _write(splits / "brush_hair_test_split1.txt", "a.avi 1\nunused.avi 0\n")
    _write(splits / "cartwheel_test_split1.txt", "b.avi 2\nc.avi 1\n")
    train, classes = parse_hmdb51(str(splits), 1, "train")
    assert classes == ["brush_hair", "cartwheel"]
    assert [(a.candidates[0], a.label) for a in train] == [
        (os.path.join("brush_hair", "a.avi"), 0),
        (os.path.join("cartwheel", "c.avi"), 1),
    ]
    test, _ = parse_hmdb51(str(splits), 1, "test")
    entries, problems = index_annotations(test, str(dataset_root))
    assert [e.label for e in entries] == [1] and problems == []
    _write(splits / "cartwheel_test_split2.txt", "b.avi 3\n")
    with pytest.raises(ValueError, match="cartwheel_test_split2.txt:1: expected"):
        parse_hmdb51(str(splits), 2)


def test_manifest_round_trip_and_errors(dataset_root, tmp_path):
    annotations, classes = parse_list_file(
        _write(tmp_path / "l.txt", "frames/clip1 5 1\nArchery/v_Archery_g01_c01.avi 0\n")
    )
    entries, _ = index_annotations(annotations, str(dataset_root))
    path = write_manifest(str(tmp_path / "m.jsonl"), entries, classes, str(dataset_root))
    manifest = load_manifest(path)
    assert manifest.entries == entries and manifest.classes == classes
    assert os.path.isdir(manifest.full_path(manifest.entries[0]))
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    relabelled = lines[1].replace('"label": 1', '"label": 2')
    _write(tmp_path / "bad.jsonl", f"{lines[0]}\n{relabelled}\n")
    with pytest.raises(ValueError, match="bad.jsonl:2: label 2 is outside the class list"):
        load_manifest(str(tmp_path / "bad.jsonl"))
    _write(tmp_path / "bad2.jsonl", lines[0] + "\n{nope\n")
    with pytest.raises(ValueError, match="bad2.jsonl:2: malformed manifest line"):
        load_manifest(str(tmp_path / "bad2.jsonl"))


@pytest.mark.slow
def test_index_command_reports_problems_separately(dataset_root, tmp_path):
    broken = tmp_path / "broken"
    os.makedirs(broken)
    open(broken / "zero.mp4", "wb").close()
    listing = _write(
        tmp_path / "list.txt",
        f"{dataset_root}/Archery/v_Archery_g01_c01.avi 0\n{broken}/zero.mp4 0\nmissing.avi 1\n",
    )
    output = str(tmp_path / "out.jsonl")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_mvf.cli",
            "data",
            "index",
            "--format",
            "list",
            "--annotations",
            listing,
            "--root",
            str(tmp_path),
            "--output",
            output,
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Indexed 1 of 3 videos, 2 classes" in result.stdout
    assert "2 missing or unreadable videos" in result.stdout
    assert len(load_manifest(output).entries) == 1
    with open(output + ".problems.txt", encoding="utf-8") as file:
        problems = file.read().splitlines()
    assert [line.split("\t")[0] for line in problems] == ["unreadable", "missing"]
    assert problems[0].endswith("list.txt:2\t" + f"OpenCV cannot open the video: {broken}/zero.mp4")
