"""Build of the one C extension (metadata is in pyproject.toml)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "lakehouse_phi_native._hmac",
    sources=["src/lakehouse_phi_native/_hmac.c"],
    libraries=["crypto"],  # OpenSSL 3 (Debian/Ubuntu: libssl-dev to build, libssl3 at run time)
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
)])
