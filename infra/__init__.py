"""Everything that runs camsort outside the function: the local AWS system, deploy, operator commands,
the demo and the soak (one subpackage each; see tests/unit/test_layers.py for who may import whom)."""

import os
from collections.abc import Mapping
from pathlib import Path

# The checkout's top folder: serverless.yml, bench/results.json and deploy/ are found from it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def checkout_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with this checkout first on PYTHONPATH: a
    child process (``python -m infra...``) imports this tree's code, whatever the venv's
    editable install points at."""
    environment = dict(os.environ if base is None else base)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, (str(PROJECT_ROOT), environment.get("PYTHONPATH")))
    )
    return environment
