"""`camsort`: one command line, one library call per subcommand.

Each subcommand lives in ``camsort/commands/<name>.py`` and imports its heavy modules
(TensorFlow, LightGBM, moto) inside the command body, so ``camsort --help`` stays fast.
"""

from __future__ import annotations

import click

from camsort.failures import explain


class CamsortGroup(click.Group):
    """Turns expected failures into one line and exit code 1, for every subcommand.

    Expected: the project's typed errors (their message names the file, key or resource and
    says what to do) and AWS failures no command can help (no server, refused credentials).
    Anything else is a bug and keeps its traceback; ``camsort --debug ...`` shows it for all.
    """

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Exception as error:
            sentence = None if ctx.params.get("debug") else explain(error)
            if sentence is None:
                raise
            raise click.ClickException(sentence) from error


@click.group(cls=CamsortGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="camsort")
@click.option("--debug", is_flag=True, help="Show the full traceback of any failure.")
def main(debug: bool) -> None:
    """Classify camera frames uploaded to S3 with one ONNX model."""


def _register() -> None:
    # One line per command module; each module defines a click command named like the file.
    from camsort.commands import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_register()

if __name__ == "__main__":
    main()
