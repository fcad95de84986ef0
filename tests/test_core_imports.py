"""`core` works without Streamlit: every module but the glue package `core.ui` imports with it blocked."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BLOCK_AND_IMPORT = r"""
import importlib, pkgutil, sys

class BlockStreamlit:
    def find_spec(self, name, path=None, target=None):
        if name == "streamlit" or name.startswith("streamlit."):
            raise ImportError(f"streamlit is blocked in this test (imported: {name})")
        return None

sys.meta_path.insert(0, BlockStreamlit())
import core
GLUE = "core.ui"
names = sorted(
    m.name for m in pkgutil.walk_packages(core.__path__, "core.")
    if m.name != GLUE and not m.name.startswith(GLUE + ".")
    and not m.name.endswith(".__main__")  # __main__ modules are CLIs, run with -m
)
for name in names:
    importlib.import_module(name)
assert "streamlit" not in sys.modules
print(" ".join(names))
"""


def test_core_imports_without_streamlit():
    done = subprocess.run([sys.executable, "-c", BLOCK_AND_IMPORT], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    imported = done.stdout.split()
    assert {"core.analyze", "core.media", "core.faces", "core.model", "core.explain", "core.charts"} <= set(imported)


def test_the_blocker_really_blocks():
    done = subprocess.run([sys.executable, "-c", BLOCK_AND_IMPORT.replace('"core.ui"', '"core.nothing"')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "streamlit is blocked" in done.stderr
