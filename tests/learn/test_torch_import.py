import subprocess
import sys
import textwrap

import pytest

# torch is made unimportable in a child interpreter, as on a machine without the extra
SCRIPT = textwrap.dedent(
    """
    import sys

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith(("torch.", "torchao")):
                raise ImportError(f"No module named {name!r}")

    sys.meta_path.insert(0, NoTorch())
    import opsloop.learn
    from opsloop.learn import distill, quantize, distributed, mlp, robustness
    try:
        distill.distill(None, None, None)
    except ImportError as error:
        print(error)
    try:
        robustness.fgsm(None, [[0.0]], eps=0.1)
    except ImportError as error:
        print(error)
    """
)


def test_learn_imports_without_torch_and_says_how_to_get_it():
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'opsloop[torch]'" in done.stdout
    assert "white-box evasion needs PyTorch" in done.stdout


def test_import_torch_returns_the_module():
    torch = pytest.importorskip("torch")
    from opsloop.learn.torch_import import import_torch

    assert import_torch() is torch
