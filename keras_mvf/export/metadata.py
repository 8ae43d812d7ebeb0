"""Files packed inside a `.tflite` model, as TFLite model metadata packs its associated files.

The files form a zip archive appended to the flatbuffer. LiteRT reads the
flatbuffer and ignores what follows it; any zip reader (Python's `zipfile`,
`java.util.zip`) finds the archive from its end, so an app reads the labels
and the input description from the model file itself.
"""

import io
import json
import zipfile

LABELS_FILE = "labels.txt"
DESCRIPTION_FILE = "model.json"


def attach(flatbuffer, files):
    """The bytes of `flatbuffer` followed by a zip archive of `files` (`{name: bytes or str}`).

    Offsets in the archive count from the start of the whole file, as zip readers expect
    of an archive behind other data.
    """
    buffer = io.BytesIO()
    buffer.write(flatbuffer)
    with zipfile.ZipFile(buffer, "a", zipfile.ZIP_DEFLATED) as archive:  # appends to non-zip data
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def read(path):
    """`{name: bytes}` of the files packed in the `.tflite` file `path` (or file object)."""
    if not zipfile.is_zipfile(path):
        return {}
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def description(path):
    """The model description packed in `path` (a dict), or None."""
    content = read(path).get(DESCRIPTION_FILE)
    return None if content is None else json.loads(content)
