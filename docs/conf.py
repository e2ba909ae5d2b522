"""Sphinx configuration of the skrnn documentation (``make docs``)."""

import os
import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS))

import skrnn  # noqa: E402

project = "skrnn"
author = "the skrnn developers"
copyright = "the skrnn developers"
version = release = skrnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "gallery_header.rst"]
templates_path = ["_templates"]
html_static_path = []  # no static files of our own
html_theme = "pydata_sphinx_theme"
html_title = f"skrnn {version}"
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False

# MyST: user guide pages are Markdown, like the README they came from.
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference: one page per public name, generated from the numpydoc docstrings.
autosummary_generate = True
autodoc_default_options = {"member-order": "groupwise"}
autodoc_typehints = "none"  # the numpydoc sections already give the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# Docstring problems numpydoc can see are errors of the build: a parameter of the signature
# that the docstring does not describe, or one it describes that the signature lacks.
numpydoc_validation_checks = {"PR01", "PR02"}
numpydoc_validation_exclude = {
    # Inherited from scikit-learn and Python: documented (and validated) upstream.
    r"\.get_params$",
    r"\.set_params$",
    r"\.set_output$",
    r"\.set_\w+_request$",
    r"\.get_metadata_routing$",
    r"\.fit_transform$",
    r"\.with_traceback$",
    r"\.add_note$",
    # A typing.Protocol: its signature is that of Protocol, its __call__ is documented.
    r"^skrnn\.cells\.CellFactory$",
}
# sphinx_gallery_conf holds a function, so Sphinx cannot cache it (and rebuilds fully).
suppress_warnings = ["config.cache"]

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
}
# The site is built offline (CI and the 2-core build machine have no network beyond the
# package registry), so intersphinx inventories are only used when SKRNN_DOCS_ONLINE is set.
if not os.environ.get("SKRNN_DOCS_ONLINE"):
    intersphinx_mapping = {}

# ----------------------------------------------------------------------------- gallery
# The gallery runs a scratch copy of examples/ so that the figures the examples save next to
# themselves never land in the repository.
GALLERY_SRC = DOCS / "_build" / "gallery_src"
if GALLERY_SRC.exists():
    shutil.rmtree(GALLERY_SRC)
GALLERY_SRC.mkdir(parents=True)


for example in sorted((ROOT / "examples").glob("plot_*.py")):
    shutil.copy2(example, GALLERY_SRC / example.name)
shutil.copy2(DOCS / "gallery_header.rst", GALLERY_SRC / "GALLERY_HEADER.rst")

# Examples that need real data name it in a module-level constant, e.g.
#     CAMVID = Path(os.environ.get("CAMVID", "CamVid"))
# and are left out of the gallery when that folder is absent.
DATA_EXAMPLES = {"plot_camvid": "CAMVID"}
skipped = [
    name for name, env in DATA_EXAMPLES.items() if not Path(os.environ.get(env, "CamVid")).is_dir()
]


def shrink_examples(gallery_conf, fname):
    """Make the estimators of each gallery example small enough for a 2-core docs build.

    The examples themselves stay as users run them; only the build caps their training
    length (``SKRNN_DOCS_FULL=1`` builds the gallery with the examples' own settings).
    """
    from gallery_settings import shrink

    shrink()


sphinx_gallery_conf = {
    "examples_dirs": str(GALLERY_SRC),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": "|".join(skipped) if skipped else r"__nothing__",
    "reset_modules": ("matplotlib", "seaborn", shrink_examples),
    "reference_url": {"skrnn": None},
    "download_all_examples": False,
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "capture_repr": (),
    "run_stale_examples": False,
}
