"""`keras-mvf data index`, `data pack`, `data probe` and `data serve`."""


def register(subparsers):
    data = subparsers.add_parser("data", help="video datasets: index, pack, probe, serve")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    index = commands.add_parser(
        "index", help="build a manifest from annotation files, probing every video"
    )
    index.add_argument(
        "--format",
        required=True,
        choices=("list", "kinetics", "ssv2", "ucf101", "hmdb51"),
        help="annotation format",
    )
    index.add_argument(
        "--annotations",
        required=True,
        help="list file, Kinetics CSV, Something-Something JSON, UCF-101 train/testlist, "
        "or the folder of HMDB-51 split files",
    )
    index.add_argument(
        "--classes",
        help="class list: names one per line (list, kinetics), the labels JSON (ssv2), "
        "classInd.txt (ucf101)",
    )
    index.add_argument("--root", required=True, help="folder the video paths are relative to")
    index.add_argument("--output", required=True, help="manifest file to write (JSON lines)")
    index.add_argument(
        "--problems",
        help="where to list missing/unreadable videos (default: OUTPUT with .problems.txt)",
    )
    index.add_argument("--split", type=int, default=1, help="HMDB-51 split number")
    index.add_argument(
        "--subset", choices=("train", "test"), default="train", help="HMDB-51 subset"
    )
    index.add_argument("--template", default="img_{:05d}.jpg", help="frame folder file pattern")
    index.add_argument("--start-index", type=int, default=1, help="number of the first frame")
    index.add_argument(
        "--exact-frames",
        action="store_true",
        help="count frames by decoding (for containers with estimated counts)",
    )
    index.add_argument("--workers", type=int, default=8, help="probing threads")
    index.set_defaults(run=run_index)

    pack = commands.add_parser(
        "pack", help="write a manifest's videos as sharded TFRecords of JPEG frames"
    )
    pack.add_argument("--manifest", required=True, help="manifest from `keras-mvf data index`")
    pack.add_argument("--output-dir", required=True, help="folder or URI for the shards")
    pack.add_argument(
        "--shards", type=int, default=8, help="number of shard files (of all hosts together)"
    )
    pack.add_argument("--prefix", default="clips", help="shard file name prefix")
    pack.add_argument(
        "--short-side",
        type=int,
        default=256,
        help="resize frames to this short side (0 keeps the size)",
    )
    pack.add_argument("--quality", type=int, default=90, help="JPEG quality")
    pack.add_argument("--workers", type=int, default=4, help="decoding threads")
    pack.add_argument(
        "--num-hosts", type=int, default=1, help="hosts packing the set together, each its share"
    )
    pack.add_argument(
        "--host-index", type=int, default=0, help="this host's number, 0 to NUM_HOSTS - 1"
    )
    pack.set_defaults(run=run_pack)

    probe = commands.add_parser("probe", help="frame count, fps and size of videos")
    probe.add_argument("videos", nargs="+", help="video files")
    probe.add_argument("--exact-frames", action="store_true", help="count frames by decoding")
    probe.set_defaults(run=run_probe, tensorflow=False)

    serve = commands.add_parser(
        "serve",
        help="run a tf.data service dispatcher or worker, which decodes packed clips for trainers",
    )
    role = serve.add_mutually_exclusive_group(required=True)
    role.add_argument("--dispatcher", type=int, metavar="PORT", help="start a dispatcher on PORT")
    role.add_argument(
        "--worker",
        metavar="DISPATCHER_ADDRESS",
        help="start a worker for the dispatcher at grpc://HOST:PORT",
    )
    serve.add_argument("--port", type=int, default=0, help="worker port (default: a free one)")
    serve.add_argument(
        "--host",
        default=None,
        help="name trainers reach this worker by (default: this machine's host name)",
    )
    serve.set_defaults(run=run_serve)


def _parse(args):
    from keras_mvf.data import annotations as parsers

    if args.format == "list":
        classes = parsers.read_class_names(args.classes) if args.classes else None
        return parsers.parse_list_file(args.annotations, classes)
    if args.format == "kinetics":
        classes = parsers.read_class_names(args.classes) if args.classes else None
        return parsers.parse_kinetics_csv(args.annotations, classes)
    if args.format == "hmdb51":
        return parsers.parse_hmdb51(args.annotations, args.split, args.subset)
    if not args.classes:
        raise ValueError(f"--format {args.format} needs --classes.")
    if args.format == "ssv2":
        return parsers.parse_something_json(args.annotations, args.classes)
    return parsers.parse_ucf101(args.annotations, args.classes)


def _progress_bar(total):
    import keras

    from keras_mvf.utils.progress import progress_verbosity

    return keras.utils.Progbar(total, verbose=progress_verbosity(), unit_name="video").update


def run_index(args):
    from keras_mvf.data import index_annotations, write_manifest
    from keras_mvf.utils import files

    annotations, classes = _parse(args)
    entries, problems = index_annotations(
        annotations,
        args.root,
        args.template,
        args.start_index,
        args.exact_frames,
        args.workers,
        _progress_bar(len(annotations)) if annotations else None,
    )
    write_manifest(args.output, entries, classes, args.root)
    problems_path = args.problems or f"{args.output}.problems.txt"
    with files.open_file(problems_path, "w") as file:
        file.write("".join(f"{line}\n" for line in problems))
    print(
        f"Indexed {len(entries)} of {len(annotations)} videos, {len(classes)} classes: "
        f"{args.output}"
    )
    if problems:
        print(f"{len(problems)} missing or unreadable videos are listed in {problems_path}")
    return 0


def run_pack(args):
    from keras_mvf.data import load_manifest, pack_tfrecords
    from keras_mvf.data.tfrecord import host_videos

    manifest = load_manifest(args.manifest)
    share = len(host_videos(manifest, args.shards, args.num_hosts, args.host_index))
    paths, problems = pack_tfrecords(
        manifest,
        args.output_dir,
        args.shards,
        args.prefix,
        args.short_side or None,
        args.quality,
        args.workers,
        _progress_bar(share) if share else None,
        args.num_hosts,
        args.host_index,
    )
    host = f" (host {args.host_index} of {args.num_hosts})" if args.num_hosts > 1 else ""
    print(
        f"Packed {share - len(problems)} videos into {len(paths)} shards{host} in {args.output_dir}"
    )
    for line in problems:
        print(f"skipped (cannot decode): {line}")
    return 0


def run_probe(args):
    from keras_mvf.data import probe

    status = 0
    for path in args.videos:
        try:
            info = probe(path, exact=args.exact_frames)
        except OSError as error:
            print(f"{path}: error: {error}")
            status = 1
            continue
        print(f"{path}: {info.num_frames} frames, {info.fps:g} fps, {info.width}x{info.height}")
    return status


def run_serve(args):
    from keras_mvf.data.service import start_dispatcher, start_worker

    if args.dispatcher is not None:
        server = start_dispatcher(args.dispatcher)
        print(f"tf.data service dispatcher at {server.target}", flush=True)
    else:
        server = start_worker(args.worker, args.port, args.host)
        print(f"tf.data service worker for {args.worker}", flush=True)
    server.join()
    return 0
