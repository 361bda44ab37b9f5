"""reStructuredText documents: titles become sections, markup becomes text, code stays out of
prose, bad markup still ingests, and search finds a passage under its section."""

from __future__ import annotations

from pathlib import Path

from tools.discover import classify
from tools.models import ParsedDocument
from tools.parsing import parse_bytes

GUIDE = """\
.. _guide-top:

=============
 Widget Guide
=============

The widget guide covers setup and use.

Installation
============

Install the package with pip::

    pip install widget
    widget --version

Then run the aardvark check.

Configuration
-------------

Set the options in ``widget.toml``; see :class:`~widget.config.Settings` and the
`upstream docs <https://example.org/docs>`_ for details [1]_.

Usage
=====

Call |tool| from Python.

.. |tool| replace:: the widget runner

.. [1] The footnote text.
"""


def parse_rst(text: str, name: str = "docs/guide.rst") -> ParsedDocument:
    return parse_bytes(text.encode("utf-8"), suffix=".rst", source=name, max_bytes=2**24)


def sections(doc: ParsedDocument) -> dict[str, tuple[str, ...]]:
    return {b.text: b.section for b in doc.blocks}


def assert_offsets(doc: ParsedDocument) -> None:
    assert doc.blocks
    for block in doc.blocks:
        assert doc.text[block.start : block.end] == block.text == block.text.strip()


def test_rst_is_a_document_type() -> None:
    assert classify(Path("docs/index.rst")) == "document"
    assert classify(Path("docs/INDEX.RST")) == "document"


def test_titles_become_sections_in_order_of_first_appearance() -> None:
    doc = parse_rst(GUIDE)
    assert doc.title == "Widget Guide"
    found = sections(doc)
    assert found["The widget guide covers setup and use."] == ("Widget Guide",)
    assert found["Install the package with pip:"] == ("Widget Guide", "Installation")
    assert found["Then run the aardvark check."] == ("Widget Guide", "Installation")
    config = next(text for text in found if text.startswith("Set the options"))
    assert found[config] == ("Widget Guide", "Installation", "Configuration")
    assert found["Call the widget runner from Python."] == ("Widget Guide", "Usage")  # '=' again: level 2
    assert_offsets(doc)


def test_a_document_without_a_title_uses_its_file_name() -> None:
    doc = parse_rst("Just a paragraph of text.\n", name="docs/notes.rst")
    assert doc.title == "notes"
    assert [b.section for b in doc.blocks] == [()]


def test_chinese_titles_count_wide_characters() -> None:
    doc = parse_rst("安装指南\n========\n\n先安装软件包。\n\n配置\n----\n\n设置选项。\n", name="docs/zh.rst")
    assert doc.title == "安装指南"
    assert sections(doc)["设置选项。"] == ("安装指南", "配置")
    assert doc.language == "zh"


def test_roles_links_and_references_become_their_text() -> None:
    text = next(b.text for b in parse_rst(GUIDE).blocks if b.text.startswith("Set the options"))
    assert text == ("Set the options in `widget.toml`; see Settings and the upstream docs for details.")
    doc = parse_rst(
        "See :ref:`the install guide <install>`, :func:`!plain`, `Python`_, anchors_, *emphasis*, "
        "**strong**, `default role`, :math:`a^2` and `a raw link <https://x.org>`__.\n"
    )
    assert doc.blocks[0].text == ("See the install guide, plain, Python, anchors, emphasis, strong, "
                                  "default role, a^2 and a raw link.")
    assert "__init__" in parse_rst("The __init__ method runs first.\n").blocks[0].text


def test_directives_keep_their_text_and_drop_their_markup(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET-TOKEN", encoding="utf-8")
    doc = parse_rst(f"""\
Intro.

.. note:: Keep the note
   text together.

.. warning::
   :class: big

   Back up the *database* first.

.. versionadded:: 2.1
   The ``--fast`` flag.

.. deprecated:: 3.0

.. toctree::
   :maxdepth: 2

   install
   usage

.. include:: {secret}

.. raw:: html

   <script>alert(1)</script>

.. image:: diagram.png
   :alt: a diagram

.. figure:: chart.png

   The figure caption.

.. py:function:: send(message, *, retries=3)

   Send a message to the queue.

.. autoclass:: widget.Runner
   :members:

.. a comment that
   spans two lines
""")
    texts = [b.text for b in doc.blocks]
    assert texts == [
        "Intro.", "Keep the note text together.", "Back up the database first.",
        "New in version 2.1: The `--fast` flag.", "Deprecated since version 3.0.",
        "The figure caption.", "```\nsend(message, *, retries=3)\n```", "Send a message to the queue.",
    ]
    assert "SECRET" not in doc.text and "script" not in doc.text and "toctree" not in doc.text


def test_code_blocks_stay_out_of_prose() -> None:
    doc = parse_rst("""\
Example::

    x = 1  # not prose

Expanded form:

::

    y = 2

.. code-block:: python
   :linenos:

   print("hi")

>>> 1 + 1
2

Closing sentence.
""")
    texts = [b.text for b in doc.blocks]
    assert texts == ["Example:", "```\nx = 1  # not prose\n```", "Expanded form:", "```\ny = 2\n```",
                     '```python\nprint("hi")\n```', "```pycon\n>>> 1 + 1\n2\n```", "Closing sentence."]


def test_lists_definitions_and_tables_keep_their_lines() -> None:
    doc = parse_rst("""\
- first item that wraps
  onto a second line
- second item

term
    Its definition.

+-------+-------+
| Name  | Size  |
+=======+=======+
| alpha | 10    |
+-------+-------+

=====  =====
Col    Val
=====  =====
a      1
=====  =====

.. csv-table:: Sizes
   :header: "Package", "KB"

   numpy, 38000
""")
    assert [b.text for b in doc.blocks] == [
        "- first item that wraps onto a second line\n- second item", "term\nIts definition.",
        "| Name | Size |\n| alpha | 10 |", "| Col | Val |\n| a | 1 |", "Sizes", "| Package | KB |\n| numpy | 38000 |",
    ]


def test_bad_markup_still_ingests(tmp_path: Path) -> None:
    nested = "".join(" " * i + f"level {i}\n\n" for i in range(0, 400, 4))
    bad = (
        "Title\n=\n\nUnclosed ``literal and `interpreted and :role:`open and **strong.\n\n"
        "Mismatched\n~~~~~~~~~~\n\n.. unknown-directive:: arg\n   :weird option\n\n   body text kept\n\n"
        "..\n\n.. [broken footnote\n\n.. code-block::\n\n+---+ not a table\n|x|\n\n"
        "=====\nover only\n\n\tTabbed\tquote.\n\n" + nested + "x" * 100_000 + "\n"
    )
    path = tmp_path / "docs" / "bad.rst"
    path.parent.mkdir()
    path.write_text(bad, encoding="utf-8")
    doc = parse_bytes(path.read_bytes(), suffix=".rst", source="docs/bad.rst", max_bytes=2**24)
    assert_offsets(doc)
    text = doc.text
    assert "body text kept" in text and "level 0" in text and "level 396" in text and "Tabbed quote." in text
    assert "x" * 100_000 in text


async def test_search_finds_text_under_its_section(make_kb, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.rst").write_text(GUIDE, encoding="utf-8")
    kb = await make_kb()
    summary = await kb.ingest([docs])
    assert not summary.skipped
    for mode in ("text", "hybrid"):
        top = (await kb.search("aardvark check", k=1, mode=mode))[0].chunk
        assert (top.source, top.title, top.section) == ("docs/guide.rst", "Widget Guide", "Widget Guide > Installation")
        assert "aardvark" in top.text
        parsed = parse_bytes((docs / "guide.rst").read_bytes(), suffix=".rst", source=top.source, max_bytes=2**24)
        assert parsed.text[top.char_start : top.char_end] == top.text
