"""The released checkpoint files: where they are, what they hold, downloads into the cache.

The architecture each one needs is the model registry's
(`keras_mvf.models.registry.PRETRAINED`); this module only fetches files.
"""

import hashlib
import importlib.resources
import os
import sys
import urllib.request

import numpy as np

from keras_mvf.utils import files
from keras_mvf.weights import pth

RELEASE_URL = "https://github.com/whwu95/MVFNet/releases/download/"
# Set to serve the files from a mirror (or a local server in tests).
BASE_URL_ENV = "KERAS_MVF_WEIGHTS_URL"
# Set to keep downloads and converted files somewhere other than the Keras cache.
CACHE_DIR_ENV = "KERAS_MVF_CACHE_DIR"
CACHE_SUBDIR = "keras_mvf"
MIB = 1 << 20

_RELEASE = {
    "source": "https://github.com/whwu95/MVFNet",
    "license": "Apache-2.0",
    # RGB mean and std on 0..255 pixels, applied inside the model (layout="pytorch").
    "mean": (123.675, 116.28, 103.53),
    "std": (58.395, 57.12, 57.375),
}


def _kinetics(depth, frames, interval, top1):
    return {
        **_RELEASE,
        "file": f"v0.2/R{depth}_{frames}x{interval}.pth",
        # Not known here: no file could be downloaded when this registry was written.
        "sha256": None,
        "num_frames": frames,
        "frame_interval": interval,
        "dataset": "Kinetics-400",
        "top1": top1,
        "description": (
            f"MVFNet ResNet-{depth}, alpha 1/8 in res4-5, Kinetics-400, "
            f"{frames} frames x interval {interval}, {top1}% top-1 (authors' model zoo)"
        ),
    }


def _imagenet(depth):
    return {
        **_RELEASE,
        "file": f"v0.1/resnet{depth}.pth",
        "sha256": None,
        "num_frames": None,
        "frame_interval": None,
        "dataset": "ImageNet",
        "top1": None,
        "description": (
            f"torchvision-layout ImageNet ResNet-{depth} the Kinetics models were trained "
            "from; backbone_weights for layout='pytorch'"
        ),
    }


PRESETS = {
    **{
        f"mvfnet{depth}_k400_{frames}x{interval}": _kinetics(depth, frames, interval, top1)
        for depth, frames, interval, top1 in (
            (50, 4, 16, 74.2),
            (50, 8, 8, 76.0),
            (50, 16, 4, 77.0),
            (101, 4, 16, 76.0),
            (101, 8, 8, 77.4),
            (101, 16, 4, 78.4),
        )
    },
    "resnet50_imagenet": _imagenet(50),
    "resnet101_imagenet": _imagenet(101),
}


def list_weights():
    """Names of the released checkpoints, for `weights=` / `backbone_weights=`, sorted."""
    return sorted(PRESETS)


def weights_info(name):
    """Metadata of a released checkpoint, with its download `url`."""
    if name not in PRESETS:
        raise ValueError(
            f"Unknown weights {name!r}; choose one of {list_weights()}. Received: name={name!r}"
        )
    return {**PRESETS[name], "name": name, "url": checkpoint_url(name)}


def is_backbone(name):
    """Whether `name` is a released ImageNet backbone (for `backbone_weights`)."""
    return name in PRESETS and PRESETS[name]["num_frames"] is None


def checkpoint_url(name):
    base = os.environ.get(BASE_URL_ENV) or RELEASE_URL
    return base.rstrip("/") + "/" + PRESETS[name]["file"]


def cache_root():
    """Directory of downloads and conversions: `$KERAS_MVF_CACHE_DIR`, else Keras' cache."""
    root = os.environ.get(CACHE_DIR_ENV) or os.environ.get("KERAS_HOME") or "~/.keras"
    return os.path.join(os.path.expanduser(root), CACHE_SUBDIR)


def converted_dir(name, version):
    """Cache directory of release `name` converted by converter `version` (may not exist yet).

    The version is part of the name, so that a conversion made by another
    version of the converter is never taken for this one's.
    """
    return os.path.join(cache_root(), "presets", f"{name}.converter-{version}")


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _problem(name, path):
    """Why the file at `path` is not release `name`, or None: a sha256 mismatch where one is
    recorded, otherwise anything `read_pth` refuses."""
    expected = PRESETS[name]["sha256"]
    if expected is not None:
        actual = sha256_of(path)
        return None if actual == expected else f"its sha256 {actual} does not match {expected}"
    try:
        pth.read_pth(path)
    except pth.CheckpointError as error:
        return str(error).removeprefix(f"{path}: ")
    return None


def _fetch(url, path):
    """Writes the body of `url` to the new file `path`, with a progress bar in MiB; a body
    cut short is an OSError."""
    import keras

    from keras_mvf.utils.progress import progress_verbosity

    print(f"Downloading {url}", file=sys.stderr)
    with urllib.request.urlopen(url, timeout=60) as response, open(path, "xb") as file:
        expected = response.headers.get("Content-Length")
        total = None if expected is None else -(-int(expected) // MIB)
        bar = keras.utils.Progbar(total, verbose=progress_verbosity(), unit_name="MiB")
        for block in iter(lambda: response.read(MIB), b""):
            file.write(block)
            bar.update(-(-file.tell() // MIB))
        if expected is not None and file.tell() != int(expected):
            raise OSError(f"the connection closed after {file.tell()} of {expected} bytes")


def download_checkpoint(name):
    """The local path of released checkpoint `name`, downloaded into the cache once.

    The download goes to a hidden `.partial-*` file in the cache folder and is
    renamed into place only once it checks out: its sha256 where one is
    recorded, otherwise it must read as a PyTorch checkpoint (`read_pth`). A
    cached file is checked the same way on every call; one that fails (cut
    short by an older version, changed on disk) is deleted and downloaded once
    more, from the current `KERAS_MVF_WEIGHTS_URL`.

    Returns:
        The local path of the checkpoint.

    Raises:
        RuntimeError: the file could not be fetched or is not the checkpoint;
            the message names the URL, the cache path and how to use a file
            fetched elsewhere. Nothing of a bad download is kept.
    """
    url = checkpoint_url(name)
    filename = os.path.basename(PRESETS[name]["file"])
    path = os.path.join(cache_root(), filename)
    if os.path.isfile(path):
        problem = _problem(name, path)
        if problem is None:
            return path
        print(
            f"keras_mvf: deleting the cached {path} ({problem}); downloading it again.",
            file=sys.stderr,
        )
        os.remove(path)
    os.makedirs(cache_root(), exist_ok=True)
    elsewhere = (
        f"Without network, download {filename} elsewhere, then either pass its path "
        f"(weights='/path/{filename}') or convert it once into a preset directory: "
        f"`keras-mvf convert /path/{filename} {name}/` and pass its path, "
        f"keras_mvf.from_preset('{name}/')."
    )
    with files.replacing(path) as partial:  # a bad download never reaches the cache
        try:
            _fetch(url, partial)
        except Exception as error:
            raise RuntimeError(
                f"Could not get {name} from {url} ({error}); nothing was cached as {path}. "
                f"{elsewhere}"
            ) from error
        problem = _problem(name, partial)
        if problem is not None:
            raise RuntimeError(
                f"{url} did not serve the {name} checkpoint: {problem}. The download was "
                f"deleted, not cached as {path}; check the URL ({BASE_URL_ENV}). {elsewhere}"
            )
    if PRESETS[name]["sha256"] is None:
        print(
            f"keras_mvf: no sha256 is recorded for {name}, so {filename} was only checked to "
            f"read as a PyTorch checkpoint; it has sha256 {sha256_of(path)}.",
            file=sys.stderr,
        )
    return path


def kinetics400_classes():
    """The 400 Kinetics-400 class names, in the label order of the released checkpoints."""
    text = importlib.resources.files("keras_mvf.weights").joinpath("kinetics400_classes.txt")
    return text.read_text(encoding="utf-8").splitlines()


def decode_predictions(predictions, top=5, class_names=None):
    """Top classes of each clip: `[[(name, probability), ...], ...]`.

    Args:
        predictions: array `(batch, num_classes)` of model outputs.
        top: int, how many classes per clip. Defaults to `5`.
        class_names: list of names; defaults to the Kinetics-400 classes.
    """
    predictions = np.asarray(predictions)
    names = kinetics400_classes() if class_names is None else list(class_names)
    if predictions.ndim != 2 or predictions.shape[1] != len(names):
        raise ValueError(
            f"`predictions` must have shape (batch, {len(names)}). "
            f"Received: predictions.shape={predictions.shape}"
        )
    order = np.argsort(-predictions, axis=1)[:, :top]
    return [
        [(names[i], float(row[i])) for i in indices]
        for row, indices in zip(predictions, order, strict=True)
    ]
