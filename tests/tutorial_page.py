"""The code of docs/tutorial.md by section, for ``test_tutorial.py`` and ``test_tutorial_lm.py``."""

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
LM_SECTION = "6. A language model"
"""The title of the section with the transformer (the slow part, tested on its own)."""


def page_blocks(select) -> str:
    """The python blocks of the page's sections for which ``select(title)`` holds (the part
    before the first section, the imports, always), joined in order."""
    parts = re.split(r"\n## ", PAGE.read_text())
    chosen = [parts[0]] + [p for p in parts[1:] if select(p.splitlines()[0])]
    return "\n".join(b for p in chosen for b in re.findall(r"```python\n(.*?)```", p, re.S))
