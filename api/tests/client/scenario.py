"""Drives chargeledger through a client generated from schemas/openapi.json
(openapi-python-client), using only the generated API: register a terminal,
create and authorize a payment intent, read both back, one error path.

Usage: python scenario.py BASE_URL TOKEN   (the generated package on PYTHONPATH)
Exits non-zero on the first mismatch; prints "N passed" at the end.
"""

import sys

from chargeledger_client import AuthenticatedClient
from chargeledger_client.api.payments import authorize, create, get_payment_intent, list_payment_intents
from chargeledger_client.api.terminals import get_terminal, list_terminals, register_terminal
from chargeledger_client.models import (
    AuthorizeRequest,
    ConnectorRequest,
    ConnectorRequestType,
    CreateIntentRequest,
    CreateIntentRequestMethod,
    CustomerInput,
    IntentPage,
    IntentView,
    Problem,
    RegisterTerminalRequest,
    RegisterTerminalRequestOcppVersion,
    TerminalPage,
    TerminalView,
)

passed = 0


def check(what, ok, detail=""):
    global passed
    if not ok:
        print(f"FAILED: {what} {detail}")
        sys.exit(1)
    passed += 1


base_url, token = sys.argv[1], sys.argv[2]
client = AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True)

def terminal(id_, vendor, version, connector_type, power_w, password):
    return RegisterTerminalRequest(
        id=id_,
        station_id=10,
        vendor=vendor,
        model="Terra AC",
        ocpp_version=RegisterTerminalRequestOcppVersion(version),
        connectors=[ConnectorRequest(id=1, type_=connector_type, max_power_w=power_w)],
        charger_password=password,
    )


body = terminal("EVSE-CLIENT-1", "ABB", "1.6", ConnectorRequestType.TYPE2, 22000, "a-long-enough-secret-1")
r = register_terminal.sync_detailed(client=client, body=body, idempotency_key="client-reg-1")
check("register: 201 TerminalView", r.status_code == 201 and isinstance(r.parsed, TerminalView), r.content)
check("register: the terminal", r.parsed.id == "EVSE-CLIENT-1" and r.parsed.has_password)
again = register_terminal.sync_detailed(client=client, body=body, idempotency_key="client-reg-1")
check("register again: replayed", again.status_code == 201 and again.headers.get("idempotent-replayed") == "true")

t = get_terminal.sync_detailed(client=client, id="EVSE-CLIENT-1")
check("get terminal", t.status_code == 200 and isinstance(t.parsed, TerminalView) and t.parsed.station_id == 10)
page = list_terminals.sync_detailed(client=client, limit=10)
check("list terminals", isinstance(page.parsed, TerminalPage) and [x.id for x in page.parsed.data] == ["EVSE-CLIENT-1"])

missing = get_terminal.sync_detailed(client=client, id="EVSE-NOPE")
check(
    "unknown terminal: a problem",
    missing.status_code == 404
    and isinstance(missing.parsed, Problem)
    and missing.parsed.status == 404
    and missing.headers.get("content-type", "").startswith("application/problem+json"),
    missing.content,
)

intent = create.sync_detailed(
    client=client,
    body=CreateIntentRequest(
        amount=5000,
        method=CreateIntentRequestMethod.CREDIT_CARD,
        customer=CustomerInput(email="driver@company.com", cpf="529.982.247-25"),
    ),
    idempotency_key="client-pi-1",
)
check("create intent: 201", intent.status_code == 201 and isinstance(intent.parsed, IntentView), intent.content)
check("create intent: waits for authorization", intent.parsed.status == "requires_authorization", intent.parsed.status)
intent_id = str(intent.parsed.id)

auth = authorize.sync_detailed(client=client, id=intent.parsed.id, body=AuthorizeRequest(card_token="tok_visa"), idempotency_key="client-auth-1")
check("authorize: 200", auth.status_code == 200 and isinstance(auth.parsed, IntentView), auth.content)
check("authorize: requires capture", auth.parsed.status == "requires_capture", auth.parsed.status)

got = get_payment_intent.sync_detailed(client=client, id=intent.parsed.id)
check("get intent", isinstance(got.parsed, IntentView) and got.parsed.amount_capturable == 5000, got.content)
intents = list_payment_intents.sync_detailed(client=client, limit=10)
check("list intents", isinstance(intents.parsed, IntentPage) and intent_id in [str(x.id) for x in intents.parsed.data])
bad_limit = list_payment_intents.sync_detailed(client=client, limit=201)
check("limit over the maximum: 422 problem", bad_limit.status_code == 422 and isinstance(bad_limit.parsed, Problem), bad_limit.content)

blank = terminal("EVSE-CLIENT-2", "   ", "2.0.1", ConnectorRequestType.CCS2, 50000, "a-long-enough-secret-2")
refused = register_terminal.sync_detailed(client=client, body=blank, idempotency_key="client-reg-2")
check(
    "a blank vendor: 422 naming it",
    refused.status_code == 422
    and isinstance(refused.parsed, Problem)
    and [e.field for e in refused.parsed.errors] == ["vendor"],
    refused.content,
)

print(f"{passed} passed")
