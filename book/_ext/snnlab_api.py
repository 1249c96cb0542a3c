"""Sphinx helpers for the API reference of the book (loaded through ``local_extensions``).

Two things autodoc does not do on its own:

* a short reference such as ``:class:`CellGenotype``` written in another module's
  docstring is resolved to the one documented object of that name
  (``snnlab.snasnet_space.CellGenotype``), as if written ``:class:`.CellGenotype```;
  a name documented twice, or nowhere, stays unresolved: nitpicky mode reports it;
* every name of a module's ``__all__`` and every public method gets an entry, documented
  or not (a class's fields stay as its docstring lists them), but a name
  re-exported from another snnlab module is documented once, where it is defined;
* a module constant is shown with its value when the value is short (a tuple of op
  names, a number); long values (registries of factories) are left to the source link.
"""
from __future__ import annotations

import builtins
import inspect
import re
import sys

from sphinx.ext.autodoc import DataDocumenter, ModuleDocumenter
from sphinx.util.nodes import make_refnode

SHORT_VALUE = 100      # characters: longer values would wrap over several lines


PYTHON_NAME = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*")


def resolve_by_suffix(app, env, node, contnode):
    """``missing-reference`` handler: retry a Python reference by its unqualified name.

    ``snnlab.search.SearchResult`` (the package's re-export) finds the class where it is
    defined, ``snnlab.search.result.SearchResult``. A target that is no Python name at all
    is prose that napoleon read as a type (``Raises: ValueError naming the flag``, an
    attribute docstring ``"The registry: ..."``): it stays plain text.
    """
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"]
    if not PYTHON_NAME.fullmatch(target) or is_prose_word(node["reftype"], target):
        return contnode
    if is_private_alias(node.get("py:module"), target):
        return contnode
    domain = env.get_domain("py")
    # the name as written, then its last part; the role's type, then any type (a type alias
    # such as AttentionFactory is documented as data but annotations refer to it as a class)
    for name in dict.fromkeys((target, target.rsplit(".", 1)[-1])):
        for reftype in (node["reftype"], "obj"):
            matches = domain.find_obj(env, node.get("py:module"), node.get("py:class"), name,
                                      reftype, searchmode=1)
            if len(matches) == 1:
                full_name, obj = matches[0]
                return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id,
                                    contnode, full_name)
    return None


def is_private_alias(module_name, target: str) -> bool:
    """A type alias the module defines for its annotations but does not export (``LossFn``)."""
    module = sys.modules.get(module_name or "")
    value = getattr(module, target, None)
    return (value is not None and target not in getattr(module, "__all__", ())
            and type(value).__module__ == "typing")


def is_prose_word(reftype: str, target: str) -> bool:
    """A lower-case word that napoleon took for an exception or class ("unreadable")."""
    return (reftype in ("exc", "class") and "." not in target and target[:1].islower()
            and not hasattr(builtins, target))


def remember_module(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` handler: note which module autodoc is documenting."""
    if what == "module":
        app.env.temp_data["snnlab_api_module"] = name


def include_public_names(app, what, name, obj, skip, options):
    """``autodoc-skip-member`` handler: a module's ``__all__``, a class's public methods."""
    if what == "class" and not name.startswith("_") and skip and (
            inspect.isroutine(obj) or isinstance(obj, property)):
        return False                     # a public method gets an entry even without a docstring
    current = app.env.temp_data.get("snnlab_api_module")
    module = sys.modules.get(current or "")
    if what != "module" or name not in getattr(module, "__all__", ()):
        return None                      # autodoc's own rule (names outside __all__ skipped)
    defined_in = getattr(obj, "__module__", None)
    if isinstance(defined_in, str) and defined_in.startswith("snnlab") and defined_in != current:
        return True                      # a re-export: documented in its own module
    return False                         # public: an entry even without a docstring


def show_short_values(app, what, name, obj, options, lines):
    """``autodoc-process-docstring`` handler: append ``Value: ...`` to short constants."""
    if what not in ("data", "attribute") or callable(obj):
        return
    if not isinstance(obj, (tuple, list, frozenset, str, int, float, bool)):
        return
    text = repr(obj)
    if len(text) <= SHORT_VALUE and "\n" not in text:
        lines.extend(["", f"Value: ``{text}``"])


class PublicDataDocumenter(DataDocumenter):
    """``autodata`` that also takes a module's undocumented constants (``BENCH_OPS = (...)``).

    Plain autodoc documents a module constant only when a doc comment marks it; a name of
    ``__all__`` without one would vanish, and every reference to it would break.
    """

    @classmethod
    def can_document_member(cls, member, membername, isattr, parent):
        if super().can_document_member(member, membername, isattr, parent):
            return True
        return (isinstance(parent, ModuleDocumenter) and not inspect.isfunction(member)
                and not inspect.isclass(member) and not inspect.ismodule(member)
                and not inspect.isbuiltin(member))

    def get_doc(self):
        doc = super().get_doc()
        type_doc = inspect.getdoc(type(self.object))
        if doc and type_doc and "\n".join(doc[0]).strip() == type_doc.strip():
            return []                    # the docstring of tuple or dict, not of the constant
        return doc


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """``html-page-context`` handler: emit each script once.

    sphinx-thebe registers its inline configuration (``const THEBE_JS_URL = ...``) twice
    under Jupyter Book, and the second copy throws "Identifier 'THEBE_JS_URL' has already
    been declared" on every page.
    """
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (getattr(script, "filename", None) or "",      # None and "" both mean inline
               repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.setup_extension("sphinx.ext.autodoc")
    app.add_autodocumenter(PublicDataDocumenter, override=True)
    app.connect("missing-reference", resolve_by_suffix)
    app.connect("autodoc-process-docstring", remember_module)
    app.connect("autodoc-process-docstring", show_short_values)
    app.connect("autodoc-skip-member", include_public_names)
    app.connect("html-page-context", drop_duplicate_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
