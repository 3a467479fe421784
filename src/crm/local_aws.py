"""The local AWS endpoint: moto's server application, with DynamoDB requests one at a time.

DynamoDB applies each write, condition checks included, atomically. moto checks a condition and
then applies the write in two Python steps, so two concurrent requests could both pass the same
condition; serialising DynamoDB requests restores the guarantee that the lead service's race-free
dedupe, caps and assignment rely on. Other services (SQS long polls) are left concurrent.
A failed `TransactWriteItems` is also rolled back from a copy of the items it names instead of
moto's copy of every table it touches (`item_level_transactions`), and the items a read returns
are written as JSON directly instead of through moto's generic serialiser (`direct_item_responses`),
and user pools import their signing key when they first sign a token (`cognito_key_on_first_use`).
Run as `python -m crm.local_aws --host H --port P`.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialised(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            # Materialise the body inside the lock: the work happens while it is produced.
            return list(app(environ, start_response))

    return application


def item_level_transactions() -> None:
    """moto backs up every table a TransactWriteItems touches (a deep copy, so a write costs more
    the more data there is) to roll back on failure. With DynamoDB requests serialised here, an
    undo log of the items the transaction names does the same at a cost independent of the data:
    each named item is copied before, and put back (or removed) if the transaction fails."""
    import copy
    import types

    from moto.dynamodb import models

    original = models.DynamoDBBackend.transact_write_items

    def deepcopy_except_tables(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, models.Table) else copy.deepcopy(value, memo)

    tables_kept = types.SimpleNamespace(deepcopy=deepcopy_except_tables)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        undo = [before for entry in transact_items if (before := _item_before(self, entry)) is not None]
        models.copy = tables_kept  # type: ignore[assignment]
        try:
            original(self, transact_items)
        except Exception:
            for before in reversed(undo):
                _put_back(*before)
            raise
        finally:
            models.copy = copy

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _item_before(backend: Any, entry: dict[str, Any]) -> tuple[Any, Any, Any, Any] | None:
    """(table, hash key, range key, a copy of the item now) of one transaction item; None
    for an item moto refuses before writing anything."""
    import copy

    from moto.dynamodb.models.dynamo_type import DynamoType

    op_type, op = next(iter(entry.items()))
    table = backend.tables.get(op.get("TableName"))
    attributes = op.get("Item") if op_type == "Put" else op.get("Key")
    if table is None or not attributes or table.hash_key_attr not in attributes:
        return None
    hash_value = DynamoType(attributes[table.hash_key_attr])
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in attributes:
            return None
        range_value = DynamoType(attributes[table.range_key_attr])
    return table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))


def _put_back(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    if item is None:
        table.delete_item(hash_value, range_value)
    elif range_value is not None:
        table.items[hash_value][range_value] = item
    else:
        table.items[hash_value] = item


# DynamoDB reads whose results moto already holds in DynamoDB's JSON wire format.
ITEM_READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})


def direct_item_responses() -> None:
    """moto serialises every response by walking the API's shape member by member, looking up
    aliases for every attribute of every item: about 5 ms of its time per lead returned, so a
    Query of 50 leads cost 250 ms. The results of the item reads are already DynamoDB's JSON wire
    format (attribute values as `{"S": ...}`, numbers as strings), so they are written with
    `json.dumps`, byte for byte what the serialiser writes for them; anything JSON cannot write
    (binary attributes) still goes through the serialiser."""
    from moto.dynamodb.responses import DynamoResult

    serialise = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if context.operation_model.name in ITEM_READS:
            try:
                body = json.dumps(self.result)
            except TypeError:
                return serialise(self, context)
            return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return serialise(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def cognito_key_on_first_use() -> None:
    """Every moto user pool signs its tokens with the same RSA key (moto's own, whose public half
    it serves at /<pool id>/.well-known/jwks.json) and imports it when the pool is created:
    recovering the key's primes costs about 0.2 s of this process's CPU, while `crm serve` starts
    and writes its demo data. The key is imported once instead, when a token is first signed."""
    import functools
    import types

    from joserfc import jwk
    from moto.cognitoidp import models

    @functools.cache
    def signing_key() -> Any:
        return jwk.RSAKey.import_key(models.load_resource("cognitoidp/resources/jwks-private.json"))

    # CognitoIdpUserPool.__init__ runs `self.json_web_key = jwk.RSAKey.import_key(...)`.
    models.jwk = types.SimpleNamespace(RSAKey=types.SimpleNamespace(import_key=lambda data: None))  # type: ignore[assignment]
    models.CognitoIdpUserPool.json_web_key = property(  # type: ignore[assignment]
        lambda self: signing_key(), lambda self, value: None
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server with serialised requests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    # A pool's id and its clients' ids derive from their names and settings, as stable across
    # restarts as a deployed stack's: the dashboard's configuration and the issuer stay the same.
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")
    item_level_transactions()
    direct_item_responses()
    cognito_key_on_first_use()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
