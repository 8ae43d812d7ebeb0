import subprocess
import sys

from keras_mvf.cli import main


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
