"""How the command line and the dashboard find a Temporal server: the way Temporal's own tools do.

Settings come, strongest first, from explicit options (``--address``, ``--api-key``,
``--tls-cert-path``, ...), then the environment (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*``, ``TEMPORAL_PROFILE``), then a profile of the TOML
config file (``TEMPORAL_CONFIG_FILE``, by default ``~/.config/temporalio/temporal.toml``), then the
local defaults (``localhost:7233``, namespace ``default``). The SDK's ``temporalio.envconfig``
reads the file and the environment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from temporalio.envconfig import ClientConfigProfile
from temporalio.service import TLSConfig

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_NAMESPACE", "Connection", "resolve_connection"]

DEFAULT_ADDRESS = "localhost:7233"
"""Where a local dev server listens."""
DEFAULT_NAMESPACE = "default"
"""The namespace a dev server creates."""


@dataclass(frozen=True)
class Connection:
    """Everything ``Client.connect`` needs to reach one server."""

    address: str
    """host:port of the server."""
    namespace: str
    """The namespace."""
    api_key: str | None = None
    """An API key (Temporal Cloud), sent as a bearer token."""
    tls: bool | TLSConfig = False
    """False for plain text, True for TLS with system roots, or a client certificate setup."""
    rpc_metadata: tuple[tuple[str, str], ...] = ()
    """gRPC headers sent with every call (a profile's ``grpc_meta``)."""

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``temporalio.client.Client.connect`` (after the address)."""
        kwargs: dict[str, Any] = {"namespace": self.namespace, "tls": self.tls}
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.rpc_metadata:
            kwargs["rpc_metadata"] = dict(self.rpc_metadata)
        return kwargs


def resolve_connection(
    *,
    profile: str | None = None,
    config_file: str | None = None,
    address: str | None = None,
    namespace: str | None = None,
    api_key: str | None = None,
    tls: bool | None = None,
    tls_cert_path: str | None = None,
    tls_key_path: str | None = None,
    tls_ca_path: str | None = None,
    tls_server_name: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Connection:
    """The connection from explicit settings over the environment over a config-file profile.

    Args:
        profile: the config file's profile (default: ``TEMPORAL_PROFILE``, else "default").
        config_file: the TOML config file (default: ``TEMPORAL_CONFIG_FILE``, else the
            standard location; a missing default file is fine, a missing named one is not).
        address: host:port, over everything else.
        namespace: the namespace, over everything else.
        api_key: an API key; it turns TLS on unless ``tls`` is False.
        tls: force TLS on or off.
        tls_cert_path: the client certificate (PEM) for mutual TLS.
        tls_key_path: the client certificate's private key (PEM).
        tls_ca_path: a CA certificate (PEM) to trust for the server.
        tls_server_name: the server name to verify (SNI), when it differs from the address.
        env: the environment to read (default: this process's).

    Raises:
        ValueError: a named file does not exist, the profile is not in the file, the file is
            not valid, or only half of a client certificate is given. The message says which.
    """
    if config_file is not None and not Path(config_file).is_file():
        raise ValueError(f"config file {config_file!r} does not exist (--config-file)")
    for option, path in (
        ("--tls-cert-path", tls_cert_path),
        ("--tls-key-path", tls_key_path),
        ("--tls-ca-path", tls_ca_path),
    ):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{option} {path!r} does not exist")
    if (tls_cert_path is None) != (tls_key_path is None):
        raise ValueError("mutual TLS needs both --tls-cert-path and --tls-key-path")
    try:
        loaded = ClientConfigProfile.load(
            profile,
            config_source=Path(config_file) if config_file else None,
            override_env_vars=env,
        )
    except Exception as err:  # the SDK's ConfigError: a bad file or an unknown profile
        where = f" in {config_file}" if config_file else ""
        raise ValueError(f"cannot load the Temporal client profile{where}: {err}") from None
    cfg = loaded.to_client_connect_config()
    key = api_key if api_key is not None else cfg.get("api_key")
    return Connection(
        address=address or cfg.get("target_host") or DEFAULT_ADDRESS,
        namespace=namespace or cfg.get("namespace") or DEFAULT_NAMESPACE,
        api_key=key,
        tls=_tls(
            cfg.get("tls"), key, tls, tls_cert_path, tls_key_path, tls_ca_path, tls_server_name
        ),
        rpc_metadata=tuple(sorted((cfg.get("rpc_metadata") or {}).items())),
    )


def _tls(
    profile_value: bool | TLSConfig | None,
    api_key: str | None,
    tls: bool | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    server_name: str | None,
) -> bool | TLSConfig:
    if tls is False:
        return False
    explicit = cert or ca or server_name
    if not explicit:
        if profile_value is not None:
            return profile_value
        return bool(tls or api_key)
    base = profile_value if isinstance(profile_value, TLSConfig) else TLSConfig()
    return TLSConfig(
        server_root_ca_cert=Path(ca).read_bytes() if ca else base.server_root_ca_cert,
        domain=server_name or base.domain,
        client_cert=Path(cert).read_bytes() if cert else base.client_cert,
        client_private_key=Path(key).read_bytes() if key else base.client_private_key,
    )
