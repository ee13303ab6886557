"""Shared by the fixture and benchmark scripts: run the calling script again
inside a virtual environment outside the repository that has the packages
it needs, creating the environment and installing them with pip first."""
import os
import subprocess
import sys


def rerun_in_venv(packages, env_var="GRAFT_ONNX_VENV", default="~/.cache/graft-onnx-venv"):
    """Re-executes the current script with the Python of the environment
    named by $env_var (or `default`). Raises the import error again when
    already running there."""
    venv = os.environ.get(env_var, os.path.expanduser(default))
    py = os.path.join(venv, "bin", "python")
    if os.path.abspath(sys.executable) == os.path.abspath(py):
        raise
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([py, "-m", "pip", "install", "-q", *packages])
    os.execv(py, [py] + sys.argv)
