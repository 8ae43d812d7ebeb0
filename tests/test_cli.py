import argparse
import importlib.metadata
import os
import pty
import re
import subprocess
import sys

import numpy as np
import pytest

import keras_mvf
from keras_mvf.cli import build_parser, main


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("mvfnet50", "mvfnet101", "mvfnet_mobilenetv2", "c2d50", "tsm50"):
        assert name in out


def test_flops_prints_the_paper_figure(capsys):
    assert main(["flops", "--model", "mvfnet50", "--frames", "8"]) == 0
    assert "32.909 GFLOPs, 24.34M parameters" in capsys.readouterr().out


def test_bad_model_name_is_an_error_not_a_traceback(capsys):
    assert main(["flops", "--model", "resnet9000"]) == 2
    assert "Unknown model 'resnet9000'" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_runs():
    result = subprocess.run(
        [sys.executable, "-m", "keras_mvf", "flops", "--model", "c2d50", "--frames", "4"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "c2d50: 4 frames x 224x224: 16.444 GFLOPs" in result.stdout


def test_train_names_the_strategies_it_knows(tmp_path, capsys):
    argv = ["train", "--train", str(tmp_path / "none.jsonl"), "--strategy", "bogus"]
    assert main(argv) == 2
    assert "'default', 'mirrored', 'multi_worker', 'tpu'" in capsys.readouterr().err


# The command line's manners: instant help, quiet logs, one-line errors, plain pipes.

HEAVY_MODULES = ("tensorflow", "keras", "numpy", "cv2", "torch", "jax")


def _quiet_env():
    """The environment with no TensorFlow log setting of the user's: `main` picks its own."""
    return {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}


def _keras_mvf(*argv, **kwargs):
    """Runs `python -m keras_mvf ARGV` with stdout and stderr captured (pipes, not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "keras_mvf", *argv],
        capture_output=True,
        text=True,
        env=_quiet_env(),
        check=False,
        **kwargs,
    )


def _commands(parser):
    """`(prog, parser)` of every command and subcommand under `parser`, `parser` first."""
    yield parser.prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                yield from _commands(subparser)


COMMANDS = dict(_commands(build_parser()))


@pytest.fixture(scope="module")
def listing(tmp_path_factory):
    """A list file of two small real videos (40 frames of 48x64, 25 fps)."""
    from keras_mvf.data import write_video

    root = tmp_path_factory.mktemp("videos")
    frames = np.random.default_rng(0).integers(0, 256, (40, 48, 64, 3), dtype=np.uint8)
    paths = [write_video(str(root / f"clip{i}.avi"), frames, fps=25) for i in range(2)]
    listing = root / "list.txt"
    listing.write_text("".join(f"{path} {i}\n" for i, path in enumerate(paths)), encoding="utf-8")
    return listing


def _index_argv(listing, output):
    return [
        *("data", "index", "--format", "list", "--annotations", str(listing)),
        *("--root", str(listing.parent), "--output", str(output), "--workers", "1"),
    ]


def test_help_and_version_import_no_heavy_module():
    script = (
        "import sys\n"
        "from keras_mvf.cli import COMMAND_MODULES, main\n"
        "for argv in eval(sys.argv[1]):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, (argv, exit.code)\n"
        "    else:\n"
        "        raise AssertionError(f'{argv} did not exit')\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
    )
    argvs = [["--version"]] + [[*prog.split()[1:], "--help"] for prog in COMMANDS]
    result = subprocess.run(
        [sys.executable, "-c", script, repr(argvs)], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]", result.stdout[-2000:]
    assert "usage: keras-mvf data pack" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    "user_setting, pooled", [(None, True), ("false", False)], ids=["default", "user's"]
)
def test_commands_run_tensorflow_on_its_pooled_cpu_allocator(user_setting, pooled):
    """TensorFlow keeps statistics of CPU memory only with a pooled allocator.

    oneDNN's allocator pools too, and TensorFlow turns oneDNN on by default on CPUs with VNNI,
    so the test turns it off to see the variable's effect.
    """
    script = (
        "from keras_mvf.cli import main\n"
        "main(['models'])\n"
        "from keras_mvf.benchmark.workers import tensorflow_pools_cpu_memory\n"
        "print('pooled' if tensorflow_pools_cpu_memory() else 'not pooled')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    env["TF_ENABLE_ONEDNN_OPTS"] = "0"
    if user_setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = user_setting
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.splitlines()[-1] == ("pooled" if pooled else "not pooled")


def test_version_is_the_installed_distributions():
    result = _keras_mvf("--version", timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"keras-mvf {importlib.metadata.version('keras-mvf')}\n"
    assert keras_mvf.__version__ == importlib.metadata.version("keras-mvf")


@pytest.mark.parametrize("prog", sorted(COMMANDS))
def test_every_flag_has_help(prog):
    missing = [
        "/".join(action.option_strings)
        for action in COMMANDS[prog]._actions
        if action.option_strings
        and not isinstance(action, (argparse._HelpAction, argparse._VersionAction))
        and not action.help
    ]
    assert not missing, f"`{prog}` flags without help: {missing}"


def test_help_shows_defaults():
    flops = COMMANDS["keras-mvf flops"].format_help()
    assert "number of classes (default: 400)" in flops
    assert "(default: False)" not in COMMANDS["keras-mvf predict"].format_help()


def test_light_commands_import_no_tensorflow(listing):
    script = (
        "import sys\n"
        "from keras_mvf.cli import main\n"
        "assert main(['weights']) == 0\n"
        "assert main(['data', 'probe', sys.argv[1]]) == 0\n"
        "print([m for m in ('tensorflow', 'keras') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(listing.parent / "clip0.avi")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.splitlines()[-1] == "[]"
    assert "40 frames, 25 fps, 64x48" in result.stdout


USER_ERRORS = {
    "missing model": (
        ["predict", "clip.mp4", "--model", "missing.keras"],
        "keras-mvf predict: error: Model not found: missing.keras",
    ),
    "unknown model": (
        ["flops", "--model", "resnet9000"],
        "keras-mvf flops: error: Unknown model 'resnet9000'",
    ),
    "missing manifest": (
        ["data", "pack", "--manifest", "missing.jsonl", "--output-dir", "shards"],
        "keras-mvf data pack: error: ",
    ),
}


@pytest.fixture(scope="module")
def user_errors(tmp_path_factory):
    """`{case: (exit status, stderr)}` of `USER_ERRORS`, run as processes side by side."""
    cwd = tmp_path_factory.mktemp("errors")
    processes = {
        case: subprocess.Popen(
            [sys.executable, "-m", "keras_mvf", *argv],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=_quiet_env(),
            cwd=cwd,
        )
        for case, (argv, _) in USER_ERRORS.items()
    }
    stderrs = {case: process.communicate(timeout=300)[1] for case, process in processes.items()}
    return {case: (processes[case].returncode, stderrs[case]) for case in processes}


@pytest.mark.slow
@pytest.mark.parametrize("case", USER_ERRORS)
def test_user_error_is_one_line_and_status_2(user_errors, case):
    status, stderr = user_errors[case]
    assert status == 2
    assert len(stderr.splitlines()) == 1, stderr
    assert stderr.startswith(USER_ERRORS[case][1]), stderr


@pytest.mark.slow
def test_progress_through_a_pipe_is_plain_text(tmp_path, listing):
    result = _keras_mvf(*_index_argv(listing, tmp_path / "manifest.jsonl"), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # nor TensorFlow's log lines
    assert "Indexed 2 of 2 videos" in result.stdout
    assert re.search(r"^2/2 - \d+s - ", result.stdout, re.MULTILINE), result.stdout
    for control in ("\x1b", "\b", "\r"):
        assert control not in result.stdout


@pytest.mark.slow
def test_progress_on_a_terminal_is_a_bar(tmp_path, listing):
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "keras_mvf", *_index_argv(listing, tmp_path / "manifest.jsonl")],
        stdout=terminal,
        stderr=subprocess.PIPE,
        env=_quiet_env(),
    ) as process:
        os.close(terminal)
        output = b""
        while chunk := _read(controller):
            output += chunk
        assert process.wait(timeout=300) == 0, process.stderr.read()
    os.close(controller)
    assert b"Indexed 2 of 2 videos" in output
    assert b"\x1b[1m2/2\x1b[0m" in output  # Keras' bar, redrawn in place


def _read(fd):
    """The next output of a pseudo-terminal; b"" once its other end is closed."""
    try:
        return os.read(fd, 4096)
    except OSError:  # EIO: nothing writes to the terminal any more
        return b""
