"""Deepfake forensics core: decoding, faces, detector, analysis, explanations, charts, cases.

Nothing in this package imports Streamlit except `core.ui`, the app's glue package.
"""
import functools
import subprocess
from pathlib import Path

__version__ = "0.1.0"
REPO_DIR = Path(__file__).resolve().parent.parent


@functools.cache
def code_commit() -> str:
    """`git describe` of the code running ("-dirty" when it has uncommitted changes), or "unknown"
    where there is no git (an installed copy): the release number alone does not tell builds apart."""
    try:
        out = subprocess.run(["git", "-C", str(REPO_DIR), "describe", "--always", "--dirty", "--abbrev=7"],
                             capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def code_version() -> str:
    """What a result records as the code that made it: "0.1.0+64eefad"."""
    return f"{__version__}+{code_commit()}"
