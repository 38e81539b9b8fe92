"""The package facade: what `import modelapi` offers is pinned, so a change is deliberate."""

from __future__ import annotations

import modelapi

ERRORS = [
    "BundleError",
    "BundleNotFound",
    "ConfigError",
    "DataError",
    "FieldError",
    "InvalidInput",
    "MalformedBody",
    "MethodNotAllowed",
    "MissingExtra",
    "ModelUnavailable",
    "ModelapiError",
    "NotFound",
    "PackagingError",
    "PayloadTooLarge",
    "ServerError",
    "ServerUnreachable",
    "StoreError",
    "TrainingError",
    "Unauthorized",
    "UnsupportedMediaType",
]


def test_facade_names_are_pinned() -> None:
    expected = sorted(["AsyncClient", "Client", "__version__", "save", "train", *ERRORS])
    assert sorted(modelapi.__all__) == expected
    assert dir(modelapi) == expected


def test_the_errors_are_the_ones_every_module_raises() -> None:
    import modelapi.errors

    for name in ERRORS:
        assert getattr(modelapi, name) is getattr(modelapi.errors, name)
    assert issubclass(modelapi.InvalidInput, modelapi.ModelapiError)


def test_every_name_in_all_exists() -> None:
    for name in modelapi.__all__:
        assert getattr(modelapi, name) is not None


def test_version_is_the_installed_one() -> None:
    from importlib.metadata import version

    assert modelapi.__version__ == version("modelapi")
