"""What the README and the docs show is what lossreg does: inlined files equal their source,
sample terminal sessions replay to the same output, sample error comments match real errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lossreg
from lossreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INLINED = re.compile(r"<!-- inlined from (\S+);[^>]*-->\n```\w*\n(.*?)```", re.S)
SESSION = re.compile(r"```text\n(\$ .*?)```", re.S)


def test_no_snippet_includes_show_raw_on_a_code_host():
    for doc in DOCS:
        assert "--8<--" not in doc.read_text(), doc.name


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_inlined_files_equal_their_source(doc):
    for path, body in INLINED.findall(doc.read_text()):
        assert body == (ROOT / path).read_text(), f"{doc.name}: the copy of {path} is stale"


def sessions():
    for doc in (ROOT / "README.md", ROOT / "docs" / "cli.md"):
        for block in SESSION.findall(doc.read_text()):
            yield pytest.param(block, id=f"{doc.name}:{block.splitlines()[-3][:40]}")


@pytest.mark.parametrize("block", list(sessions()))
def test_sample_sessions_replay_to_the_same_output(block, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "1000")
    lines = block.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        command = lines[i]
        assert command.startswith("$ "), command
        j = i + 1
        while j < len(lines) and not lines[j].startswith("$ "):
            j += 1
        shown = lines[i + 1 : j]
        words = command[2:].split()
        if words[0] == "cat":
            (tmp_path / words[1]).write_text("\n".join(shown) + "\n")
        else:
            assert words[0] == "lossreg", command
            main(words[1:])
            captured = capsys.readouterr()
            assert (captured.out + captured.err).rstrip("\n").split("\n") == shown
        i = j


def test_readme_error_comments_are_the_real_errors():
    text = (ROOT / "README.md").read_text()
    samples = re.findall(r"^(lossreg\.\S.*?)\s+# (\w+Error): (.+)$", text, re.M)
    assert samples
    for code, kind, message in samples:
        with pytest.raises(lossreg.LossregError) as caught:
            eval(code, {"lossreg": lossreg})  # the README's own line, not user input
        assert (type(caught.value).__name__, str(caught.value)) == (kind, message)


def test_readme_new_plugin_name_is_free_of_the_shipped_example():
    (name,) = re.findall(r"^lossreg new-plugin (\S+) +#", (ROOT / "README.md").read_text(), re.M)
    example = (ROOT / "docs/examples/acme_losses/pyproject.toml").read_text()
    dist = re.search(r'^name = "(.+)"', example, re.M).group(1)
    packages = re.search(r"^packages = \[(.+)\]", example, re.M).group(1)
    assert name.lower() != dist.lower()
    assert name.replace("-", "_").lower() not in packages


def test_ci_runs_the_readme_test_command_verbatim_in_a_fresh_venv():
    readme = (ROOT / "README.md").read_text()
    (command,) = re.findall(r"^(pip install .*python -m pytest -q)$", readme, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()
    assert "-m venv" in ci and '. "$venv/bin/activate"' in ci
    assert "set -euo pipefail" in ci  # pytest's exit 5 (no test ran) fails CI too
