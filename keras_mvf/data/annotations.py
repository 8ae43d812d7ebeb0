"""Annotation files of the usual datasets, turned into one manifest format.

Each parser returns `(annotations, classes)`: a list of `Annotation`s (where
to look for the video, its label, and the file and line it came from) and the
class names in label order. `index_annotations` then finds and probes the
files, and `write_manifest` / `load_manifest` store the result.

Manifest format (JSON lines, UTF-8): the first line is a header
`{"keras_mvf_manifest": 1, "root": folder, "classes": [names]}`, then one
object per video: `{"path": str, "kind": "video"|"frames", "num_frames": int
> 0, "fps": number >= 0, "label": class index or NO_LABEL}` plus, for frame
folders only, `"template"` (a `str.format` pattern of the frame number) and
`"start_index"` (int >= 0). Paths are relative to `root` (or absolute).
`load_manifest` checks all of this, line by line.
"""

import concurrent.futures
import csv
import dataclasses
import glob
import json
import os

from keras_mvf.data.video import VIDEO_EXTENSIONS, count_image_frames, probe
from keras_mvf.utils import files

MANIFEST_VERSION = 1

# Label of a video without annotation (e.g. the Kinetics test split), for
# prediction and feature extraction; training refuses it.
NO_LABEL = -1
FORMATS = ("list", "kinetics", "ssv2", "ucf101", "hmdb51")


@dataclasses.dataclass(frozen=True)
class Annotation:
    """One annotated video before it is found on disk.

    Attributes:
        candidates: relative paths to try, in order, each as given or with a
            video extension appended; a folder is a frame folder.
        label: 0-based class index, or `NO_LABEL` (-1) for an unlabelled video.
        source: `"file:line"` where the annotation came from, for errors.
        num_frames: frame count given by the annotation (frame lists), or `None`.
    """

    candidates: tuple
    label: int
    source: str
    num_frames: int | None = None


@dataclasses.dataclass(frozen=True)
class VideoEntry:
    """One manifest line: a readable video file or frame folder.

    Attributes:
        path: relative to the manifest root, or absolute.
        num_frames: frames in the video.
        fps: frames per second (0.0 for frame folders and unknown rates).
        label: 0-based class index, or `NO_LABEL` (-1) for an unlabelled video.
        kind: `"video"` or `"frames"`.
        template: frame file pattern, for frame folders.
        start_index: number of the first frame file, for frame folders.
    """

    path: str
    num_frames: int
    fps: float
    label: int
    kind: str = "video"
    template: str | None = None
    start_index: int = 1


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A loaded manifest: `entries` (`VideoEntry`s), `classes` (names) and `root`."""

    entries: list
    classes: list
    root: str

    def full_path(self, entry):
        """The path (or URI) of `entry`."""
        return files.join(self.root, entry.path)


def _error(source, message):
    return ValueError(f"{source}: {message}")


def _read_lines(path):
    """Yields `(source, stripped line)` for the non-blank lines of a text file."""
    with files.open_file(path) as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                yield f"{path}:{number}", line.strip()


def _parse_int(text, source, what):
    try:
        return int(text)
    except ValueError:
        raise _error(source, f"{what} must be an integer. Received: {text!r}") from None


def _check_label(label, classes, source):
    if classes is not None and label != NO_LABEL and not 0 <= label < len(classes):
        raise _error(source, f"label {label} is outside the class list of {len(classes)} classes")
    return label


def read_class_names(path):
    """Reads class names, one per line (a leading `index ` as in UCF's classInd is dropped)."""
    names = []
    for source, line in _read_lines(path):
        fields = line.split(maxsplit=1)
        if len(fields) == 2 and fields[0].isdigit():
            number = int(fields[0])
            if number != len(names) + 1:
                raise _error(source, f"expected class number {len(names) + 1}, got {number}")
            names.append(fields[1])
        else:
            names.append(line)
    if not names:
        raise ValueError(f"No class name in {path}")
    return names


def parse_list_file(path, classes=None):
    """Parses `relative/path label` (videos) or `relative/path num_frames label` (folders).

    Args:
        path: the list file; fields are separated by spaces.
        classes: class names; labels must index into it. Defaults to names
            `"0"`, `"1"`, ... up to the largest label.
    """
    annotations = []
    for source, line in _read_lines(path):
        fields = line.split()
        if len(fields) not in (2, 3):
            raise _error(
                source, f"expected 'path label' or 'path num_frames label'. Received: {line!r}"
            )
        label = _check_label(_parse_int(fields[-1], source, "label"), classes, source)
        if label < 0:
            raise _error(source, f"label must be non-negative. Received: {label}")
        num_frames = _parse_int(fields[1], source, "num_frames") if len(fields) == 3 else None
        if num_frames is not None and num_frames < 1:
            raise _error(source, f"num_frames must be positive. Received: {num_frames}")
        annotations.append(Annotation((fields[0],), label, source, num_frames))
    if classes is None:
        classes = [str(i) for i in range(max((a.label for a in annotations), default=-1) + 1)]
    return annotations, list(classes)


def parse_kinetics_csv(path, classes=None):
    """Parses a Kinetics CSV `label,youtube_id,time_start,time_end,split`.

    Videos are looked for as `<id>_<start:06d>_<end:06d>` (the downloader's
    naming) directly under the root or in a folder named after the label
    (as written, or with spaces as underscores). The test split comes without
    labels (no `label` column, or empty labels): those videos get `NO_LABEL`
    and are looked for directly under the root.

    Args:
        path: the CSV file, with a header line.
        classes: class names; every non-empty label must be one. Defaults to
            the sorted labels of the file.
    """
    with files.open_file(path) as file:
        rows = list(csv.reader(file))
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header = [name.strip() for name in rows[0]]
    required = ("youtube_id", "time_start", "time_end")
    missing = [name for name in required if name not in header]
    if missing:
        raise _error(f"{path}:1", f"the header lacks columns {missing}. Received: {header}")
    columns = {name: header.index(name) for name in (*required, "label") if name in header}
    records = []
    for number, row in enumerate(rows[1:], start=2):
        source = f"{path}:{number}"
        if not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise _error(source, f"expected {len(header)} fields. Received: {row}")
        youtube_id, start, end = (row[columns[name]].strip() for name in required)
        label = row[columns["label"]].strip() if "label" in columns else ""
        start = _parse_int(start.split(".")[0], source, "time_start")
        end = _parse_int(end.split(".")[0], source, "time_end")
        records.append((source, label, youtube_id, start, end))
    if classes is None:
        classes = sorted({record[1] for record in records if record[1]})
    index = {name: i for i, name in enumerate(classes)}
    annotations = []
    for source, label, youtube_id, start, end in records:
        if label and label not in index:
            raise _error(source, f"label {label!r} is not in the class list")
        name = f"{youtube_id}_{start:06d}_{end:06d}"
        folders = dict.fromkeys((label, label.replace(" ", "_"))) if label else {}
        candidates = (name, *(os.path.join(folder, name) for folder in folders))
        annotations.append(Annotation(candidates, index[label] if label else NO_LABEL, source))
    return annotations, list(classes)


def parse_something_json(path, labels_path):
    """Parses Something-Something V2 `[{"id", "template", ...}]` with its labels JSON.

    The class of an item is its template with `[something]` brackets removed,
    looked up in the labels JSON (`{"class name": "index", ...}`). Videos are
    `<id>.webm` or frame folders `<id>/`.
    """
    with files.open_file(labels_path) as file:
        label_map = {name: int(index) for name, index in json.load(file).items()}
    classes = [None] * len(label_map)
    for name, index in label_map.items():
        if not 0 <= index < len(classes) or classes[index] is not None:
            raise ValueError(
                f"{labels_path}: class indices must be 0..{len(classes) - 1} "
                f"without repeats. Received: {name!r}: {index}"
            )
        classes[index] = name
    with files.open_file(path) as file:
        items = json.load(file)
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of items")
    annotations = []
    for number, item in enumerate(items, start=1):
        source = f"{path}:item {number}"
        if not isinstance(item, dict) or "id" not in item or "template" not in item:
            raise _error(source, f"expected an object with 'id' and 'template'. Received: {item}")
        name = item["template"].replace("[", "").replace("]", "")
        if name not in label_map:
            raise _error(source, f"class {name!r} is not in {labels_path}")
        annotations.append(Annotation((str(item["id"]),), label_map[name], source))
    return annotations, classes


def parse_ucf101(split_path, class_index_path):
    """Parses a UCF-101 `trainlist0N.txt` / `testlist0N.txt` with `classInd.txt`.

    Train lists give `Class/v_Class_gXX_cYY.avi N` (1-based); test lists give
    the path alone and the class is its folder.
    """
    classes = read_class_names(class_index_path)
    index = {name: i for i, name in enumerate(classes)}
    annotations = []
    for source, line in _read_lines(split_path):
        fields = line.split()
        if len(fields) not in (1, 2):
            raise _error(source, f"expected 'Class/video.avi [label]'. Received: {line!r}")
        folder = fields[0].replace("\\", "/").split("/")[0]
        if len(fields) == 2:
            label = _check_label(_parse_int(fields[1], source, "label") - 1, classes, source)
        elif folder in index:
            label = index[folder]
        else:
            raise _error(source, f"class folder {folder!r} is not in {class_index_path}")
        annotations.append(Annotation((fields[0],), label, source))
    return annotations, classes


def parse_hmdb51(split_dir, split=1, subset="train"):
    """Parses HMDB-51 `<class>_test_split<N>.txt` files (flags 1 train, 2 test, 0 unused).

    Classes are the sorted class names of the split files; videos are
    `<class>/<video>.avi`.
    """
    if subset not in ("train", "test"):
        raise ValueError(f"`subset` must be 'train' or 'test'. Received: subset={subset}")
    suffix = f"_test_split{split}.txt"
    files = sorted(glob.glob(os.path.join(glob.escape(split_dir), f"*{suffix}")))
    if not files:
        raise FileNotFoundError(f"No '*{suffix}' file in {split_dir}")
    classes = [os.path.basename(file)[: -len(suffix)] for file in files]
    wanted = "1" if subset == "train" else "2"
    annotations = []
    for label, (name, file) in enumerate(zip(classes, files, strict=True)):
        for source, line in _read_lines(file):
            fields = line.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise _error(source, f"expected 'video.avi 0|1|2'. Received: {line!r}")
            if fields[1] == wanted:
                annotations.append(Annotation((os.path.join(name, fields[0]),), label, source))
    return annotations, classes


def _locate(root, candidates):
    """The first existing `(relative path, kind)` among the candidates, or `None`."""
    for candidate in candidates:
        full = files.join(root, candidate)
        if files.isfile(full):
            return candidate, "video"
        if files.isdir(full):
            return candidate, "frames"
        for extension in VIDEO_EXTENSIONS:
            if files.isfile(full + extension):
                return candidate + extension, "video"
    return None


def _index_one(annotation, root, template, start_index, exact):
    """Returns `(VideoEntry, None)` or `(None, problem line)` for one annotation."""
    found = _locate(root, annotation.candidates)
    if found is None:
        return None, f"missing\t{annotation.candidates[0]}\t{annotation.source}"
    path, kind = found
    try:
        if kind == "frames":
            num_frames = annotation.num_frames or count_image_frames(
                files.join(root, path), template, start_index
            )
            return VideoEntry(
                path, num_frames, 0.0, annotation.label, kind, template, start_index
            ), None
        info = probe(files.join(root, path), exact=exact)
        return VideoEntry(path, info.num_frames, info.fps, annotation.label), None
    except OSError as error:
        return None, f"unreadable\t{path}\t{annotation.source}\t{error}"


def index_annotations(
    annotations,
    root,
    template="img_{:05d}.jpg",
    start_index=1,
    exact=False,
    workers=8,
    progress=None,
):
    """Finds and probes annotated videos in parallel.

    Args:
        annotations: `Annotation`s from a parser.
        root: folder the annotation paths are relative to.
        template: frame file pattern for frame folders. Defaults to `"img_{:05d}.jpg"`.
        start_index: number of the first frame file. Defaults to `1`.
        exact: count video frames by decoding (see `probe`). Defaults to `False`.
        workers: probing threads. Defaults to `8`.
        progress: optional callable, called with the number done so far.

    Returns:
        `(entries, problems)`: `VideoEntry`s in annotation order for the files
        found and readable, and one tab-separated line
        `missing|unreadable<TAB>path<TAB>file:line[<TAB>reason]` per other one.
    """
    entries, problems = [], []
    with concurrent.futures.ThreadPoolExecutor(max(int(workers), 1)) as pool:
        results = pool.map(lambda a: _index_one(a, root, template, start_index, exact), annotations)
        for done, (entry, problem) in enumerate(results, start=1):
            if entry is not None:
                entries.append(entry)
            else:
                problems.append(problem)
            if progress is not None:
                progress(done)
    return entries, problems


def write_manifest(path, entries, classes, root):
    """Writes a manifest (JSON lines; see the module docstring)."""
    with files.open_file(path, "w") as file:
        header = {
            "keras_mvf_manifest": MANIFEST_VERSION,
            "root": root if files.is_uri(root) else os.path.abspath(root),
            "classes": list(classes),
        }
        file.write(json.dumps(header) + "\n")
        for entry in entries:
            record = dataclasses.asdict(entry)
            if entry.kind == "video":
                del record["template"], record["start_index"]
            file.write(json.dumps(record) + "\n")
    return path


def is_manifest(path):
    """Whether `path` starts with a manifest header line."""
    try:
        with files.open_file(path) as file:
            header = json.loads(file.readline())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and "keras_mvf_manifest" in header


def _field(record, name, source, expected, accept, required=True):
    """`record[name]` if `accept(value)`, else a ValueError naming the field and the expectation."""
    if name not in record:
        if required:
            raise _error(source, f"field {name!r} is missing; expected {expected}")
        return None
    value = record[name]
    if not accept(value):
        raise _error(
            source,
            f"field {name!r} must be {expected}. Received: {value!r} ({type(value).__name__})",
        )
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value):
    return isinstance(value, str)


def _is_template(value):
    """A `str.format` pattern taking one frame number, such as `"img_{:05d}.jpg"`."""
    if not isinstance(value, str):
        return False
    try:
        return value.format(1) != value
    except (ValueError, IndexError, KeyError):
        return False


def _parse_entry(line, source, classes):
    """The `VideoEntry` of one manifest line, every field type-checked."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise _error(source, f"malformed manifest line ({error})") from None
    if not isinstance(record, dict):
        raise _error(source, f"expected a JSON object. Received: {type(record).__name__}")
    path = _field(record, "path", source, "a non-empty string", lambda v: _is_str(v) and v)
    kind = _field(record, "kind", source, "'video' or 'frames'", ("video", "frames").__contains__)
    num_frames = _field(
        record, "num_frames", source, "a positive integer", lambda v: _is_int(v) and v > 0
    )
    fps = _field(
        record,
        "fps",
        source,
        "a non-negative number",
        lambda v: (_is_int(v) or isinstance(v, float)) and 0 <= v < float("inf"),
    )
    label = _field(
        record, "label", source, f"an integer class index or NO_LABEL ({NO_LABEL})", _is_int
    )
    _check_label(label, classes, source)
    frames = kind == "frames"
    template = _field(
        record,
        "template",
        source,
        "a frame file pattern such as 'img_{:05d}.jpg'" if frames else "absent (or null)",
        _is_template if frames else (lambda v: v is None),
        required=frames,
    )
    start_index = _field(
        record,
        "start_index",
        source,
        "a non-negative integer" if frames else "absent (or null)",
        (lambda v: _is_int(v) and v >= 0) if frames else (lambda v: v is None),
        required=frames,
    )
    return VideoEntry(
        path,
        num_frames,
        float(fps),
        label,
        kind,
        template,
        start_index if start_index is not None else 1,
    )


def load_manifest(path, root=None):
    """Loads a manifest written by `write_manifest` / `keras-mvf data index`.

    Every field of every line is type-checked on reading, so that a hand-edited
    or damaged manifest fails here, and not as a wrong label or a crash mid-epoch.

    Args:
        path: the manifest file.
        root: folder the entry paths are relative to. Defaults to the root
            stored in the manifest.

    Returns:
        A `Manifest(entries, classes, root)`.

    Raises:
        ValueError: naming the file and line, the field, what it held and what
            was expected: for a malformed line, a field of the wrong type (a
            label that is not an integer, say), a missing field or a label
            outside the class list.
    """
    try:
        return _read_manifest(path, root)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not a keras_mvf manifest (not UTF-8 text: {error})") from None


def _read_manifest(path, root):
    """`load_manifest` on a UTF-8 file."""
    with files.open_file(path) as file:
        lines = enumerate(file, start=1)
        _, first = next(lines, (1, ""))
        try:
            header = json.loads(first)
        except json.JSONDecodeError:
            header = None
        if not isinstance(header, dict) or header.get("keras_mvf_manifest") != MANIFEST_VERSION:
            raise _error(
                f"{path}:1", f"not a keras_mvf manifest (version {MANIFEST_VERSION}) header"
            )
        source = f"{path}:1"
        classes = _field(
            header,
            "classes",
            source,
            "a list of class names (strings)",
            lambda v: isinstance(v, list) and all(isinstance(name, str) for name in v),
        )
        stored_root = _field(header, "root", source, "a folder (string)", _is_str)
        entries = [
            _parse_entry(line, f"{path}:{number}", classes)
            for number, line in lines
            if line.strip()
        ]
    return Manifest(entries, classes, root if root is not None else stored_root)
