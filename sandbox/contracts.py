"""Magento's published REST schema (the subset we use) as request and response checks.

The contract is `shared/contracts/magento-2.4.9-admin-subset.json` (Swagger 2.0, paths and
definitions exactly as Adobe publishes them), found beside the repository
(`<clone>/../shared/…`) or at `MAGENTO_CONTRACT_PATH`. Validators are compiled once per
operation and cached (DESIGN.md section 10).

Only success bodies are checked: Magento's error bodies do not follow the generated schema
(it declares `parameters` a list; Magento often sends an object), see DESIGN.md section 8.

One documented relaxation: the legacy stock item PUT declares every stock item field
required, but Magento merges the fields sent onto the stored item
(StockRegistry::updateStockItemBySku), so a partial `stockItem` is how the API is used;
for that body the `required` lists below `stockItem` are not enforced.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator

CONTRACT_PATH_VARIABLE = "MAGENTO_CONTRACT_PATH"
CONTRACT_FILE = "magento-2.4.9-admin-subset.json"
DEFAULT_CONTRACT_PATH = Path(__file__).resolve().parents[2] / "shared" / "contracts" / CONTRACT_FILE

PARTIAL_BODIES = {("PUT", "/V1/products/{productSku}/stockItems/{itemId}")}


class ContractError(ValueError):
    """A body that does not match Magento's published schema; `errors` lists each mismatch."""

    def __init__(self, operation: str, errors: list[str]) -> None:
        super().__init__(f"{operation} does not match the contract: " + "; ".join(errors))
        self.errors = errors


def contract_path() -> Path:
    return Path(os.environ.get(CONTRACT_PATH_VARIABLE) or DEFAULT_CONTRACT_PATH)


@lru_cache(maxsize=4)
def load_contract(path: Path | None = None) -> dict[str, Any]:
    path = path or contract_path()
    if not path.exists():
        raise FileNotFoundError(
            f"Magento contract not found at {path}; set {CONTRACT_PATH_VARIABLE} to its location."
        )
    return json.loads(path.read_text(encoding="utf-8"))


def _operation(method: str, path_template: str) -> dict[str, Any]:
    paths = load_contract()["paths"]
    try:
        return paths[path_template][method.lower()]
    except KeyError:
        raise KeyError(f"{method.upper()} {path_template} is not in the contract") from None


def _compile(schema: dict[str, Any]) -> Draft4Validator:
    # `$ref`s point at `#/definitions/…` of the whole document: carry the definitions along.
    return Draft4Validator({**schema, "definitions": load_contract()["definitions"]})


def _drop_required(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            key: _drop_required(value)
            for key, value in schema.items()
            if not (key == "required" and isinstance(value, list))
        }
    if isinstance(schema, list):
        return [_drop_required(item) for item in schema]
    return schema


@cache
def request_validator(method: str, path_template: str) -> Draft4Validator:
    method = method.upper()
    operation = _operation(method, path_template)
    body = next((p for p in operation.get("parameters", []) if p.get("in") == "body"), None)
    if body is None:
        raise KeyError(f"{method} {path_template} takes no body")
    schema = copy.deepcopy(body["schema"])
    if (method, path_template) in PARTIAL_BODIES:
        definitions = load_contract()["definitions"]
        for name, prop in schema.get("properties", {}).items():
            ref = prop.get("$ref", "")
            if ref.startswith("#/definitions/"):
                schema["properties"][name] = _drop_required(definitions[ref.rsplit("/", 1)[1]])
    return _compile(schema)


@cache
def response_validator(method: str, path_template: str, status: int) -> Draft4Validator | None:
    """The validator of a declared success answer, or None where the contract declares none
    (a `void` operation such as POST source-items: Magento answers `[]`)."""
    response = _operation(method, path_template).get("responses", {}).get(str(status))
    if response is None or "schema" not in response:
        return None
    return _compile(response["schema"])


def _check(validator: Draft4Validator, body: Any, operation: str) -> None:
    errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
    if errors:
        raise ContractError(
            operation,
            [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in errors],
        )


def validate_request(method: str, path_template: str, body: Any) -> None:
    """Raise `ContractError` if a request body does not match the contract."""
    operation = f"{method.upper()} {path_template} request"
    _check(request_validator(method.upper(), path_template), body, operation)


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """Raise `ContractError` if a success answer does not match the contract."""
    operation = f"{method.upper()} {path_template} {status} response"
    if not 200 <= status < 300:
        raise ValueError(f"{operation}: only success answers are checked against the contract")
    validator = response_validator(method.upper(), path_template, status)
    if validator is None:
        if body not in (None, []):
            raise ContractError(operation, ["the contract declares no body; Magento answers []"])
        return
    _check(validator, body, operation)


@cache
def _templates() -> list[tuple[str, str, re.Pattern[str]]]:
    templates = []
    for template, operations in load_contract()["paths"].items():
        pattern = re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)))
        templates += [(method.upper(), template, pattern) for method in operations]
    return templates


def template_for(method: str, path: str) -> str:
    """The contract's path template for a concrete request path.

    `/rest/default/V1/products/A%2F1/stockItems/1` → `/V1/products/{productSku}/stockItems/{itemId}`
    """
    path = path.split("?", 1)[0]
    path = re.sub(r"^/rest(/[^/]+)?(?=/V1/)", "", path)
    method = method.upper()
    matches = [t for m, t, pattern in _templates() if m == method and pattern.fullmatch(path)]
    if not matches:
        raise KeyError(f"{method} {path} matches no path of the contract")
    # A literal path wins over a template that would also match (…/base-prices vs …/{sku}).
    return min(matches, key=lambda template: template.count("{"))
