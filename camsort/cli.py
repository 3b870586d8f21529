"""`camsort`: one command line, one library call per subcommand.

Each subcommand lives in ``camsort/commands/<name>.py`` and imports its heavy modules
(TensorFlow, LightGBM, moto) inside the command body, so ``camsort --help`` stays fast.
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="camsort")
def main() -> None:
    """Classify camera frames uploaded to S3 with one ONNX model."""


def _register() -> None:
    # One line per command module; each module defines a click command named like the file.
    from camsort.commands import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register()
