"""Video data: decoding, annotation indexes, sampling, transforms and `tf.data` input."""

from keras_mvf.data.annotations import (
    NO_LABEL,
    Annotation,
    Manifest,
    VideoEntry,
    index_annotations,
    load_manifest,
    parse_hmdb51,
    parse_kinetics_csv,
    parse_list_file,
    parse_something_json,
    parse_ucf101,
    read_class_names,
    write_manifest,
)
from keras_mvf.data.dataset import SkippedVideos, SkippedVideosCallback, build_dataset
from keras_mvf.data.sampling import dense_indices, sample_indices, uniform_indices
from keras_mvf.data.tfrecord import pack_tfrecords
from keras_mvf.data.video import (
    VideoError,
    VideoInfo,
    probe,
    read_all_frames,
    read_frames,
    read_image_frames,
    write_video,
)

__all__ = [
    "NO_LABEL",
    "Annotation",
    "Manifest",
    "SkippedVideos",
    "SkippedVideosCallback",
    "VideoEntry",
    "VideoError",
    "VideoInfo",
    "build_dataset",
    "dense_indices",
    "index_annotations",
    "load_manifest",
    "pack_tfrecords",
    "parse_hmdb51",
    "parse_kinetics_csv",
    "parse_list_file",
    "parse_something_json",
    "parse_ucf101",
    "probe",
    "read_all_frames",
    "read_class_names",
    "read_frames",
    "read_image_frames",
    "sample_indices",
    "uniform_indices",
    "write_manifest",
    "write_video",
]
