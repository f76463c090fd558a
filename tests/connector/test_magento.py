"""The Magento client against the simulator on a real socket: what each answer means."""

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

from connector.magento import (
    MagentoAuthError,
    MagentoClient,
    MagentoConfigError,
    MagentoConnectionError,
    MagentoDataError,
    MagentoError,
    MagentoInputLimitError,
    MagentoRetryableError,
    MagentoRouteNotFound,
    MagentoServerError,
    MagentoTimeout,
    MagentoUnknownSku,
    classify_response,
    fill_placeholders,
    parse_price_failures,
    readable_message,
)
from sandbox.magento import MagentoSimulator
from sandbox.server import serve

TOKEN = "tok-3f9a7c1e5b2d4a6f8e0c"
BEARER_SETTING = "oauth/consumer/enable_integration_as_bearer"


@pytest.fixture
def magento() -> MagentoSimulator:
    simulator = MagentoSimulator(token=TOKEN)
    simulator.add_product("AALEGO500", price=49.99, sources={"default": 10})
    simulator.add_product("AACOMPUT01", price=999.0, sources={"default": 3})
    simulator.add_product("AAPOWERAID", price=25.0, sources={"default": 0})
    return simulator


@pytest.fixture
def magento_url(magento):
    with serve(magento) as url:
        yield url


@pytest.fixture
def magento_client(magento_url):
    with MagentoClient(magento_url, TOKEN, timeout=5) as client:
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


# --- Test Connection -----------------------------------------------------------------------


def test_connection_test_lists_store_codes_ids_websites_and_currencies(magento, magento_client):
    magento.add_store("fr", 2, website_id=2, base_currency_code="EUR")

    report = magento_client.test_connection()

    assert report.module_count > 0 and report.msi_available
    assert [(s.code, s.id, s.website_id, s.base_currency_code) for s in report.stores] == [
        ("default", 1, 1, "USD"),
        ("fr", 2, 2, "EUR"),
    ]
    summary = report.summary()
    assert "default (id 1, website 1, base currency USD)" in summary
    assert "fr (id 2, website 2, base currency EUR)" in summary
    assert [entry.path for entry in magento.requests] == [
        "/rest/default/V1/modules",
        "/rest/default/V1/store/storeConfigs",
    ]


def test_connection_test_without_msi_says_to_send_single_source_stock(magento, magento_client):
    magento.msi = False

    assert "not installed" in magento_client.test_connection().summary()


def test_store_code_all_reads_with_default_and_writes_with_all(magento, magento_url):
    with MagentoClient(magento_url, TOKEN, store_code="all") as client:
        client.test_connection()
        client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])

    assert [entry.path for entry in magento.requests] == [
        "/rest/default/V1/modules",
        "/rest/default/V1/store/storeConfigs",
        "/rest/all/V1/products/base-prices",
    ]


def test_wrong_token_is_refused_with_the_bearer_token_hint(magento_url):
    with MagentoClient(magento_url, "not-the-token") as client:
        with pytest.raises(MagentoAuthError) as caught:
            client.test_connection()

    error = caught.value
    assert error.status_code == 401 and error.trips_outage_guard and not error.retryable
    assert "The consumer isn't authorized to access Magento_Backend::admin." in str(error)
    assert "Allow OAuth Access Tokens to be used as standalone Bearer tokens" in str(error)
    assert BEARER_SETTING in str(error)


def test_integration_token_refused_as_bearer_gets_the_same_hint(magento, magento_client):
    magento.bearer_disabled = True

    with pytest.raises(MagentoAuthError) as caught:
        magento_client.test_connection()

    assert BEARER_SETTING in str(caught.value)


@pytest.mark.parametrize("suffix", ["/magento", "/shop/index.php"])
def test_wrong_base_url_is_no_route_and_names_the_setting(magento_url, suffix):
    with MagentoClient(magento_url + suffix, TOKEN) as client:
        with pytest.raises(MagentoRouteNotFound) as caught:
            client.test_connection()

    error = caught.value
    assert error.status_code == 404 and error.trips_outage_guard
    assert "Request does not match any route." in str(error)
    assert "Check the Magento base URL" in str(error)


def test_unknown_store_code_is_no_route(magento_url):
    with MagentoClient(magento_url, TOKEN, store_code="nosuchstore") as client:
        with pytest.raises(MagentoRouteNotFound):
            client.test_connection()


def test_pasted_api_address_is_cut_back_to_the_store_root(magento, magento_url):
    with MagentoClient(magento_url + "/rest/default/V1/", TOKEN) as client:
        client.modules()

    assert magento.requests[0].path == "/rest/default/V1/modules"


@pytest.mark.parametrize(
    ("kind", "sentence"),
    [("html", "with a web page instead of JSON"), ("redirect", "(HTTP 302, a login page)")],
)
def test_connection_test_getting_a_page_says_wrong_url(magento, magento_client, kind, sentence):
    magento.fail_next(1, kind)

    with pytest.raises(MagentoRouteNotFound) as caught:
        magento_client.test_connection()

    assert sentence in str(caught.value)
    assert "Check the Magento base URL" in str(caught.value)


@pytest.mark.parametrize("kind", ["html", "redirect"])
def test_a_page_while_sending_is_retried_not_a_config_error(magento, magento_client, kind):
    magento.fail_next(1, kind)

    with pytest.raises(MagentoRetryableError) as caught:
        magento_client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])

    assert caught.value.retryable and not caught.value.trips_outage_guard


@pytest.mark.parametrize("base_url", ["", "shop.example.com", "ftp://shop.example.com"])
def test_base_url_without_http_scheme_is_a_config_error(base_url):
    with MagentoClient(base_url, TOKEN) as client:
        with pytest.raises(MagentoConfigError) as caught:
            client.test_connection()

    assert f"The Magento base URL '{base_url}' is not a valid address" in str(caught.value)
    assert caught.value.trips_outage_guard


def test_closed_port_says_connection_refused():
    port = free_port()

    with MagentoClient(f"http://127.0.0.1:{port}", TOKEN, timeout=2) as client:
        with pytest.raises(MagentoConnectionError) as caught:
            client.test_connection()

    assert str(caught.value).startswith(f"Connection refused by 127.0.0.1:{port}")
    assert caught.value.status_code is None and caught.value.retryable


def test_unresolvable_host_says_could_not_resolve():
    with MagentoClient("https://magento.connector-test.invalid", TOKEN, timeout=5) as client:
        with pytest.raises(MagentoConnectionError) as caught:
            client.test_connection()

    assert str(caught.value).startswith("Could not resolve host 'magento.connector-test.invalid'")


def test_self_signed_certificate_says_tls_verification_failed(magento, self_signed_tls):
    with serve(magento, ssl_context=self_signed_tls) as url:
        with MagentoClient(url, TOKEN, timeout=5) as client:
            with pytest.raises(MagentoConnectionError) as caught:
                client.test_connection()
        port = url.rsplit(":", 1)[1]

        assert str(caught.value).startswith(
            f"TLS certificate verification failed for 127.0.0.1:{port}"
        )
        assert "self-signed" in str(caught.value)

        with MagentoClient(url, TOKEN, timeout=5, verify_tls=False) as client:
            assert client.test_connection().stores


def test_no_answer_within_the_timeout_says_so(magento, magento_url):
    magento.fail_next(1, "timeout")

    with MagentoClient(magento_url, TOKEN, timeout=0.3) as client:
        with pytest.raises(MagentoTimeout) as caught:
            client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])

    assert str(caught.value) == (
        "Magento did not answer within 0.3 s (POST /V1/products/base-prices)."
    )
    assert caught.value.retryable and caught.value.duration_ms >= 300


@pytest.mark.parametrize(("kind", "status"), [("500", 500), ("503", 503)])
def test_server_errors_are_retryable(magento, magento_client, kind, status):
    magento.fail_next(1, kind)

    with pytest.raises(MagentoServerError) as caught:
        magento_client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])

    assert caught.value.status_code == status
    assert caught.value.retryable and not caught.value.trips_outage_guard
    assert caught.value.endpoint == "POST /V1/products/base-prices"


def test_internal_error_keeps_magentos_report_id(magento, magento_client):
    magento.fail_next(1, "500")

    with pytest.raises(MagentoServerError) as caught:
        magento_client.modules()

    assert "Details are available in Magento log file. Report ID: webapi-" in str(caught.value)


def test_maintenance_mode_pauses_sending_instead_of_using_attempts(magento, magento_client):
    magento.maintenance = True

    with pytest.raises(MagentoServerError) as caught:
        magento_client.post_source_items(
            [{"sku": "AALEGO500", "source_code": "default", "quantity": 1, "status": 1}]
        )

    assert str(caught.value).startswith("Magento is in maintenance mode (HTTP 503")
    assert caught.value.trips_outage_guard


def test_a_proxy_503_page_is_retried_and_says_unavailable(magento, magento_client):
    magento.fail_next(1, "503")

    with pytest.raises(MagentoServerError) as caught:
        magento_client.post_source_items(
            [{"sku": "AALEGO500", "source_code": "default", "quantity": 1, "status": 1}]
        )

    assert str(caught.value).startswith("Magento is unavailable (HTTP 503")
    assert not caught.value.trips_outage_guard


def test_dropped_connection_is_retryable(magento, magento_client):
    magento.fail_next(1, "drop")

    with pytest.raises(MagentoConnectionError) as caught:
        magento_client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])

    assert "closed the connection without answering" in str(caught.value)
    assert caught.value.retryable
    magento_client.post_base_prices([{"sku": "AALEGO500", "price": 2, "store_id": 0}])
    assert magento.price_of("AALEGO500") == 2


# --- prices --------------------------------------------------------------------------------


def test_all_prices_saved_answers_no_failures(magento, magento_client):
    result = magento_client.post_base_prices(
        [
            {"sku": "AALEGO500", "price": 45.5, "store_id": 0},
            {"sku": "AACOMPUT01", "price": 899, "store_id": 0},
        ]
    )

    assert result.status_code == 200 and result.failures == []
    assert result.endpoint == "POST /V1/products/base-prices" and result.duration_ms > 0
    assert magento.price_of("AALEGO500") == 45.5 and magento.price_of("AACOMPUT01") == 899


def test_one_invalid_price_fails_only_that_row_and_the_others_are_saved(magento, magento_client):
    result = magento_client.post_base_prices(
        [
            {"sku": "AALEGO500", "price": 45.5, "store_id": 0},
            {"sku": "AACOMPUT01", "price": -5, "store_id": 0},
            {"sku": "AAPOWERAID", "price": 19.99, "store_id": 0},
        ]
    )

    assert [(f.message, f.skus, f.unknown_sku) for f in result.failures] == [
        ("Invalid attribute Price = -5.", ["AACOMPUT01"], False)
    ]
    assert magento.price_of("AALEGO500") == 45.5
    assert magento.price_of("AAPOWERAID") == 19.99
    assert magento.price_of("AACOMPUT01") == 999.0


def test_unknown_sku_price_is_flagged_unknown_sku(magento, magento_client):
    result = magento_client.post_base_prices(
        [
            {"sku": "AALEGO500", "price": 45.5, "store_id": 0},
            {"sku": "NOSUCHSKU", "price": 10, "store_id": 0},
        ]
    )

    assert [(f.message, f.skus, f.unknown_sku) for f in result.failures] == [
        ("Invalid attribute SKU = NOSUCHSKU.", ["NOSUCHSKU"], True)
    ]
    assert magento.price_of("AALEGO500") == 45.5


def test_unknown_price_store_names_the_row(magento, magento_client):
    result = magento_client.post_base_prices([{"sku": "AALEGO500", "price": 45.5, "store_id": 7}])

    assert [(f.message, f.skus, f.unknown_sku) for f in result.failures] == [
        (
            "Requested store is not found. Row ID: SKU = AALEGO500, Store ID: 7.",
            ["AALEGO500"],
            False,
        )
    ]


def test_price_failures_match_skus_case_insensitively():
    rows = [{"sku": "AALego500", "price": 1.0, "store_id": 0}]
    answer = [
        {
            "message": "Invalid attribute %fieldName = %fieldValue.",
            "parameters": ["SKU", "aalego500"],
        }
    ]

    assert parse_price_failures(answer, rows)[0].skus == ["AALego500"]


def test_price_over_the_input_limit_names_the_limit(magento, magento_client):
    magento.input_limit = 20
    rows = [{"sku": "AALEGO500", "price": n, "store_id": 0} for n in range(21)]

    with pytest.raises(MagentoInputLimitError) as caught:
        magento_client.post_base_prices(rows)

    error = caught.value
    assert error.max_items == 20 and error.status_code == 400
    assert not error.retryable and not error.trips_outage_guard
    assert "BasePriceInterface" in str(error) and "Lower the batch count to 20" in str(error)
    assert magento.price_of("AALEGO500") == 49.99
    assert magento_client.post_base_prices(rows[:20]).failures == []


# --- stock ---------------------------------------------------------------------------------


def test_source_items_are_saved(magento, magento_client):
    result = magento_client.post_source_items(
        [
            {"sku": "AALEGO500", "source_code": "default", "quantity": 7, "status": 1},
            {"sku": "AACOMPUT01", "source_code": "default", "quantity": 0, "status": 0},
        ]
    )

    assert result.status_code == 200 and result.endpoint == "POST /V1/inventory/source-items"
    assert magento.quantity_of("AALEGO500") == 7 and magento.quantity_of("AACOMPUT01") == 0
    assert magento.stock_status_of("AACOMPUT01") == 0


def test_one_unknown_sku_refuses_all_source_items_and_saves_nothing(magento, magento_client):
    with pytest.raises(MagentoDataError) as caught:
        magento_client.post_source_items(
            [
                {"sku": "AALEGO500", "source_code": "default", "quantity": 7, "status": 1},
                {"sku": "NOSUCHSKU", "source_code": "default", "quantity": 1, "status": 1},
            ]
        )

    assert caught.value.status_code == 400 and not caught.value.retryable
    assert "Could not save Source Item" in str(caught.value)
    assert magento.quantity_of("AALEGO500") == 10


def test_invalid_source_item_is_refused_with_magentos_validation_errors(magento, magento_client):
    with pytest.raises(MagentoDataError) as caught:
        magento_client.post_source_items(
            [
                {"sku": "AALEGO500", "source_code": "default", "quantity": 7, "status": 1},
                {"sku": "AACOMPUT01", "source_code": "main store", "quantity": 1, "status": 1},
            ]
        )

    assert caught.value.errors == ['"source_code" can not contain whitespaces.']
    assert 'Validation Failed: "source_code" can not contain whitespaces.' in str(caught.value)
    assert magento.quantity_of("AALEGO500") == 10


def test_source_items_over_the_input_limit_name_the_limit(magento, magento_client):
    magento.input_limit = 20
    items = [
        {"sku": "AALEGO500", "source_code": "default", "quantity": n, "status": 1}
        for n in range(21)
    ]

    with pytest.raises(MagentoInputLimitError) as caught:
        magento_client.post_source_items(items)

    assert caught.value.max_items == 20
    assert "SourceItemInterface" in str(caught.value)


def test_legacy_stock_item_is_saved(magento, magento_client):
    result = magento_client.put_stock_item("AAPOWERAID", 12, True)

    assert result.status_code == 200
    assert result.endpoint == "PUT /V1/products/AAPOWERAID/stockItems/1"
    assert magento.quantity_of("AAPOWERAID") == 12 and magento.stock_status_of("AAPOWERAID") == 1


def test_legacy_stock_item_of_unknown_sku_is_unknown_sku(magento, magento_client):
    with pytest.raises(MagentoUnknownSku) as caught:
        magento_client.put_stock_item("NO/SUCH SKU", 1, True)

    error = caught.value
    assert error.sku == "NO/SUCH SKU" and error.status_code == 404
    assert not error.retryable and not error.trips_outage_guard
    assert 'Product with SKU "NO/SUCH SKU" does not exist' in str(error)
    assert magento.requests[-1].path == "/rest/default/V1/products/NO%2FSUCH%20SKU/stockItems/1"


# --- messages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "parameters", "expected"),
    [
        (
            "The consumer isn't authorized to access %resources.",
            {"resources": "Magento_Catalog::catalog"},
            "The consumer isn't authorized to access Magento_Catalog::catalog.",
        ),
        (
            'Product with SKU "%1" does not exist',
            ["AALEGO500"],
            'Product with SKU "AALEGO500" does not exist',
        ),
        ("%1 of %10 from %2", list("abcdefghij"), "a of j from b"),
        (
            "Invalid attribute %fieldName = %fieldValue.",
            ["Price", "-1.5"],
            "Invalid attribute Price = -1.5.",
        ),
        (
            'Maximum items of type "%type" is %max',
            {"type": "X", "max": 20},
            'Maximum items of type "X" is 20',
        ),
        ("%SKU and %SKUs", {"SKU": "a", "SKUs": "b"}, "a and b"),
        ("Left alone: %unknown", {"other": 1}, "Left alone: %unknown"),
        ("No parameters", None, "No parameters"),
    ],
)
def test_placeholders_are_filled_from_objects_and_lists(template, parameters, expected):
    assert fill_placeholders(template, parameters) == expected


def test_error_body_reads_as_one_sentence_with_its_errors():
    body = {
        "message": "Validation Failed",
        "errors": [
            {"message": '"%field" can not be empty.', "parameters": {"field": "sku"}},
            {"message": '"%field" should be numeric.', "parameters": {"field": "quantity"}},
        ],
    }

    assert readable_message(body) == (
        'Validation Failed ("sku" can not be empty.; "quantity" should be numeric.)'
    )


@pytest.mark.parametrize(
    ("status", "body", "error_class"),
    [
        (
            400,
            '{"message":"Maximum items of type \\"%type\\" is %max",'
            '"parameters":{"type":"X","max":20}}',
            MagentoInputLimitError,
        ),
        (
            400,
            '{"message":"Cannot perform GET operation with store code \'all\'"}',
            MagentoConfigError,
        ),
        (400, '{"message":"Validation Failed"}', MagentoDataError),
        (401, '{"message":"x"}', MagentoAuthError),
        (403, "<html>Forbidden</html>", MagentoAuthError),
        (404, '{"message":"Request does not match any route.","trace":null}', MagentoRouteNotFound),
        (404, "<html><title>404 Not Found</title></html>", MagentoRouteNotFound),
        (
            404,
            '{"message":"Product with SKU \\"%1\\" does not exist","parameters":["A"]}',
            MagentoUnknownSku,
        ),
        (429, '{"message":"Too many requests"}', MagentoServerError),
        (502, "<html><title>502 Bad Gateway</title></html>", MagentoServerError),
    ],
)
def test_classify_maps_each_answer_to_one_error(status, body, error_class):
    assert type(classify_response(status, body, endpoint="POST /V1/x")) is error_class


def test_token_never_appears_in_errors_or_reprs(magento, magento_url, magento_client):
    errors: list[MagentoError] = []
    for kind in ["401", "500", "503", "html", "drop"]:
        magento.fail_next(1, kind)
        with pytest.raises(MagentoError) as caught:
            magento_client.post_base_prices([{"sku": "AALEGO500", "price": 1, "store_id": 0}])
        errors.append(caught.value)
    with MagentoClient(magento_url + "/wrong", TOKEN) as wrong_url:
        with pytest.raises(MagentoError) as caught:
            wrong_url.test_connection()
        errors.append(caught.value)
    echoed = classify_response(
        400, f'{{"message":"Bad token %1","parameters":["{TOKEN}"]}}', secrets=[TOKEN]
    )
    errors.append(echoed)

    assert len(errors) == 7
    for error in errors:
        for text in (str(error), repr(error), error.message, *getattr(error, "errors", [])):
            assert TOKEN not in text
    assert TOKEN not in repr(magento_client)
    assert all(entry.headers.get("Authorization") == "<redacted>" for entry in magento.requests)
