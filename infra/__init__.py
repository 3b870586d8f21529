"""Everything that runs camsort outside the function: the local AWS system, deploy, operator commands,
the demo and the soak (one subpackage each; see tests/unit/test_layers.py for who may import whom)."""

from pathlib import Path

# The checkout's top folder: serverless.yml, bench/results.json and deploy/ are found from it.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
