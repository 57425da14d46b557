"""Sphinx configuration of pyrl's documentation site (`make docs`)."""

import pathlib
import sys
import warnings

import torch

import pyrl

DOCS = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))  # _ext: the op-schema directive

project = "pyrl"
author = "pyrl contributors"
release = version = pyrl.__version__
copyright = "2026, pyrl contributors"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx_autodoc_typehints",
    "sphinx_copybutton",
    "sphinxarg.ext",
    "_ext.schemas",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "curves/*.md", "results/*.md"]  # results: included by the pages
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"pyrl {release}"

autodoc_member_order = "bysource"
autodoc_default_options = {}  # each page names the members it documents
autodoc_inherit_docstrings = False  # gymnasium's and torch's own docstrings are theirs to render
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
typehints_fully_qualified = False
always_document_param_types = False
# torch's own docstrings and types are not ours to document: resolve them as plain text.
nitpicky = False
suppress_warnings = ["myst.header"]
torch.set_num_threads(1)
# sphinx-autodoc-typehints still calls an API Sphinx 10 removes; not ours to fix.
warnings.filterwarnings("ignore", message=".*set_application.*is deprecated")
