"""`keras_mvf.weights` reads, downloads and converts files; it never imports the models."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).parents[1] / "keras_mvf"


def _imports(path):
    """Every module an `import` or `from ... import` in the file names (with its names)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:  # relative: resolved against the file's package
                parts = path.relative_to(PACKAGE.parent).with_suffix("").parts[: -node.level]
                module = ".".join([*parts, module] if module else parts)
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_weights_never_imports_models():
    files = sorted((PACKAGE / "weights").glob("*.py"))
    assert len(files) >= 7
    offending = {
        f"{path.name}: {name}"
        for path in files
        for name in _imports(path)
        if name == "keras_mvf.models" or name.startswith("keras_mvf.models.")
    }
    assert not offending


def test_the_check_sees_imports_inside_functions():
    path = PACKAGE / "models" / "resnet.py"  # imports keras_mvf.models.pretrained in a function
    assert "keras_mvf.models.pretrained" in set(_imports(path))
