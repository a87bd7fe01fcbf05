"""A support agent told "I am travelling to Japan" who types the letter code is told what a
country code is, over a running host: ``PUT /v1/cards/{id}/travel-notices`` (and card controls)
with "JP" is refused 422 saying ISO 3166 numeric, 3 digits, Japan 392, and ``authhost cards
travel --countries JP`` says the same. Before, the answer was pydantic's "String should match
pattern '^[0-9]{3}$'", which sent agents to the docs mid-call."""

from __future__ import annotations

import json

from host_admin import cli_config, run_cli, visa_at_host
from test_admin_support import call
from test_e2e_auth import store_url  # noqa: F401 - fixture


async def test_a_letter_country_code_is_refused_with_what_a_code_is(
    nursery,
    tmp_path,
    store_url,  # noqa: F811 - the fixture
):
    at = await visa_at_host(nursery, tmp_path, store_url)
    trip = {"countries": ["JP"], "start": "2026-12-01", "end": "2026-12-10"}
    refused = await call(
        at.port, "PUT", f"/v1/cards/{at.card_id}/travel-notices", payload={"notices": [trip]}
    )
    assert refused.status == 422, refused
    said = json.dumps(refused.json)
    assert "ISO 3166 numeric" in said and "Japan 392" in said, said
    blocked = await call(
        at.port, "PUT", f"/v1/cards/{at.card_id}/controls", payload={"blocked_countries": ["RU"]}
    )
    assert blocked.status == 422 and "ISO 3166 numeric" in json.dumps(blocked.json), blocked

    fine = {**trip, "countries": ["392"]}
    done = await call(
        at.port, "PUT", f"/v1/cards/{at.card_id}/travel-notices", payload={"notices": [fine]}
    )
    assert done.status == 200 and done.json["travel_notices"][0]["countries"] == ["392"], done

    config = str(cli_config(tmp_path, store_url))
    code, out = await run_cli(
        "cards", "travel", at.card_id, "--countries", "JP", "--start", "2026-12-01",
        "--end", "2026-12-10", "--config", config,
    )  # fmt: skip
    assert code == 1 and "Japan 392" in out, out
