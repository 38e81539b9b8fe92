"""Wheels for the runtime Lambda really runs: its CPython, its architecture, its glibc."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelapi.bundle import Bundle
from modelapi.deploy import lambda_zip as packaging
from modelapi.deploy.lambda_zip import LambdaPackage, build_lambda_zip, write_templates
from modelapi.deploy.target import LambdaTarget
from modelapi.deploy.wheels import install_wheels, platform_options
from modelapi.errors import ConfigError, PackagingError


@pytest.mark.parametrize(
    ("python", "tag", "accepted"),
    [
        ("3.12", "cp312-cp312-manylinux_2_28_x86_64", True),
        ("3.12", "cp312-cp312-manylinux_2_34_x86_64", True),
        ("3.12", "cp312-cp312-manylinux_2_35_x86_64", False),
        ("3.11", "cp311-cp311-manylinux_2_28_x86_64", False),  # Amazon Linux 2: glibc 2.26
        ("3.11", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", True),
        ("3.12", "cp311-cp311-manylinux_2_17_x86_64", False),
        ("3.12", "cp312-cp312-manylinux_2_17_aarch64", False),
        ("3.13", "cp39-abi3-manylinux2014_x86_64", True),
        ("3.12", "cp313-abi3-manylinux2014_x86_64", False),
        ("3.12", "py3-none-any", True),
        ("3.12", "cp312-cp312-musllinux_1_2_x86_64", False),
        ("3.12", "cp312-cp312-linux_x86_64", False),
        ("3.12", "cp312-cp312-win_amd64", False),
    ],
)
def test_wheel_tags_the_runtime_loads(python: str, tag: str, accepted: bool) -> None:
    assert LambdaTarget(python).accepts_wheel_tag(tag) is accepted


def test_installers_are_asked_for_every_tag_the_runtime_accepts() -> None:
    assert platform_options(LambdaTarget("3.12"), "uv") == [
        "--python-platform",
        "x86_64-manylinux_2_34",
    ]
    # uv knows no manylinux_2_26 target: the newest one below it is manylinux_2_17.
    assert platform_options(LambdaTarget("3.11", "arm64"), "uv")[1] == "aarch64-manylinux_2_17"
    pip = platform_options(LambdaTarget("3.11"), "pip")[1::2]
    assert pip[0] == "manylinux_2_26_x86_64"
    assert {"manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"} <= set(pip)
    assert "manylinux_2_28_x86_64" not in pip


def test_unknown_runtime_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"python3\.10 .* use one of 3\.11, 3\.12"):
        LambdaTarget("3.10")


def test_a_requirement_without_a_wheel_names_package_tag_and_a_runtime_that_works(
    tmp_path: Path,
) -> None:
    # onnxruntime 1.32 ships manylinux_2_28 wheels only: python3.12 loads them, 3.11 cannot.
    with pytest.raises(PackagingError) as raised:
        install_wheels(["onnxruntime==1.32.0"], LambdaTarget("3.11"), tmp_path / "site", None)
    message = str(raised.value)
    assert message.startswith("onnxruntime==1.32.0 has no wheel for python3.11 x86_64")
    assert "Amazon Linux 2, glibc 2.26" in message
    assert "cp311 with manylinux_2_26_x86_64 or older" in message
    assert "package with --python 3.12 --arch x86_64" in message
    assert "reachable" not in message


def test_wheels_that_do_not_fit_the_target_are_refused(
    builtin_bundle: Bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    (site / "fast").mkdir(parents=True)
    (site / "fast" / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\x7fELF")
    monkeypatch.setattr(packaging, "install_wheels", lambda *args: site)
    with pytest.raises(PackagingError, match=r"fast/_core\.cpython-311.* python3\.12 x86_64"):
        build_lambda_zip(builtin_bundle, tmp_path / "dist")
    (site / "fast" / "_core.cpython-311-x86_64-linux-gnu.so").unlink()
    (site / "fast-1.0.dist-info").mkdir()
    (site / "fast-1.0.dist-info" / "WHEEL").write_text(
        "Wheel-Version: 1.0\nTag: cp312-cp312-manylinux_2_28_aarch64\n"
    )
    with pytest.raises(PackagingError, match=r"fast-1\.0\.dist-info is a wheel for cp312-cp312"):
        build_lambda_zip(builtin_bundle, tmp_path / "dist")


@pytest.mark.parametrize("target", [LambdaTarget("3.13"), LambdaTarget("3.12", "arm64")])
def test_templates_refuse_a_zip_built_for_another_runtime(
    embedded_zip: LambdaPackage, target: LambdaTarget, tmp_path: Path
) -> None:
    (tmp_path / "lambda.zip").write_bytes(embedded_zip.zip_path.read_bytes())
    with pytest.raises(PackagingError, match=f"not built for {target.runtime} {target.arch}"):
        write_templates(
            tmp_path, model_ref="diabetes:1", model_name="diabetes", store_uri=None, target=target
        )
    written = write_templates(
        tmp_path, model_ref="diabetes:1", model_name="diabetes", store_uri=None
    )
    assert "runtime: python3.12" in written[1].read_text()
