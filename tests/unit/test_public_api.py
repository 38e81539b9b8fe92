"""The package facade: what `import modelapi` offers is pinned, so a change is deliberate."""

from __future__ import annotations

import modelapi


def test_facade_names_are_pinned() -> None:
    assert sorted(modelapi.__all__) == ["Client", "__version__", "save", "train"]


def test_every_name_in_all_exists() -> None:
    for name in modelapi.__all__:
        assert getattr(modelapi, name) is not None


def test_version_is_the_installed_one() -> None:
    from importlib.metadata import version

    assert modelapi.__version__ == version("modelapi")
