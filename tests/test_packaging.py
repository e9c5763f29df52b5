"""The promises about the package itself: light imports, downward layers, runnable
docstring examples."""
import doctest
import importlib
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_graphc_needs_only_numpy_and_networkx():
    # make torch and triton unimportable, then import graphc and compile something
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['triton'] = None\n"
        "import numpy as np, graphc\n"
        "f = graphc.compile(lambda x: np.tanh(x) + 1.0)\n"
        "assert f(np.zeros(3))[0] == 1.0\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_layers_import_downward_only():
    tool = os.path.join(ROOT, "..", "shared", "tools", "check_layers.py")
    if not os.path.exists(tool):
        pytest.skip("../shared/tools/check_layers.py is not beside this checkout")
    out = subprocess.run([sys.executable, tool, ROOT], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("module", [
    "graphc", "graphc.api", "graphc.ir", "graphc.ir.text", "graphc.ir.types",
    "graphc.interpreter", "graphc.errors", "graphc.nn",
    "graphc.dump", "graphc.internal", "graphc.replay", "frontend.patching",
    "frontend.numpy_math", "frontend.impure",
])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{module} has no runnable example"
