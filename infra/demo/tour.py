"""The tour: the commands a kept-running demo tells its user to try next, in one place.

`camsort demo --keep-running` prints them at the end; the README's tour shows the same lines;
``tests/e2e/test_tour.py`` runs each one, exactly as written, against a kept-running demo; and
``tests/unit/test_docs.py`` checks that the README's tour block is this list. So neither the
screen nor the README can send a user to a command that does not work.
"""

from __future__ import annotations

from rich.console import Console

START = "camsort demo --keep-running"
# Against the running demo, with no extra flags: each finds the demo through its state file.
TOUR = (
    "camsort results --camera cam-01 --last 10m",
    "camsort cameras",
    "camsort events --camera cam-01 --last 1h",
    "camsort audit --last 1h",
    "camsort dashboard",
)
# After `camsort demo --shadow --keep-running`: the candidate scored beside the live model.
# The demo is far below the agreement gate's 500 frames, hence --force (recorded as forced).
SHADOW_TOUR = (
    "camsort compare --since 1h",
    "camsort promote --force --reason demo",
    "camsort rollback --reason demo",
)
STOP = "camsort demo --stop"


def tour_commands(*, shadow: bool) -> list[str]:
    """What a kept-running demo prints, in order: the tour, the shadow steps, then how to stop."""
    return [*TOUR, *(SHADOW_TOUR if shadow else ()), STOP]


INTRO = "Try these, as printed (no options needed):"


def print_tour(console: Console, *, endpoint_url: str, stage: str, shadow: bool) -> None:
    console.print(f"\nThe demo keeps running: stage {stage}, {endpoint_url}.")
    console.print(INTRO)
    for command in tour_commands(shadow=shadow):
        # Plain lines (no markup, no wrapping): what is printed is what a user copies.
        console.print(f"  {command}", markup=False, highlight=False, soft_wrap=True)
