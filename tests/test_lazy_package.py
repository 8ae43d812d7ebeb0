"""`keras_mvf` and its packages import their names on first use (PEP 562), in fresh processes."""

import subprocess
import sys

import pytest

PACKAGES = ("keras_mvf", "keras_mvf.data", "keras_mvf.export", "keras_mvf.models")
PACKAGES += ("keras_mvf.inference", "keras_mvf.training", "keras_mvf.weights")
HEAVY = {"tensorflow", "keras", "numpy", "cv2", "torch", "jax"}


def run(script):
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_importing_the_packages_imports_no_heavy_module():
    stdout = run(
        "import importlib, sys\n"
        f"for package in {PACKAGES!r}:\n"
        "    importlib.import_module(package)\n"
        f"print(sorted({HEAVY!r} & set(sys.modules)))\n"
    )
    assert stdout.splitlines()[-1] == "[]"


@pytest.mark.slow
def test_every_public_name_resolves_and_is_listed():
    stdout = run(
        "import importlib, types\n"
        f"for package in {PACKAGES!r}:\n"
        "    module = importlib.import_module(package)\n"
        "    assert module.__all__ and set(module.__all__) <= set(dir(module)), package\n"
        "    for name in module.__all__:\n"
        "        value = getattr(module, name)\n"
        "        assert isinstance(value, types.ModuleType) == (name in ('layers', 'models',"
        " 'utils')), (package, name)\n"
        "    namespace = {}\n"
        "    exec(f'from {package} import *', namespace)\n"
        "    assert set(module.__all__) <= set(namespace), package\n"
        "print('ok')\n"
    )
    assert stdout.splitlines()[-1] == "ok"


def test_unknown_names_are_attribute_errors():
    run(
        "import keras_mvf, keras_mvf.models\n"
        "for module in (keras_mvf, keras_mvf.models):\n"
        "    try:\n"
        "        module.no_such_name\n"
        "    except AttributeError as error:\n"
        "        assert 'no_such_name' in str(error)\n"
        "    else:\n"
        "        raise AssertionError(module)\n"
    )


def test_subpackages_are_attributes_as_if_imported():
    stdout = run("import keras_mvf\nprint(keras_mvf.data.load_manifest.__module__)\n")
    assert stdout.splitlines()[-1] == "keras_mvf.data.annotations"


@pytest.mark.slow
def test_training_train_stays_the_function_after_its_module_is_imported():
    stdout = run(
        "import keras_mvf.training\n"
        "from keras_mvf.training.train import RECIPE_KEYS\n"
        "from keras_mvf.training import train\n"
        "print(callable(train), keras_mvf.training.train is train, train.__module__)\n"
    )
    assert stdout.splitlines()[-1] == "True True keras_mvf.training.train"
