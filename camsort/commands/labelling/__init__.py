"""The labelling commands: `camsort sample` (which frames) and `camsort label` (the page)."""
