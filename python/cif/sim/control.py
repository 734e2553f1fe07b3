"""Live requests on a market-stream connection: SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS,
SET_PROPERTY and GET_PROPERTY, with Binance's reply and error shapes.

Replies are ``{"result":..,"id":..}``; errors are ``{"error":{"code":..,"msg":..},"id":..}``
with Binance's documented codes: 0 unknown property, 1 invalid value type, 2 invalid
request, 3 invalid JSON. Binance's exact messages come from its (Rust) JSON parser and
mention line/column positions; the simulator keeps the documented prefixes
("Invalid request: ...", "Invalid JSON: ...") and its own wording after them.

Assumptions where Binance's documentation is silent: a stream name that is not one of the
served kinds of a served symbol is rejected with code 2 ("Invalid request: invalid stream
name ..."); subscribing beyond 1024 streams is rejected with code 2 and changes nothing;
request ids may be an unsigned integer, a string of up to 36 characters, or null.
"""

from __future__ import annotations

import json
from typing import Any

from cif.sim.session import Session
from cif.sim.streams import MAX_STREAMS_PER_CONNECTION, Hub

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def error_reply(code: int, msg: str, request_id: Any = None) -> bytes:
    """Binance's WebSocket error shape."""
    return _dumps({"error": {"code": code, "msg": msg}, "id": request_id})


def _valid_id(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**64
    return isinstance(value, str) and len(value) <= 36


def handle_request(raw: str | bytes, session: Session, hub: Hub) -> bytes:
    """Apply one client request to ``session`` and return the reply frame."""
    try:
        req = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error_reply(3, f"Invalid JSON: {exc}")
    if not isinstance(req, dict):
        return error_reply(2, "Invalid request: expected a JSON object")
    request_id = req.get("id")
    if not _valid_id(request_id):
        return error_reply(2, "Invalid request: request ID must be an unsigned integer")
    unknown = set(req) - {"method", "params", "id"}
    if unknown:
        return error_reply(2, f"Invalid request: unknown field `{sorted(unknown)[0]}`", request_id)
    method = req.get("method")
    if method is None:
        return error_reply(2, "Invalid request: missing field `method`", request_id)
    if method not in _METHODS:
        expected = ", ".join(f"`{m}`" for m in _METHODS)
        msg = f"Invalid request: unknown variant `{method}`, expected one of {expected}"
        return error_reply(2, msg, request_id)
    params = req.get("params", [])
    if not isinstance(params, list):
        return error_reply(2, "Invalid request: params must be an array", request_id)

    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if not params or not all(isinstance(p, str) for p in params):
            return error_reply(
                2, "Invalid request: params must be a non-empty array of stream names", request_id
            )
        for name in params:
            if not hub.is_served(name):
                return error_reply(2, f"Invalid request: invalid stream name `{name}`", request_id)
        if method == "SUBSCRIBE":
            new = {p for p in params if p not in session.streams}
            if len(session.streams) + len(new) > MAX_STREAMS_PER_CONNECTION:
                return error_reply(
                    2,
                    "Invalid request: too many streams; a connection can listen to at most "
                    f"{MAX_STREAMS_PER_CONNECTION} streams",
                    request_id,
                )
            for name in params:
                hub.subscribe(session, name)
        else:
            for name in params:
                hub.unsubscribe(session, name)
        return _dumps({"result": None, "id": request_id})

    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return error_reply(2, "Invalid request: too many parameters", request_id)
        return _dumps({"result": list(session.streams), "id": request_id})

    # SET_PROPERTY / GET_PROPERTY: the only property is "combined".
    if not params or not isinstance(params[0], str):
        return error_reply(2, "Invalid request: property name must be a string", request_id)
    if params[0] != "combined":
        return error_reply(0, "Unknown property", request_id)
    if method == "GET_PROPERTY":
        if len(params) != 1:
            return error_reply(2, "Invalid request: too many parameters", request_id)
        return _dumps({"result": session.combined, "id": request_id})
    if len(params) != 2:
        return error_reply(2, "Invalid request: wrong number of parameters", request_id)
    if not isinstance(params[1], bool):
        return error_reply(1, "Invalid value type: expected Boolean", request_id)
    session.combined = params[1]
    return _dumps({"result": None, "id": request_id})
