"""The options and helpers every command shares.

How to reach Temporal, the batch ID argument, JSON and rate values, and running a command's
coroutine.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
from temporalio.service import RPCError

from .._client.connect import DEFAULT_ADDRESS, DEFAULT_NAMESPACE, resolve_connection
from .._read import CliError, Target

__all__ = [
    "batch_id_argument",
    "check_json",
    "connection_options",
    "page_timeout_option",
    "rate_option",
    "run",
]

F = TypeVar("F", bound=Callable[..., Any])


page_timeout_option = click.option(
    "--page-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=300.0,
    show_default=True,
    help="Seconds one page attempt may run.",
)
"""``--page-timeout``: of a batch (``start``) or of every batch of a series (``series create``)."""


def connection_options(fn: F) -> F:
    """Add the options that say how to reach Temporal, and ``--ui-url``.

    The options are named as Temporal's own CLI names them; the command gets them resolved as
    ``target``.
    """

    @functools.wraps(fn)
    def wrapper(
        *args: Any,
        profile: str | None,
        config_file: str | None,
        address: str | None,
        namespace: str | None,
        api_key: str | None,
        tls: bool | None,
        tls_cert_path: str | None,
        tls_key_path: str | None,
        tls_ca_path: str | None,
        tls_server_name: str | None,
        ui_url: str,
        **kwargs: Any,
    ) -> Any:
        try:
            connection = resolve_connection(
                profile=profile,
                config_file=config_file,
                address=address,
                namespace=namespace,
                api_key=api_key,
                tls=tls,
                tls_cert_path=tls_cert_path,
                tls_key_path=tls_key_path,
                tls_ca_path=tls_ca_path,
                tls_server_name=tls_server_name,
            )
        except ValueError as err:
            raise CliError(str(err)) from None
        return fn(*args, target=Target.from_connection(connection, ui_url), **kwargs)

    path = click.Path(dir_okay=False)
    options = [
        click.option(
            "--address",
            default=None,
            help="host:port of the Temporal server [env TEMPORAL_ADDRESS; default "
            f"{DEFAULT_ADDRESS}].",
        ),
        click.option(
            "--namespace",
            default=None,
            help=f"Temporal namespace [env TEMPORAL_NAMESPACE; default {DEFAULT_NAMESPACE}].",
        ),
        click.option(
            "--profile",
            default=None,
            help="Profile of the Temporal config file [env TEMPORAL_PROFILE; default 'default'].",
        ),
        click.option(
            "--config-file",
            type=path,
            default=None,
            help="Temporal config file (TOML) [env TEMPORAL_CONFIG_FILE; default "
            "~/.config/temporalio/temporal.toml].",
        ),
        click.option(
            "--api-key",
            default=None,
            help="API key, e.g. for Temporal Cloud; turns TLS on [env TEMPORAL_API_KEY].",
        ),
        click.option(
            "--tls/--no-tls",
            default=None,
            help="Connect with TLS, or force plain text [env TEMPORAL_TLS].",
        ),
        click.option(
            "--tls-cert-path",
            type=path,
            default=None,
            help="Client certificate (PEM) for mutual TLS [env TEMPORAL_TLS_CLIENT_CERT_PATH].",
        ),
        click.option(
            "--tls-key-path",
            type=path,
            default=None,
            help="Client certificate's key (PEM) [env TEMPORAL_TLS_CLIENT_KEY_PATH].",
        ),
        click.option(
            "--tls-ca-path",
            type=path,
            default=None,
            help="CA certificate (PEM) to trust [env TEMPORAL_TLS_SERVER_CA_CERT_PATH].",
        ),
        click.option(
            "--tls-server-name",
            default=None,
            help="Server name to verify [env TEMPORAL_TLS_SERVER_NAME].",
        ),
        click.option(
            "--ui-url",
            envvar="TEMPORAL_UI_URL",
            default="http://localhost:8233",
            show_default=True,
            help="Base URL of the Temporal Web UI, for links [env TEMPORAL_UI_URL].",
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def run(target: Target | None, main: Coroutine[Any, Any, None]) -> None:
    """Run a command's coroutine; a request the server refuses becomes one clear line."""
    try:
        asyncio.run(main)
    except RPCError as err:
        raise (target.rpc_error(err) if target else CliError(err.message)) from None


def batch_id_argument(fn: F) -> F:
    """Add the batch ID argument (``ID``)."""
    return click.argument("batch_id", metavar="ID")(fn)


def check_json(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Check that an option's value is JSON (a click callback)."""
    if value is not None:
        try:
            json.loads(value)
        except ValueError as err:
            raise click.BadParameter(f"not valid JSON ({err}): {value!r}") from None
    return value


def rate_option(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    """A rate: a positive number, or "none" to lift the limit; False when not given."""
    if value is None:
        return False
    if value.strip().lower() == "none":
        return None
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate == float("inf"):
        raise click.BadParameter(f"{value!r}: give a positive number, or none to lift the limit")
    return rate
