"""What a kept-running demo prints at its end: the tour, one command a line, then how to stop."""

from __future__ import annotations

import io

from rich.console import Console

from infra.demo.tour import SHADOW_TOUR, STOP, TOUR, print_tour


def _printed(shadow: bool) -> list[str]:
    out = io.StringIO()
    # 40 columns: the commands must stay whole lines on a narrow terminal, to be copied.
    print_tour(
        Console(file=out, width=40), endpoint_url="http://127.0.0.1:5000", stage="local", shadow=shadow
    )
    lines = out.getvalue().splitlines()
    return [line.strip() for line in lines if line.startswith("  camsort ")]


def test_the_tour_is_printed_whole_and_in_order():
    assert _printed(shadow=False) == [*TOUR, STOP]
    assert _printed(shadow=True) == [*TOUR, *SHADOW_TOUR, STOP]
