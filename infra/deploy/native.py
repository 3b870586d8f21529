"""What the installed wheels and shared libraries of a Lambda package were built for."""

from __future__ import annotations

from pathlib import Path


def wheel_tags(root: Path) -> dict[str, list[str]]:
    """``{dist-info name: [Tag: lines]}`` from every installed wheel's WHEEL file."""
    tags = {}
    for wheel_file in sorted(root.glob("*.dist-info/WHEEL")):
        lines = wheel_file.read_text().splitlines()
        tags[wheel_file.parent.name] = [
            line.split(":", 1)[1].strip() for line in lines if line.startswith("Tag:")
        ]
    return tags


def elf_machine(path: Path) -> int | None:
    """The ELF ``e_machine`` of ``path`` (183 = aarch64, 62 = x86_64), None if not an ELF file."""
    with path.open("rb") as handle:
        header = handle.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    byteorder = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def foreign_libraries(root: Path, expected_machine: int) -> list[str]:
    """Shared libraries under ``root`` built for another CPU than ``expected_machine`` (ELF e_machine)."""
    wrong = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and (path.suffix == ".so" or ".so." in path.name):
            code = elf_machine(path)
            if code is not None and code != expected_machine:
                wrong.append(path.relative_to(root).as_posix())
    return wrong
