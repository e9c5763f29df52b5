"""The promises about the package itself: one installed top-level package, light
imports, downward layers, runnable docstring examples."""
import doctest
import importlib
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

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
    "graphc.dump", "graphc.internal", "graphc.replay", "graphc.frontend.patching",
    "graphc.frontend.numpy_math", "graphc.frontend.impure",
])
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    assert result.attempted > 0, f"{module} has no runnable example"


def test_the_wheel_installs_one_top_level_package(tmp_path):
    # a plain (non-editable) install: the wheel's one top-level package is graphc, its
    # folders frontend/, passes/, backends/ become graphc.frontend, ... and `import
    # passes` finds nothing (a user's module of that name is not shadowed)
    # built from a copy: setuptools writes build/ beside pyproject.toml, and the layering
    # test may be walking the checkout at the same time
    src = tmp_path / "src"
    for part in ("graphc", "frontend", "passes", "backends"):
        shutil.copytree(os.path.join(ROOT, part), src / part,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, part), src / part)
    dist = tmp_path / "dist"
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                          "--no-build-isolation", "-w", str(dist), str(src)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    (wheel,) = dist.glob("graphc-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"graphc"}
    assert "graphc/backends/numpy/windows.c" in names and "graphc/fastcall.c" in names
    # installed into a folder of its own, run from elsewhere, with this environment's
    # numpy and networkx (not its editable graphc) beside it
    target = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                          "--target", str(target), str(wheel)], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    code = textwrap.dedent("""
        import importlib.util, sys
        sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
        import numpy as np, networkx, graphc
        assert graphc.__file__.startswith(sys.argv[1]), graphc.__file__
        import graphc.frontend.trace, graphc.passes.fusion, graphc.backends.numpy
        for name in ("frontend", "passes", "backends"):
            assert importlib.util.find_spec(name) is None, name
        f = graphc.compile(lambda x: np.tanh(x) * 2.0 + 1.0)
        x = np.linspace(-2, 2, 50000).astype(np.float32)
        # tanh within 4 ulp (libmvec's bound), doubled, plus the add's half ulp: < 1e-6
        assert np.allclose(f(x), np.tanh(x) * 2.0 + 1.0, rtol=0, atol=1e-6)
        print("ok")
    """)
    env = {**os.environ, "PYTHONPATH": str(target), "GRAPHC_SMALL_GROUP": "0"}
    out = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True,
                         text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "ok"
