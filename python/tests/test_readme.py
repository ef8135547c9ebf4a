"""The README's "From Python" snippet runs as printed."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_snippet_runs(capsys):
    text = README.read_text()
    section = text[text.index("## From Python"):]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(snippet.strip().splitlines()) <= 15
    exec(compile(snippet, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("3 ")  # three reports released
    assert "accountant" in out and "round" in out.lower()
