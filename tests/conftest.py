"""Fixtures shared by every test layer: the Pima data, the built-in bundle, a local moto S3."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from modelapi.bundle import Bundle
from modelapi.config import Settings
from modelapi.predictor import Predictor
from modelapi.store.builtin import BUILTIN_ROOT

REPO_ROOT = Path(__file__).resolve().parent.parent
# Set (to "1") to run the long variants of the adversarial tests; `pytest --long` sets it too.
LONG_TESTS_ENV = "MODELAPI_LONG_TESTS"
# Set (to "1") to make a missing tool fail the tests that need it instead of skipping them (CI).
REQUIRE_TOOLS_ENV = "MODELAPI_REQUIRE_TOOLS"
# The exact Pima example body that existing clients send.
# The Pima table's feature columns, in the file's order (the target, Outcome, follows them).
PIMA_COLUMNS = (
    "Pregnancies",
    "Glucose",
    "BloodPressure",
    "SkinThickness",
    "Insulin",
    "BMI",
    "DiabetesPedigreeFunction",
    "Age",
)
PIMA_EXAMPLE = (
    b'{"pregnancies": 2, "glucose": 148, "blood_pressure": 72, "skin_thickness": 35,'
    b' "insulin": 0, "bmi": 33.6, "diabetes_pedigree_function": 0.674, "age": 22}'
)


def require_tool(tool: str | Path, reason: str) -> str:
    """The path of `tool` (a name on PATH, or a path); skip the test naming `reason` without it.

    With MODELAPI_REQUIRE_TOOLS=1 a missing tool fails the test instead, so CI, which installs
    every tool, cannot pass by skipping.
    """
    candidate = Path(tool)
    if candidate.is_absolute() or candidate.parent != Path():
        found = str(candidate) if candidate.exists() else None
    else:
        found = shutil.which(str(tool))
    if found is not None:
        return found
    message = f"{tool} is missing: {reason}"
    if os.environ.get(REQUIRE_TOOLS_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_TOOLS_ENV}=1 requires it)", pytrace=False)
    pytest.skip(message)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --long: the long variants of the adversarial tests (see docs/TESTING.md)."""
    parser.addoption(
        "--long",
        action="store_true",
        help=f"run the long fuzzing, fault and soak variants (same as {LONG_TESTS_ENV}=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Pass --long on as the environment variable, which test modules read when collected."""
    if config.getoption("--long"):
        os.environ[LONG_TESTS_ENV] = "1"


@pytest.fixture(scope="session")
def pima_csv() -> Path:
    """The Pima data set: MODELAPI_TEST_DATA, else ../shared/data/pima.csv beside the repo."""
    path = Path(os.environ.get("MODELAPI_TEST_DATA", REPO_ROOT.parent / "shared/data/pima.csv"))
    assert path.is_file(), f"Pima data not found at {path}; set MODELAPI_TEST_DATA"
    return path


@pytest.fixture(scope="session")
def builtin_bundle() -> Bundle:
    """The shipped diabetes bundle, read and verified."""
    from modelapi.bundle import read_bundle

    return read_bundle(BUILTIN_ROOT / "diabetes" / "1")


@pytest.fixture(scope="session")
def pima_example_answer(builtin_bundle: Bundle) -> dict[str, object]:
    """scikit-learn's own answer to PIMA_EXAMPLE, from the built-in model's `model.skops`."""
    import pandas as pd

    from modelapi.formats.skops import read_estimator

    estimator = read_estimator(builtin_bundle)
    row = msgspec.json.decode(PIMA_EXAMPLE)
    columns = {f.key: f.column for f in builtin_bundle.manifest.features}
    frame = pd.DataFrame([{columns[key]: value for key, value in row.items()}])
    [label] = estimator.predict(frame).tolist()  # type: ignore[attr-defined]
    [probabilities] = estimator.predict_proba(frame).tolist()  # type: ignore[attr-defined]
    return {"outcome": label, "probabilities": {"0": probabilities[0], "1": probabilities[1]}}


@pytest.fixture(scope="session")
def pima_predictor(builtin_bundle: Bundle) -> Predictor:
    """A predictor for the shipped diabetes bundle."""
    return Predictor(builtin_bundle)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with an empty store in a temporary folder."""
    return Settings(store=str(tmp_path / "models"))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port), for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Point boto3 at the moto server with dummy credentials; return the endpoint URL.

    No AWS config or credentials file is read (this machine's own would change the settings).
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_endpoint


S3_READ_PATHS = ["standard library", "botocore"]


def use_s3_read_path(
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    credentials: tuple[str, str, str] = ("testing", "testing", "testing"),
) -> None:
    """Make S3 stores opened from now on read objects the given way, with `credentials`.

    The standard library reads with credentials in the environment; for "botocore" they are
    moved to a credentials file, as on a machine with a profile, which only botocore reads.
    """
    access_key, secret_key, token = credentials
    monkeypatch.setattr("modelapi.store.s3_client._sessions", [])  # a session keeps credentials
    if path == "standard library":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
        monkeypatch.setenv("AWS_SESSION_TOKEN", token)
        return
    assert path == "botocore", path
    file = tmp_path / "aws-credentials"
    file.write_text(
        f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"
        f"aws_session_token = {token}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(file))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=S3_READ_PATHS)
def s3_read_path(
    request: pytest.FixtureRequest, aws_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """Each way an S3 store reads objects (see use_s3_read_path): tests hold both to one bar."""
    path: str = request.param
    use_s3_read_path(path, monkeypatch, tmp_path)
    return path


@pytest.fixture
def s3_bucket(aws_env: str) -> str:
    """A new, empty bucket on the moto server; returns its name."""
    import boto3

    name = f"modelapi-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store_uri(s3_bucket: str) -> str:
    """An `s3://` store URI in a new bucket."""
    return f"s3://{s3_bucket}/models"
