"""Build the Cython scoring core.

Compiler directives live here and nowhere else.  Set TRNSCHED_DEBUG=1 when
building to turn bounds, wraparound and initialisation checks back on.
"""
import os
import platform
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("TRNSCHED_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "nonecheck": False,
}

# OpenMP gives prange its threads; without it prange runs serially, which is
# still correct, so platforms lacking it just drop the flag.
openmp = [] if sys.platform == "darwin" or os.environ.get("TRNSCHED_NO_OPENMP") else ["-fopenmp"]
# SSE4.1 (every x86-64 server since 2008) turns floor/ceil into one instruction
# instead of a libm call in the hot loop.
ARCH = ["-msse4.1"] if platform.machine() in ("x86_64", "AMD64") and sys.platform != "win32" else []
opt = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-math-errno", "-fno-trapping-math"] + ARCH

extensions = [
    Extension(
        "trnsched.perf._core",
        ["trnsched/perf/_core.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_22_API_VERSION")],
        extra_compile_args=opt + openmp,
        extra_link_args=openmp,
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, annotate=False))
