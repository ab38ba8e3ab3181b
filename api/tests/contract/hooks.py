"""Schemathesis hooks for the contract run (api/tests/http/contract.rs).

- Every generated call carries its own Idempotency-Key: the document says a
  key reused with another body is refused (422), which is the contract, but a
  fuzzer that draws the same short key for two different bodies would report
  that refusal as "a valid request rejected".
- The `cpf` format: 11 digits whose two check digits are right (the server
  verifies them; JSON Schema cannot say so), with or without punctuation.
"""

import re
import uuid

import schemathesis
from hypothesis import strategies as st


_KEY = re.compile(r"^[!-~]{1,255}$")


@schemathesis.hook
def before_call(context, case, kwargs):
    # Only a valid key is replaced: an invalid one is the point of its case.
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _KEY.match(key):
        headers["Idempotency-Key"] = "st-" + uuid.uuid4().hex


def _check_digit(digits):
    n = len(digits) + 1
    total = sum(d * (n - i) for i, d in enumerate(digits))
    r = (total * 10) % 11
    return 0 if r == 10 else r


def _cpf(digits, punctuated):
    d = list(digits)
    d.append(_check_digit(d))
    d.append(_check_digit(d))
    s = "".join(map(str, d))
    if punctuated:
        return f"{s[0:3]}.{s[3:6]}.{s[6:9]}-{s[9:11]}"
    return s


_nine = st.lists(st.integers(0, 9), min_size=9, max_size=9).filter(lambda d: len(set(d)) > 1)
schemathesis.openapi.format("cpf", st.builds(_cpf, _nine, st.booleans()))
