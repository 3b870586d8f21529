"""The subcommands of `camsort`. Add a command: create a module here, list it below."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []

from camsort.commands.package import package  # noqa: E402

COMMANDS.append(package)

from camsort.commands.demo import demo  # noqa: E402
from camsort.commands.results import results, stats  # noqa: E402

COMMANDS.extend([demo, results, stats])

from camsort.commands.train import train  # noqa: E402

COMMANDS.append(train)

from camsort.commands.bench import bench  # noqa: E402

COMMANDS.append(bench)

from camsort.commands.synth import synth  # noqa: E402

COMMANDS.append(synth)

from camsort.commands.upload_model import upload_model  # noqa: E402

COMMANDS.append(upload_model)

from camsort.commands.camera import camera  # noqa: E402

COMMANDS.append(camera)

from camsort.commands.backfill import backfill, compact  # noqa: E402

COMMANDS.extend([backfill, compact])

from camsort.commands.review import review  # noqa: E402

COMMANDS.append(review)

from camsort.commands.compare import compare  # noqa: E402

COMMANDS.append(compare)

from camsort.commands.candidate import candidate  # noqa: E402
from camsort.commands.promote import promote  # noqa: E402
from camsort.commands.rollback import rollback  # noqa: E402

COMMANDS.extend([candidate, promote, rollback])

from camsort.commands.classify import classify  # noqa: E402
from camsort.commands.serve import serve  # noqa: E402

COMMANDS.extend([classify, serve])

from camsort.commands.audit import audit  # noqa: E402

COMMANDS.append(audit)

from camsort.commands.soak import soak  # noqa: E402

COMMANDS.append(soak)

from camsort.commands.cameras import cameras, events  # noqa: E402

COMMANDS.extend([cameras, events])

from camsort.commands.dashboard import dashboard  # noqa: E402

COMMANDS.append(dashboard)

from camsort.commands.labelling.crops import crops  # noqa: E402
from camsort.commands.labelling.label import label  # noqa: E402
from camsort.commands.labelling.sample import sample  # noqa: E402

COMMANDS.extend([sample, label, crops])
