"""Build the optional C codec; every other setting lives in pyproject.toml.

``optional=True``: without a compiler the build only warns, and ``tarsus.codec`` runs on its
pure-Python codec (``tarsus.codec.api.SPEEDUPS`` is then False).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tarsus.codec._speedups",
            ["tarsus/codec/_speedups.c"],
            optional=True,
        )
    ]
)
