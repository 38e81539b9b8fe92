"""The Lambda runtime a package is built for: Python version, architecture, and what they accept.

A Lambda Python runtime loads the wheels of its CPython version whose manylinux tag its Amazon
Linux's glibc satisfies: python3.11 runs on Amazon Linux 2 (glibc 2.26), python3.12 and later on
Amazon Linux 2023 (glibc 2.34). A wheel tagged manylinux_2_28 therefore runs on python3.12 but
not on python3.11, whatever machine the package is built on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from modelapi.errors import ConfigError, PackagingError

__all__ = ["ARCHES", "PYTHON_VERSIONS", "Arch", "LambdaTarget", "check_built_for", "wheel_tags"]

Arch = Literal["x86_64", "arm64"]
ARCHES: tuple[Arch, ...] = ("x86_64", "arm64")
# Python version -> (operating system, glibc (major, minor)) of its Lambda runtime.
_RUNTIMES: dict[str, tuple[str, tuple[int, int]]] = {
    "3.11": ("Amazon Linux 2", (2, 26)),
    "3.12": ("Amazon Linux 2023", (2, 34)),
    "3.13": ("Amazon Linux 2023", (2, 34)),
    "3.14": ("Amazon Linux 2023", (2, 34)),
}
PYTHON_VERSIONS = tuple(_RUNTIMES)
# An extension module's file name: name.cpython-312-x86_64-linux-gnu.so
_EXTENSION = re.compile(r"\.cpython-(\d+)-([A-Za-z0-9_]+)-linux-gnu\.so$")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_([A-Za-z0-9_]+)")
# The legacy manylinux names and the glibc they stand for (PEP 600).
_LEGACY_MANYLINUX = {"manylinux2014": (2, 17), "manylinux2010": (2, 12), "manylinux1": (2, 5)}


@dataclass(frozen=True, slots=True)
class LambdaTarget:
    """The Lambda runtime a package is built for.

    Raises ConfigError for a Python version Lambda has no runtime for here.
    """

    python: str = "3.12"
    arch: Arch = "x86_64"

    def __post_init__(self) -> None:
        if self.python not in _RUNTIMES:
            raise ConfigError(
                f"python{self.python} is not a Lambda runtime modelapi packages for;"
                f" use one of {', '.join(PYTHON_VERSIONS)}"
            )
        if self.arch not in ARCHES:
            raise ConfigError(f"architecture {self.arch!r} must be x86_64 or arm64")

    @property
    def runtime(self) -> str:
        """The Lambda runtime identifier, as templates name it: python3.12."""
        return f"python{self.python}"

    @property
    def machine(self) -> str:
        """The manylinux machine name: x86_64 or aarch64."""
        return "aarch64" if self.arch == "arm64" else "x86_64"

    @property
    def os_name(self) -> str:
        """The Amazon Linux release the runtime runs on."""
        return _RUNTIMES[self.python][0]

    @property
    def glibc(self) -> tuple[int, int]:
        """The glibc version of the runtime's operating system."""
        return _RUNTIMES[self.python][1]

    @property
    def python_tag(self) -> str:
        """The CPython wheel tag: cp312."""
        return "cp" + self.python.replace(".", "")

    @property
    def platform_tag(self) -> str:
        """The newest manylinux tag the runtime accepts: manylinux_2_34_x86_64."""
        major, minor = self.glibc
        return f"manylinux_{major}_{minor}_{self.machine}"

    def describe(self) -> str:
        """The runtime in words, for messages: python3.11 x86_64 (Amazon Linux 2, glibc 2.26)."""
        major, minor = self.glibc
        return f"{self.runtime} {self.arch} ({self.os_name}, glibc {major}.{minor})"

    def accepts_extension(self, file_name: str) -> bool:
        """Whether an extension module file (`*.cpython-312-x86_64-linux-gnu.so`) loads here."""
        found = _EXTENSION.search(file_name)
        if found is None:
            return True  # not a versioned CPython extension (abi3 or a plain shared library)
        return found.group(1) == self.python_tag[2:] and found.group(2) == self.machine

    def accepts_wheel_tag(self, tag: str) -> bool:
        """Whether a wheel tag (`cp312-cp312-manylinux_2_28_x86_64`) installs on this runtime."""
        parts = tag.strip().split("-")
        if len(parts) != 3:
            return False
        pythons, abis, platforms = (part.split(".") for part in parts)
        return any(self._accepts_python(p, a) for p in pythons for a in abis) and any(
            self._accepts_platform(platform) for platform in platforms
        )

    def _accepts_python(self, python: str, abi: str) -> bool:
        minor = int(self.python.split(".")[1])
        if python in ("py3", f"py3{minor}"):
            return abi == "none"
        if not python.startswith("cp3") or not python[3:].isdigit():
            return False
        if abi == "abi3":
            return int(python[3:]) <= minor
        return python == self.python_tag and abi in (self.python_tag, "none")

    def _accepts_platform(self, platform: str) -> bool:
        if platform == "any":
            return True
        legacy, _, machine = platform.partition("_")
        if legacy in _LEGACY_MANYLINUX:
            return machine == self.machine and _LEGACY_MANYLINUX[legacy] <= self.glibc
        found = _MANYLINUX.fullmatch(platform)
        if found is None:
            return False
        glibc = (int(found.group(1)), int(found.group(2)))
        return found.group(3) == self.machine and glibc <= self.glibc


def check_built_for(
    target: LambdaTarget, names: Iterable[str], wheel_tags: Iterable[tuple[str, list[str]]]
) -> None:
    """Refuse a package whose compiled files or wheels would not load on `target`.

    `names` are the package's file names; `wheel_tags` pairs each `*.dist-info/WHEEL` file with
    its `Tag:` values. Raises PackagingError naming the first file that does not fit.
    """
    fix = "build it again with --python and --arch set to the runtime the templates name"
    for name in names:
        if not target.accepts_extension(name.rpartition("/")[2]):
            raise PackagingError(f"{name} is not built for {target.describe()}; {fix}")
    for name, tags in wheel_tags:
        if tags and not any(target.accepts_wheel_tag(tag) for tag in tags):
            raise PackagingError(
                f"{name.partition('/')[0]} is a wheel for {', '.join(tags)}, which"
                f" {target.describe()} cannot load; {fix}"
            )


def wheel_tags(wheel_file: str) -> list[str]:
    """The `Tag:` values of a `*.dist-info/WHEEL` file's text."""
    return [
        line.partition(":")[2].strip()
        for line in wheel_file.splitlines()
        if line.lower().startswith("tag:")
    ]
