"""Build the `tessera` package: the pure-Python layer (tessera/) and the
extension tessera._tessera, which the project's CMake builds (target
tessera_python: python/src/*.c linked with the static C library, Limited API
of Python 3.11, so the wheel is tagged cp311-abi3).

The C sources are those of the source tree this folder belongs to (its
parent), or of $TESSERA_SOURCE_DIR.  Build dependencies: cmake, a C11
compiler, pkg-config, and the C library's dependencies (scripts/install-deps.sh
build).  $TESSERA_CMAKE_ARGS adds CMake options; $TESSERA_BUILD_JOBS sets
the build's parallelism.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.environ.get("TESSERA_SOURCE_DIR") or os.path.join(HERE, ".."))


def version():
    """M.m.p from include/tessera.h."""
    header = os.path.join(ROOT, "include", "tessera.h")
    try:
        text = open(header, encoding="utf-8").read()
    except OSError:
        return "0.0.0"
    parts = [re.search(rf"#define TSR_VERSION_{k} (\d+)", text) for k in ("MAJOR", "MINOR",
                                                                          "PATCH")]
    return ".".join(m.group(1) for m in parts) if all(parts) else "0.0.0"


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        if not os.path.isfile(os.path.join(ROOT, "CMakeLists.txt")):
            raise RuntimeError(f"tessera: no CMakeLists.txt in {ROOT}; build from the source "
                               f"tree (pip install ./python) or set TESSERA_SOURCE_DIR")
        if shutil.which("cmake") is None:
            raise RuntimeError("tessera: cmake is needed to build the extension "
                               "(scripts/install-deps.sh build)")
        build_dir = os.path.join(os.path.abspath(self.build_temp), "cmake")
        configure = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                     "-DTSR_TESTS=OFF", f"-DTSR_PYTHON={sys.executable}",
                     f"-DPython3_EXECUTABLE={sys.executable}"]
        configure += shlex.split(os.environ.get("TESSERA_CMAKE_ARGS", ""))
        jobs = os.environ.get("TESSERA_BUILD_JOBS") or str(os.cpu_count() or 2)
        subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", build_dir, "--target", "tessera_python",
                        "-j", jobs], check=True)
        built = os.path.join(build_dir, "python", "tessera", "_tessera.abi3.so")
        if not os.path.isfile(built):
            raise RuntimeError(f"tessera: the build did not produce {built} (are the Python "
                               f"headers installed? Debian: python3-dev)")
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(built, dest)


setup(
    version=version(),
    ext_modules=[Extension("tessera._tessera", sources=[], py_limited_api=True)],
    cmdclass={"build_ext": CMakeBuild},
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
