"""Connecting the way Temporal's tools do: options over the environment over a config profile."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch_orchestra import EmbeddedTemporal
from batch_orchestra._client.connect import resolve_connection
from batch_orchestra.cli import cli

# The runner's environment: none of Temporal's variables, so only the file and options count.
CLEAN_ENV: dict[str, str | None] = {
    name: None
    for name in (
        "TEMPORAL_ADDRESS",
        "TEMPORAL_NAMESPACE",
        "TEMPORAL_API_KEY",
        "TEMPORAL_PROFILE",
        "TEMPORAL_CONFIG_FILE",
        "TEMPORAL_TLS",
        "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "TEMPORAL_TLS_CLIENT_KEY_PATH",
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "TEMPORAL_TLS_SERVER_NAME",
    )
}


def profiles(tmp_path: Path, address: str, namespace: str) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(
        f'[profile.dev]\naddress = "{address}"\nnamespace = "{namespace}"\n\n'
        '[profile.cloud]\naddress = "my-ns.a1b2c.tmprl.cloud:7233"\nnamespace = "my-ns.a1b2c"\n'
        'api_key = "cloud-key"\n\n'
        '[profile.broken]\naddress = "127.0.0.1:1"\n'
    )
    return path


def test_options_over_environment_over_profile(tmp_path: Path) -> None:
    path = profiles(tmp_path, "dev-host:7233", "dev-ns")
    dev = resolve_connection(profile="dev", config_file=str(path), env={})
    assert (dev.address, dev.namespace, dev.api_key, dev.tls) == (
        "dev-host:7233",
        "dev-ns",
        None,
        False,
    )
    cloud = resolve_connection(profile="cloud", config_file=str(path), env={})
    assert cloud.api_key == "cloud-key" and cloud.tls is True
    assert cloud.connect_kwargs()["api_key"] == "cloud-key"
    env = {"TEMPORAL_ADDRESS": "env-host:7233", "TEMPORAL_PROFILE": "dev"}
    from_env = resolve_connection(config_file=str(path), env=env)
    assert (from_env.address, from_env.namespace) == ("env-host:7233", "dev-ns")
    explicit = resolve_connection(
        config_file=str(path),
        env=env,
        address="cli-host:1",
        namespace="cli-ns",
        tls=False,
        api_key="k",
    )
    assert (explicit.address, explicit.namespace, explicit.tls) == ("cli-host:1", "cli-ns", False)
    assert resolve_connection(env={}) == resolve_connection(env={}, profile=None)
    assert resolve_connection(env={}).address == "localhost:7233"
    with pytest.raises(ValueError, match="Profile 'nope' not found"):
        resolve_connection(profile="nope", config_file=str(path), env={})
    with pytest.raises(ValueError, match="does not exist"):
        resolve_connection(config_file=str(tmp_path / "missing.toml"), env={})
    cert = tmp_path / "client.pem"
    cert.write_text("not really a certificate")
    with pytest.raises(ValueError, match="needs both --tls-cert-path and --tls-key-path"):
        resolve_connection(tls_cert_path=str(cert), env={})
    mtls = resolve_connection(
        tls_cert_path=str(cert), tls_key_path=str(cert), tls_server_name="srv", env={}
    )
    assert not isinstance(mtls.tls, bool)
    assert mtls.tls.client_cert == b"not really a certificate" and mtls.tls.domain == "srv"


async def invoke(*args: str) -> Result:
    runner = CliRunner(env={**CLEAN_ENV, "COLUMNS": "200"})
    return await asyncio.to_thread(runner.invoke, cli, list(args))


async def test_cli_connects_through_a_profile(temporal: EmbeddedTemporal, tmp_path: Path) -> None:
    path = str(profiles(tmp_path, temporal.address, temporal.namespace))
    # The server answers, in the profile's namespace, that there is no such batch.
    missing = f"error: no batch with ID 'absent' in namespace {temporal.namespace!r}\n"
    found = await invoke("status", "absent", "--config-file", path, "--profile", "dev")
    assert (found.exit_code, found.stderr) == (1, missing)
    # An API key (sent as a bearer token; the dev server ignores it) with TLS forced off.
    keyed = await invoke(
        "status",
        "absent",
        "--config-file",
        path,
        "--profile",
        "dev",
        "--api-key",
        "secret",
        "--no-tls",
    )
    assert (keyed.exit_code, keyed.stderr) == (1, missing)
    # The same through TEMPORAL_PROFILE and TEMPORAL_CONFIG_FILE.
    runner = CliRunner(env={**CLEAN_ENV, "TEMPORAL_PROFILE": "dev", "TEMPORAL_CONFIG_FILE": path})
    by_env = await asyncio.to_thread(runner.invoke, cli, ["status", "absent"])
    assert (by_env.exit_code, by_env.stderr) == (1, missing)
    unknown = await invoke("list", "--config-file", path, "--profile", "nope")
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        f"error: cannot load the Temporal client profile in {path}: Profile 'nope' not found\n"
    )
    broken = await invoke("list", "--config-file", path, "--profile", "broken")
    assert broken.exit_code == 1 and "cannot reach a Temporal server at 127.0.0.1:1" in (
        broken.stderr
    )


async def test_embedded_temporal_uses_environment_configuration(
    temporal: EmbeddedTemporal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # TEMPORAL_ADDRESS points EmbeddedTemporal at a running server; the API key and TLS come
    # from the same environment configuration (here a key the dev server ignores, TLS off).
    monkeypatch.setenv("TEMPORAL_ADDRESS", temporal.address)
    monkeypatch.setenv("TEMPORAL_NAMESPACE", temporal.namespace)
    monkeypatch.setenv("TEMPORAL_API_KEY", "secret")
    monkeypatch.setenv("TEMPORAL_TLS", "false")
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    async with EmbeddedTemporal() as external:
        assert not external.is_embedded
        assert external.client.api_key == "secret"
        assert external.client.service_client.config.tls is False
        assert (await external.client.count_workflows()).count >= 0
