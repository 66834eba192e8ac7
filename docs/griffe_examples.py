"""Griffe extension for the API reference: how nlpkit's docstrings and packages are laid out.

- ``Example:`` sections are examples. nlpkit's docstrings end with an ``Example:`` section
  (the keras-hub convention, DESIGN.md §4). Griffe's Google-style parser knows only the
  plural ``Examples:`` as an examples section and reads the singular as an admonition, whose
  ``>>>`` lines would then be rendered as Markdown text (and ``[...]`` outputs taken for
  cross-references). Renaming the heading before the docstring is parsed turns each one into
  highlighted doctest blocks.
- A package's re-exports are documented once, where they are defined. ``nlpkit.text`` lists
  ``TextNormalizer`` in ``__all__`` and ``nlpkit.text.normalization`` defines it; each API
  page shows the package with all its submodules, so the re-exported alias would repeat the
  class. Aliases whose target lies inside the same package are marked non-public, which
  the ``filters: public`` option of ``mkdocs.yml`` then leaves out.

Only the loaded documentation data changes; the source files stay as they are.
"""

import re

import griffe

_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Reads ``Example:`` headings as ``Examples:`` and hides same-package re-exports."""

    def on_object(self, *, obj, loader, **kwargs):
        docstring = obj.docstring
        if docstring is not None:
            docstring.value = _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", docstring.value)

    def on_package(self, *, pkg, loader, **kwargs):
        for module in [pkg, *_submodules(pkg)]:
            if not module.is_init_module:
                continue
            for member in module.members.values():
                if member.is_alias and member.target_path.startswith(f"{module.path}."):
                    member.public = False


def _submodules(module):
    # Aliases are skipped: `import nlpkit.layers` inside a package would otherwise lead back
    # into the tree (and `import keras` out of it).
    for member in module.members.values():
        if not member.is_alias and member.is_module:
            yield member
            yield from _submodules(member)
