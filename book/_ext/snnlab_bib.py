"""An author-year bibliography for the book (loaded through ``local_extensions``).

The text cites author-year (``bibtex_reference_style: author_year``: "Kim et al., 2022");
pybtex's styles label the bibliography [1], [2], ... or [KLP+22]. This registers the
formatting style ``authoryear``: pybtex's ``plain`` entries, sorted by author, year and
title, each labelled as the text cites it, so a click on "Kim et al., 2022" lands on the
entry labelled [Kim et al., 2022].
"""
from __future__ import annotations

import re
import string

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _last_name(person) -> str:
    """A person's last name as plain text (``{\\'e}`` -> ``é`` is not needed here: braces go)."""
    return re.sub(r"[{}\\]", "", " ".join(person.prelast_names + person.last_names))


def author_year_label(entry) -> str:
    """``Kim et al., 2022``, ``Liu and Yang, 2019``, ``Horowitz, 2014``."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in persons]
    if len(names) > 2 or (len(names) == 2 and names[1].lower() == "others"):
        who = f"{names[0]} et al."
    else:
        who = " and ".join(names) or entry.fields.get("title", entry.key)
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels as the text cites them; works that would share one ("Liu et al., 2019") get
    a, b, ... after the year, as author-year bibliographies do (labels must be unique)."""

    def format_labels(self, sorted_entries):
        labels = [author_year_label(entry) for entry in sorted_entries]
        shared = {label for label in labels if labels.count(label) > 1}
        used = {}
        for label in labels:
            if label in shared:
                used[label] = used.get(label, 0) + 1
                label += string.ascii_lowercase[used[label] - 1]
            yield label


class AuthorYearStyle(PlainStyle):
    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
