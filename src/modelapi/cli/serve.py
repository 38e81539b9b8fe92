"""`modelapi serve`: the prediction service on uvicorn (uvloop + httptools)."""

from __future__ import annotations

import copy
import os
import socket
import sys
from collections.abc import Callable

import click
import msgspec

from modelapi.config import ENV_PREFIX, Settings
from modelapi.errors import ConfigError
from modelapi.extras import require

__all__ = ["commands", "run_server"]

_FACTORY = "modelapi.app:create_app"


@click.command()
@click.argument("ref", required=False)
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1; env: MODELAPI_HOST]")
@click.option("--port", type=int, help="Port to listen on; 0 picks a free one.  [default: 8000]")
@click.option("--workers", type=int, help="Server processes.  [default: 1]")
@click.option("--store", help="Model store: a folder or s3://bucket/prefix.  [default: ./models]")
@click.option(
    "--access-log/--no-access-log",
    default=None,
    help="Log one line per request (method, path, status; never bodies).  [default: off]",
)
@click.option(
    "--api-key",
    help="Require this key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY' "
    "(prefer MODELAPI_API_KEY: flags are visible to other local users).",
)
@click.option(
    "--reload-interval-s",
    type=float,
    help="Seconds between checks of an alias for a new version; 0 turns it off.  [default: 30]",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Server log level.  [default: info]",
)
@click.option(
    "--extra-fields",
    type=click.Choice(["ignore", "forbid"]),
    help="A request field that is not a feature: ignore (named in X-Ignored-Fields) or"
    " forbid (422).  [default: ignore]",
)
def serve(
    ref: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    store: str | None,
    access_log: bool | None,
    api_key: str | None,
    reload_interval_s: float | None,
    log_level: str | None,
    extra_fields: str | None,
) -> None:
    """Serve a model over HTTP: REF is name, name:3, name@alias or a bundle folder.

    REF defaults to MODELAPI_MODEL, else the built-in `diabetes` model. Every flag can also
    be set as MODELAPI_<FLAG> (MODELAPI_PORT, MODELAPI_STORE, ...); a flag wins.
    """
    settings = Settings.from_env().replace(
        model=ref,
        host=host,
        port=port,
        workers=workers,
        store=store,
        access_log=access_log,
        api_key=api_key,
        reload_interval_s=reload_interval_s,
        log_level=log_level,
        extra_fields=extra_fields,
    )
    run_server(settings)


def run_server(settings: Settings) -> None:
    """Listen on settings.host:port and serve until interrupted; print where, once."""
    uvicorn = require("uvicorn", "server")
    require("httptools", "server")
    loop = "asyncio" if sys.platform == "win32" else "uvloop"
    if loop == "uvloop":
        require("uvloop", "server")
    sock = _listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    options = {
        "http": "httptools",
        "loop": loop,
        "ws": "none",
        "lifespan": "on",
        "interface": "asgi3",
        "access_log": settings.access_log,
        # X-Forwarded-For and -Proto only change the scope's client and scheme, which modelapi
        # reads nowhere but in the access log; without that log the middleware is a few
        # microseconds per request for nothing.
        "proxy_headers": settings.access_log,
        "log_level": settings.log_level,
        "log_config": _log_config(settings.log_level),
    }
    if settings.workers == 1:
        from modelapi.app import create_app

        app = create_app(settings)
        predictor = app.source.predictor
        model = predictor.model_id if predictor is not None else f"{settings.model} (not loaded)"
        click.echo(f"modelapi: serving {model} on {url} (1 worker)")
        _run_until_interrupted(uvicorn.Server(uvicorn.Config(app, **options)).run, sock)
        return
    from uvicorn.supervisors import Multiprocess

    # Worker processes are spawned fresh and build their app with Settings.from_env(), so the
    # final settings (flags included) travel to them as environment variables.
    _export(settings)
    config = uvicorn.Config(_FACTORY, factory=True, workers=settings.workers, **options)
    click.echo(f"modelapi: serving {settings.model} on {url} ({settings.workers} workers)")
    _run_until_interrupted(lambda sockets: Multiprocess(config, sockets=sockets).run(), sock)


def _run_until_interrupted(run: Callable[[list[socket.socket]], None], sock: socket.socket) -> None:
    # uvicorn re-raises the Ctrl-C it handled once it has shut down; stopping is not an error.
    try:
        run([sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}); choose another --host or --port"
        ) from None
    sock.set_inheritable(True)
    return sock


def _export(settings: Settings) -> None:
    for field in msgspec.structs.fields(settings):
        value = getattr(settings, field.name)
        name = ENV_PREFIX + field.name.upper()
        if value is None:
            os.environ.pop(name, None)
        elif isinstance(value, bool):
            os.environ[name] = "true" if value else "false"
        else:
            os.environ[name] = str(value)


def _log_config(level: str) -> dict[str, object]:
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, object] = copy.deepcopy(LOGGING_CONFIG)
    loggers = config["loggers"]
    assert isinstance(loggers, dict)
    # Worker processes start with no logging set up: route modelapi's own lines (model loads,
    # reloads, errors) through uvicorn's handler there too.
    loggers["modelapi"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


commands: list[click.Command] = [serve]
