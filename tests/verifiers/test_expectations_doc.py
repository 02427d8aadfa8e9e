"""The README documents the expectations file with the bundled file itself: the copy must not drift."""

from __future__ import annotations

import re
from pathlib import Path

from verifiers.expectations import DEFAULT_EXPECTATIONS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_shows_the_bundled_expectations_file_as_it_is() -> None:
    section = README.read_text(encoding="utf-8").split("## Expectations file", 1)[1].split("\n## ", 1)[0]
    (shown,) = re.findall(r"```toml\n(.*?)```", section, flags=re.DOTALL)
    assert shown == DEFAULT_EXPECTATIONS.read_text(encoding="utf-8")
