"""The Lambda package: built with `modelapi package lambda`, started cold in a fresh Python 3.12.

As the serverless issue's end-to-end test does, the zip is unpacked into an empty folder and
the handler runs in `python3.12 -I -S` whose path holds only that folder, a folder with boto3
alone (what the Lambda runtime provides) and the standard library, with Lambda's environment.
Each cold start gets a freshly unpacked folder, as on Lambda, where /var/task is read-only: the
zip's own unchecked-hash byte code for Python 3.12 is all a cold start can use.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from benchmarks.install import LAMBDA_PYTHON
from benchmarks.lambda_ric import ric_figures
from benchmarks.processes import SERVER_CPU, pinned

__all__ = [
    "RUNNER",
    "base_env",
    "build_zip",
    "lambda_figures",
    "measure_lambda",
    "moto_s3",
    "run_cold",
    "write_event",
]

REPO = Path(__file__).resolve().parent.parent
# A real HTTP API (v2, $default stage) event; its body is replaced by the example's.
EVENT = REPO / "tests" / "events" / "http_v2_default_predict.json"

# Process start -> import the handler -> first answer, printed at once; then, when asked,
# n warm invocations timed one by one, summarised in the process.
RUNNER = """
import sys
task_root, runtime_dir, event_file, n_warm = sys.argv[1:5]
sys.path[:0] = [task_root, runtime_dir]
import json
with open(event_file) as handle:
    event = json.load(handle)
from modelapi.aws_lambda import handler
answer = handler(event, None)
sys.stdout.write("first answer " + json.dumps(answer) + "\\n")
sys.stdout.flush()
n = int(n_warm)
if n:
    import time
    clock = time.perf_counter_ns
    for _ in range(min(n, 2000)):
        handler(event, None)
    times = []
    for _ in range(n):
        started = clock()
        answer = handler(event, None)
        times.append(clock() - started)
    times.sort()
    print(json.dumps({"n": n, "status": answer["statusCode"], "p50_us": times[n // 2] / 1000,
                      "p99_us": times[int(n * 0.99)] / 1000, "mean_us": sum(times) / n / 1000}))
"""

_LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "modelapi-diabetes-bench",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "_HANDLER": "modelapi.aws_lambda.handler",
    "LANG": "en_US.UTF-8",
    "TZ": ":UTC",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


@contextmanager
def moto_s3() -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 (a free port) with one new bucket: the AWS env to reach it.

    The returned mapping also holds BENCH_STORE, the s3:// store URI in that bucket.
    """
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        env = {
            "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        bucket = f"modelapi-bench-{uuid.uuid4().hex[:8]}"
        client = boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINT_URL_S3"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=bucket)
        yield {**env, "BENCH_STORE": f"s3://{bucket}/models"}
    finally:
        server.stop()


def build_zip(
    modelapi: list[str], out: Path, *, args: list[str], env: Mapping[str, str], cwd: Path
) -> dict[str, int]:
    """Run `modelapi package lambda ARGS -o out`; the zip's sizes and file count."""
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [*modelapi, "package", "lambda", *args, "-o", str(out)],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"modelapi package lambda failed: {done.stderr.strip()[-800:]}")
    with zipfile.ZipFile(out / "lambda.zip") as archive:
        infos = archive.infolist()
    return {
        "zipped_bytes": (out / "lambda.zip").stat().st_size,
        "unzipped_bytes": sum(info.file_size for info in infos),
        "n_files": len(infos),
    }


def write_event(path: Path, body: bytes) -> Path:
    """The HTTP API v2 POST /predict event with `body` as its (plain text) body."""
    event = json.loads(EVENT.read_text())
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    event["headers"]["content-length"] = str(len(body))
    path.write_text(json.dumps(event))
    return path


def run_cold(
    zip_path: Path,
    event: Path,
    task_root: Path,
    runtime: Path,
    env: Mapping[str, str],
    check: Callable[[object], bool],
    n_warm: int = 0,
) -> tuple[float, dict[str, float] | None]:
    """Unpack the zip afresh and time one fresh process to its first correct answer (ms).

    With n_warm, the same process then times n_warm warm invocations (p50/p99 in us).
    """
    shutil.rmtree(task_root, ignore_errors=True)
    task_root.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task_root)
    command = [str(LAMBDA_PYTHON), "-I", "-S", "-c", RUNNER, str(task_root), str(runtime)]
    full_env = {
        **_LAMBDA_ENV,
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime),
        **env,
    }
    started = time.perf_counter()
    process = subprocess.Popen(
        pinned([*command, str(event), str(n_warm)], SERVER_CPU),
        cwd=task_root,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    cold_ms = (time.perf_counter() - started) * 1000
    # Read on through the same buffered file: readline may already hold the warm figures when
    # this process was slow to read (communicate() reads the bare pipe and would miss them).
    out = process.stdout.read()
    assert process.stderr is not None
    err = process.stderr.read()
    process.wait(timeout=300)
    if process.returncode != 0 or not first.startswith("first answer "):
        raise RuntimeError(f"the Lambda process failed: {(first + out + err).strip()[-800:]}")
    answer = json.loads(first.removeprefix("first answer "))
    if not check(answer):
        raise RuntimeError(f"the Lambda process answered wrongly: {str(answer)[:300]}")
    warm = json.loads(out.strip().splitlines()[-1]) if n_warm else None
    return cold_ms, warm


def lambda_figures(
    kind: str,
    zip_path: Path,
    event: Path,
    work: Path,
    runtime: Path,
    env: Mapping[str, str],
    check: Callable[[object], bool],
    *,
    n_cold: int,
    n_warm: int,
) -> dict[str, object]:
    """Cold starts (median, min, max ms) over n_cold fresh processes, then warm invocations."""
    colds = []
    warm: dict[str, float] | None = None
    for i in range(n_cold):
        last = i == n_cold - 1
        cold_ms, found = run_cold(
            zip_path, event, work / f"task-{kind}", runtime, env, check, n_warm if last else 0
        )
        colds.append(cold_ms)
        warm = found or warm
    shutil.rmtree(work / f"task-{kind}", ignore_errors=True)
    figures: dict[str, object] = {
        "cold_start_median_ms": round(statistics.median(colds), 2),
        "cold_start_min_ms": round(min(colds), 2),
        "cold_start_max_ms": round(max(colds), 2),
        "cold_starts_ms": [round(c, 2) for c in colds],
    }
    if warm is not None:
        figures.update(
            warm_p50_us=round(warm["p50_us"], 2),
            warm_p99_us=round(warm["p99_us"], 2),
            warm_mean_us=round(warm["mean_us"], 2),
            warm_invocations=int(warm["n"]),
        )
    return figures


def base_env() -> dict[str, str]:
    """This process's environment without AWS settings that could reach a real account."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def measure_lambda(
    modelapi: list[str],
    work: Path,
    scratch: Path,
    runtime: Path,
    example: bytes,
    expected: int,
    *,
    n_cold: int,
    n_warm: int,
) -> dict[str, object]:
    """Build the embedded and the S3 zips; cold starts in fresh processes; warm calls."""
    base = {k: v for k, v in base_env().items() if not k.startswith("MODELAPI_")}
    cache = ["--cache-dir", str(work / "wheels")]
    figures: dict[str, object] = {"python": str(LAMBDA_PYTHON)}

    def check(answer: object) -> bool:
        if not isinstance(answer, dict) or answer.get("statusCode") != 200:
            return False
        body = json.loads(answer["body"])
        return isinstance(body, dict) and body.get("outcome") == expected

    event = write_event(scratch / "event.json", example)
    event_object = json.loads(event.read_text())
    embedded = work / "lambda-embedded"
    sizes = build_zip(
        modelapi, embedded, args=["diabetes", "--embed-model", *cache], env=base, cwd=scratch
    )
    figures["embedded"] = {
        **sizes,
        **lambda_figures(
            "embedded",
            embedded / "lambda.zip",
            event,
            work,
            runtime,
            {},
            check,
            n_cold=n_cold,
            n_warm=n_warm,
        ),
        # The same zip under the runtime interface client, as Lambda starts it.
        **ric_figures(embedded / "lambda.zip", event_object, work, n_cold=n_cold),
    }
    with moto_s3() as aws:
        store = aws.pop("BENCH_STORE")
        env = {**base, **aws}
        for command in (
            ["models", "copy", "diabetes", "--to", store],
            ["models", "alias", "diabetes", "1", "production", "--store", store],
        ):
            subprocess.run(
                [*modelapi, *command], env=env, cwd=scratch, check=True, capture_output=True
            )
        in_s3 = work / "lambda-s3"
        sizes = build_zip(
            modelapi,
            in_s3,
            args=["diabetes@production", "--store", store, *cache],
            env=env,
            cwd=scratch,
        )
        function_env = {**aws, "MODELAPI_STORE": store, "MODELAPI_MODEL": "diabetes@production"}
        figures["s3"] = {
            **sizes,
            **lambda_figures(
                "s3",
                in_s3 / "lambda.zip",
                event,
                work,
                runtime,
                function_env,
                check,
                n_cold=n_cold,
                n_warm=n_warm // 10,
            ),
            **ric_figures(
                in_s3 / "lambda.zip", event_object, work, env=function_env, n_cold=n_cold
            ),
        }
    return figures
