"""A Magento simulator on a real socket, and the failures Test Connection must explain."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.management.sql import emit_post_migrate_signal

from sandbox.acumatica import AcumaticaSimulator
from sandbox.magento import MagentoSimulator
from sandbox.server import serve
from setup_params.models import Profile, get_profile

MAGENTO_TOKEN = "magento-token-7d41c9a0e2b84f16"
ACUMATICA_USERNAME = "admin"
ACUMATICA_PASSWORD = "acu-password-5e1f9c3b7d"
ACUMATICA_TENANT = "MyStore"
ACUMATICA_CLIENT_SECRET = "acu-client-secret-8b2d6f0a4c"


@pytest.fixture
def committed_defaults(transactional_db):
    """For tests whose subprocess must see committed rows: permissions, roles, the default
    profile, whatever transactional test ran before.

    Not `serialized_rollback`: restoring the serialized rows after a plain transactional
    test's flush (whose post_migrate made them again under new ids) fails on unique names.
    """
    emit_post_migrate_signal(verbosity=0, interactive=False, db="default")


@pytest.fixture
def magento() -> MagentoSimulator:
    simulator = MagentoSimulator(token=MAGENTO_TOKEN)
    simulator.add_store("fr", 2, website_id=2, base_currency_code="EUR")
    return simulator


@pytest.fixture
def magento_url(magento):
    with serve(magento) as url:
        yield url


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def self_signed_tls(tmp_path) -> ssl.SSLContext:
    """A server TLS context with a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture
def tls_magento_url(magento, self_signed_tls):
    with serve(magento, ssl_context=self_signed_tls) as url:
        yield url


@pytest.fixture
def acumatica() -> AcumaticaSimulator:
    """An Acumatica instance with one API seat, as a trial license has."""
    return AcumaticaSimulator(
        api_seats=1,
        username=ACUMATICA_USERNAME,
        password=ACUMATICA_PASSWORD,
        tenant=ACUMATICA_TENANT,
        client_secret=ACUMATICA_CLIENT_SECRET,
    )


@pytest.fixture
def acumatica_url(acumatica):
    with serve(acumatica) as url:
        yield url


def connect_acumatica(url: str, *, name: str = "default", **changes) -> Profile:
    """Store working cookie sign-in settings for the simulator (with `changes` applied)."""
    settings = get_profile(name).acumatica_settings
    values = {
        "instance_url": url,
        "tenant": ACUMATICA_TENANT,
        "username": ACUMATICA_USERNAME,
        "password": ACUMATICA_PASSWORD,
        "timeout": 5,
        **changes,
    }
    for field, value in values.items():
        setattr(settings, field, value)
    settings.save()
    return get_profile(name)
