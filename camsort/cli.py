"""`camsort`: one command line, one library call per subcommand.

Each subcommand lives in ``camsort/commands/<name>.py`` and imports its heavy modules
(TensorFlow, LightGBM, moto) inside the command body, so ``camsort --help`` stays fast.
"""

from __future__ import annotations

import click


class CamsortGroup(click.Group):
    """Turns the project's typed errors into one line and exit code 1, for every subcommand.

    A `CamsortError` message already names the file or key and says what to do, so a traceback
    would only hide it; anything else is a bug and keeps its traceback.
    """

    def invoke(self, ctx: click.Context):
        from functions.errors import CamsortError

        try:
            return super().invoke(ctx)
        except CamsortError as error:
            raise click.ClickException(str(error)) from error


@click.group(cls=CamsortGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="camsort")
def main() -> None:
    """Classify camera frames uploaded to S3 with one ONNX model."""


def _register() -> None:
    # One line per command module; each module defines a click command named like the file.
    from camsort.commands import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register()
