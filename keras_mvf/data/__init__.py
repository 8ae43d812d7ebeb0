"""Video data: decoding, annotation indexes, sampling, transforms, `tf.data` input, TFRecords."""

from keras_mvf._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        ".annotations": (
            "NO_LABEL",
            "Annotation",
            "Manifest",
            "VideoEntry",
            "index_annotations",
            "load_manifest",
            "parse_hmdb51",
            "parse_kinetics_csv",
            "parse_list_file",
            "parse_something_json",
            "parse_ucf101",
            "read_class_names",
            "write_manifest",
        ),
        ".dataset": ("SkippedVideos", "SkippedVideosCallback", "build_dataset", "load_source"),
        ".sampling": ("dense_indices", "sample_indices", "uniform_indices"),
        ".service": ("start_dispatcher", "start_worker"),
        ".tfrecord": ("pack_tfrecords", "read_index", "tfrecord_files"),
        ".video": (
            "VideoError",
            "VideoInfo",
            "probe",
            "read_all_frames",
            "read_frames",
            "read_image_frames",
            "write_video",
        ),
    },
)
