"""Property-based fuzzing of the whole OpenAPI schema (schemathesis): no input gives a 5xx.

Bounded so it runs in well under a minute: a few examples per operation, no deadline.
The key is an admin bound to group 'fuzz' (so admin routes are exercised too);
the sample corpus stays in group 'default', out of the fuzzer's reach.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
# imported after the skip above (E402): without schemathesis the module is skipped, not broken
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(scope="module")
def fuzz_schema(api, http):
    # the running server reads keys from memory; register the fuzz key through the admin API
    created = http.post(
        "/v1/admin/keys", json={"groups": ["fuzz"], "admin": True, "name": "fuzz"}, headers=api.headers(api.admin)
    ).json()
    http.post(
        "/v1/ingest",
        json={
            "group": "fuzz",
            "documents": [{"name": "seed.txt", "text": "Ada Ferrand founded the Ferrand Works in Lyon in 1902."}],
        },
        headers=api.headers(created["key"]),
    )
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    schema.fuzz_key = created["key"]
    return schema


def test_no_server_errors(api, fuzz_schema):
    # schemathesis' pytest plugin does not load with this pytest; drive its strategies directly
    from hypothesis import given

    failures = []
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) >= 12  # every route of the schema is fuzzed
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        def check(case):
            headers = {"Authorization": f"Bearer {fuzz_schema.fuzz_key}"}
            response = case.call(base_url=api.url, headers=headers, timeout=60)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} body={str(case.body)[:200]!r} "
                    f"query={case.query!r}: {response.status_code} {response.text[:300]}"
                )
            elif response.status_code >= 400:
                kind = response.headers.get("content-type") or [""]
                kind = kind[0] if isinstance(kind, list) else kind
                if not kind.startswith("application/problem+json"):
                    failures.append(f"{case.method} {case.formatted_path}: {response.status_code} not problem+json")

        check()
    assert not failures, "\n".join(failures[:10])
