"""The subcommands of `camsort`. Add a command: create a module here, list it below."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
