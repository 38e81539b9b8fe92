"""`modelapi serve`: the prediction service on uvicorn (uvloop + httptools), with limits.

The HTTP protocol is `server_limits.LimitedHttpToolsProtocol`: uvicorn's httptools protocol
with deadlines, header limits, a pipelining queue cap and a connection cap, all settings.
"""

from __future__ import annotations

import copy
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click
import msgspec

from modelapi.cli.options import ref_argument, store_option
from modelapi.config import ENV_PREFIX, Settings
from modelapi.errors import BundleNotFound, ConfigError
from modelapi.extras import require
from modelapi.store.builtin import BUILTIN_STORE

if TYPE_CHECKING:
    from modelapi.server_limits import ServerLimits
    from modelapi.source import ModelSource

__all__ = ["commands", "run_server"]

_FACTORY = "modelapi.app:create_app"
_RESERVED_FDS = 64


@click.command()
@ref_argument(required=False)
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1; env: MODELAPI_HOST]")
@click.option("--port", type=int, help="Port to listen on; 0 picks a free one.  [default: 8000]")
@click.option("--workers", type=int, help="Server processes.  [default: 1]")
@store_option()
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
    store: str,
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
    for warning in settings.warnings():
        click.echo(f"modelapi: warning: {warning}", err=True)
    uvicorn = require("uvicorn", "server")
    require("httptools", "server")
    loop = "asyncio" if sys.platform == "win32" else "uvloop"
    if loop == "uvloop":
        require("uvloop", "server")
    from modelapi.server_limits import LimitedConfig, ServerLimits

    limits = ServerLimits.of(settings)
    limits = msgspec.structs.replace(limits, max_connections=_connection_cap(limits))
    sock = _listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    options = {
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
        "timeout_keep_alive": settings.keep_alive_timeout_s,
    }
    if settings.workers == 1:
        from modelapi.app import create_app

        app = create_app(settings)
        _refuse_missing(app.source, sock)
        click.echo(f"modelapi: serving {_served(app.source, settings)} on {url} (1 worker)")
        _run_until_interrupted(
            uvicorn.Server(LimitedConfig(app, limits=limits, **options)).run, sock
        )
        return
    from uvicorn.supervisors import Multiprocess

    # Worker processes are spawned fresh and build their app with Settings.from_env(), so the
    # final settings (flags included) travel to them as environment variables.
    _export(settings)
    # Workers load the model themselves; loading it here first refuses a model that does not
    # exist before any worker starts.
    from modelapi.app import load_first
    from modelapi.source import ModelSource as Source

    checked = Source(settings.model, settings.store, store_deadline_s=settings.store_deadline_s)
    load_first(checked)
    _refuse_missing(checked, sock)
    config = LimitedConfig(
        _FACTORY, limits=limits, factory=True, workers=settings.workers, **options
    )
    served = _served(checked, settings)
    click.echo(f"modelapi: serving {served} on {url} ({settings.workers} workers)")
    _run_until_interrupted(lambda sockets: Multiprocess(config, sockets=sockets).run(), sock)


def _run_until_interrupted(run: Callable[[list[socket.socket]], None], sock: socket.socket) -> None:
    # uvicorn re-raises the Ctrl-C it handled once it has shut down; stopping is not an error.
    try:
        run([sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def _connection_cap(limits: ServerLimits) -> int:
    """The connection cap, within the descriptors this process may open (raised if it can)."""
    try:
        import resource
    except ImportError:  # Windows: no descriptor limit to read
        return limits.max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Descriptors beyond the connections: the listening socket, logs, the store, the model.
    wanted = limits.max_connections + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):  # macOS caps it below an infinite hard limit
            pass
    if soft != resource.RLIM_INFINITY and soft < wanted:
        cap = max(1, soft - _RESERVED_FDS)
        click.echo(
            f"modelapi: warning: MODELAPI_MAX_CONNECTIONS lowered to {cap}: this process may"
            f" open only {soft} descriptors (ulimit -n)",
            err=True,
        )
        return cap
    return limits.max_connections


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


def _refuse_missing(source: ModelSource, sock: socket.socket) -> None:
    """Stop before serving a model the store says it does not hold (exit 1, one line).

    A store that cannot be reached yet is not refused: the server starts, answers 503 and
    keeps trying, as it does when the store goes away later.
    """
    if source.predictor is None and source.is_missing:
        sock.close()
        raise BundleNotFound(source.reason)


def _served(source: ModelSource, settings: Settings) -> str:
    """What the start-up line says is served, and from where when it is not the store."""
    predictor = source.predictor
    if predictor is None:
        return f"{source.ref} (not loaded yet; the log says why)"
    if source.served_from == BUILTIN_STORE.uri and source.ref.path is None:
        return f"{predictor.model_id} (built in: {settings.store} has no model {source.ref.name})"
    return predictor.model_id
