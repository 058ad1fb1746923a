"""The web console in a real Chromium against a real ``berth serve``: signing in, the endpoint
list and its filters, an endpoint's page (events, charts, logs, query, chat), editing and
cancelling a config update, deleting, and what a query-only user is shown and allowed."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.llm_server import FakeLlmServer
from tests.support.browser import Console
from tests.support.deploy import (
    ECHO,
    FAILING_LOAD,
    SLOW_LOAD,
    endpoint,
    entity,
    register_model,
    wait_ready,
    wait_settled,
)
from tests.support.identity import make_user
from tests.support.llm import smollm2_gguf
from tests.support.net import wait_until
from tests.support.servers import BerthServer

pytestmark = pytest.mark.integration


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(
    api: httpx.Client,
    name: str,
    served: dict[str, Any],
    tags: list[dict[str, str]] | None = None,
    **config: Any,
) -> None:
    body: dict[str, Any] = {"name": name, "config": {"served_entities": [served], **config}}
    if tags:
        body["tags"] = tags
    answer = api.post("/api/2.0/serving-endpoints", json=body)
    assert answer.status_code == 200, answer.text


def row(page: Page, name: str) -> Any:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))


def test_the_root_serves_the_console_with_a_strict_policy(server: BerthServer) -> None:
    answer = httpx.get(f"{server.url}/", follow_redirects=True)
    assert answer.status_code == 200
    assert str(answer.url).endswith("/console/")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    # Deep links answer the same page, which routes on its path.
    deep = httpx.get(f"{server.url}/console/endpoints/anything?tab=logs")
    assert deep.status_code == 200 and deep.text == answer.text
    script = httpx.get(f"{server.url}/console/assets/js/main.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert httpx.get(f"{server.url}/console/assets/js/nothing.js").status_code == 404


def test_sign_in_refuses_a_wrong_token_and_signs_out(console: Console) -> None:
    page = console.open()
    page.get_by_label("Token").fill("bth_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    console.sign_in()
    assert page.evaluate("document.cookie") == ""  # the token stays in this tab's storage
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_the_list_shows_states_and_filters_by_state_and_tag(
    console: Console, api: httpx.Client
) -> None:
    team = unique("team")
    good, broken = unique("good"), unique("broken")
    create(api, good, entity(register_model(api, ECHO), "1"), [{"key": "team", "value": team}])
    create(
        api,
        broken,
        entity(register_model(api, FAILING_LOAD), "1"),
        [{"key": "team", "value": team}, {"key": "tier", "value": "gold"}],
    )
    wait_ready(api, good)
    wait_settled(api, broken)

    page = console.sign_in()
    page.get_by_label("Tag").fill(f"team={team}")
    page.get_by_role("button", name="Add filter").click()
    expect(page.get_by_role("link", name=good, exact=True)).to_be_visible()
    expect(row(page, good).locator("[data-state]")).to_have_attribute("data-state", "ready")
    expect(row(page, broken).locator("[data-state]")).to_have_attribute("data-state", "failed")
    expect(page.get_by_text("2 endpoints")).to_be_visible()
    console.screenshot("console-endpoints")

    page.get_by_label("State").select_option("READY")
    expect(page.get_by_role("link", name=broken, exact=True)).to_have_count(0)
    expect(page.get_by_role("link", name=good, exact=True)).to_be_visible()
    assert "state=READY" in page.url

    # The filter lives in the URL: a shared link opens the same view.
    shared = console.open(f"/console/endpoints?tag=team%3D{team}&tag=tier")
    expect(shared.get_by_role("link", name=broken, exact=True)).to_be_visible()
    expect(shared.get_by_role("link", name=good, exact=True)).to_have_count(0)
    shared.get_by_label("Search").fill("no-such-name")
    expect(shared.get_by_text("No endpoint matches these filters.")).to_be_visible()


def test_an_endpoint_page_shows_events_charts_logs_and_answers_queries(
    console: Console, api: httpx.Client
) -> None:
    name = unique("page")
    create(
        api,
        name,
        entity(register_model(api, ECHO), "1"),
        auto_capture_config={"enabled": True},
    )
    wait_ready(api, name)
    page = console.sign_in()
    page.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("ENDPOINT_CREATED")
    expect(page.get_by_label("Served entities")).to_contain_text("1 / 1")

    page.get_by_role("tab", name="Query").click()
    page.get_by_label("instances").check()
    page.get_by_label("Request body").fill('{"instances": [[1, 2, 3]]}')
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_label("Response")).to_contain_text('"predictions"')
    expect(page.get_by_label("Response")).to_contain_text("3")
    for _ in range(4):
        page.get_by_role("button", name="Send request").click()
    page.get_by_label("Request body").fill("{not json")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("alert")).to_contain_text("not JSON")

    # The five good queries reach the chart once the data plane has written them (every 2 s).
    page.get_by_role("tab", name="Metrics").click()
    wait_until(
        lambda: sum(history(api, name)["total"]["requests"]) >= 5,
        timeout=30,
        what="the queries in the metrics history",
    )
    page.reload()
    expect(page.locator("#chart-requests")).to_have_attribute("data-has-data", "true")
    expect(page.locator("#chart-replicas")).to_have_attribute("data-has-data", "true")
    expect(page.locator("#chart-requests canvas")).to_be_visible()
    console.screenshot("console-endpoint-metrics")

    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_label("Log lines")).to_contain_text("model loaded")

    # The captured requests, newest first: the last good one, then the four before it.
    page.get_by_role("tab", name="Inference table").click()
    captured = page.get_by_label("Captured requests").locator("tbody tr")
    expect(captured).to_have_count(5, timeout=30_000)
    expect(captured.first).to_contain_text("[[1,2,3]]")
    expect(captured.first).to_contain_text("200")
    page.get_by_role("tab", name="Overview").click()
    console.screenshot("console-endpoint")


def chat_answer_types(page: Page) -> list[str]:
    """The content types of the chat answers the page will receive, as they come."""
    types: list[str] = []
    page.on(
        "response",
        lambda r: (
            types.append(r.headers.get("content-type", ""))
            if r.url.endswith("/serving-endpoints/chat/completions")
            else None
        ),
    )
    return types


def history(api: httpx.Client, name: str) -> dict[str, Any]:
    answer = api.get(f"/api/2.0/serving-endpoints/{name}/metrics-history", params={"minutes": 5})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_chat_with_an_llm_endpoint_streams_the_answer(
    console: Console, api: httpx.Client, llm_server: FakeLlmServer
) -> None:
    name = unique("chat")
    create(
        api,
        name,
        {
            "external_model": {
                "name": "gpt-4o",
                "provider": "openai",
                "task": "llm/v1/chat",
                "openai_config": {
                    "openai_api_key_plaintext": llm_server.api_key,
                    "openai_api_base": f"{llm_server.url}/v1",
                },
            }
        },
    )
    wait_ready(api, name)
    page = console.sign_in()
    console.open(f"/console/endpoints/{name}?tab=query")
    streamed = chat_answer_types(page)
    page.get_by_label("Message").fill("hello big world")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message-assistant .content")).to_have_text("world big hello")
    assert streamed and streamed[0].startswith("text/event-stream")
    console.screenshot("console-playground")


def test_edit_the_config_watch_the_update_and_cancel_another(
    console: Console, api: httpx.Client
) -> None:
    name = unique("edit")
    model = register_model(api, ECHO)
    create(api, name, entity(model, "1", workload_size="Small"))
    wait_ready(api, name)
    page = console.sign_in()
    console.open(f"/console/endpoints/{name}")

    # A value the server refuses is shown at its field, and nothing changes.
    page.get_by_role("button", name="Edit config").click()
    page.get_by_role("tab", name="YAML").click()
    text = page.get_by_label("Config as yaml")
    text.fill(text.input_value().replace("workload_size: Small", "workload_size: Huge"))
    page.get_by_role("tab", name="Form").click()
    page.get_by_role("button", name="Update").click()
    field = page.locator('[name="served_entities.0.workload_size"]')
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_contain_text("'Small', 'Medium' or 'Large'")
    assert endpoint(api, name)["config"]["config_version"] == 1

    field.select_option("Medium")
    page.get_by_role("button", name="Update").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.get_by_text("config version 2")).to_be_visible(timeout=60_000)
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "ready")
    assert endpoint(api, name)["config"]["served_entities"][0]["workload_size"] == "Medium"

    # An update that cannot finish (its model loads for minutes) is cancelled from the page.
    slow = register_model(api, SLOW_LOAD)
    page.get_by_role("button", name="Edit config").click()
    page.get_by_role("tab", name="JSON").click()
    page.get_by_label("Config as json").fill(
        f'{{"served_entities": [{{"entity_name": "{slow}", "entity_version": "1", '
        f'"workload_size": "Small"}}]}}'
    )
    page.get_by_role("button", name="Update").click()
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "updating")
    expect(page.get_by_label("Pending config")).to_be_visible()
    page.get_by_role("button", name="Cancel update").click()
    expect(page.locator(".timeline")).to_contain_text("UPDATE_CANCELED")
    expect(page.locator("h1 [data-state]")).not_to_have_attribute("data-state", "updating")
    after = endpoint(api, name)
    assert after["state"]["config_update"] == "UPDATE_CANCELED"
    assert after["config"]["served_entities"][0]["entity_name"] == model


def test_delete_an_endpoint_after_confirming(console: Console, api: httpx.Client) -> None:
    name = unique("gone")
    create(api, name, entity(register_model(api, ECHO), "1"))
    wait_ready(api, name)
    page = console.sign_in()
    console.open(f"/console/endpoints/{name}")
    page.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Cancel").click()
    assert api.get(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    expect(page.get_by_role("heading", name="Serving endpoints")).to_be_visible()
    expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert api.get(f"/api/2.0/serving-endpoints/{name}").status_code == 404


def test_a_query_only_user_sees_no_changing_buttons_and_the_api_refuses(
    console: Console, api: httpx.Client, server: BerthServer
) -> None:
    name = unique("shared")
    model = register_model(api, ECHO)
    create(api, name, entity(model, "1"))
    detail = wait_ready(api, name)
    user = unique("querier")
    _, as_user = make_user(api, server, user, entitled=False)
    granted = api.patch(
        f"/api/2.0/permissions/serving-endpoints/{detail['id']}",
        json={"access_control_list": [{"user_name": user, "permission_level": "CAN_QUERY"}]},
    )
    assert granted.status_code == 200, granted.text
    token = str(as_user.headers["Authorization"]).removeprefix("Bearer ")
    try:
        page = console.sign_in(token)
        expect(page.get_by_role("link", name="Admin")).to_have_count(0)
        console.open(f"/console/endpoints/{name}")
        expect(page.locator(".timeline")).to_contain_text("ENDPOINT_CREATED")
        for button in ("Edit config", "Delete", "Edit tags", "Rate limits"):
            expect(page.get_by_role("button", name=button)).to_have_count(0)
        page.get_by_role("tab", name="Query").click()
        page.get_by_label("instances").check()
        page.get_by_label("Request body").fill('{"instances": [[7]]}')
        page.get_by_role("button", name="Send request").click()
        expect(page.get_by_label("Response")).to_contain_text("7")

        # What the page does not offer, the API refuses when forced from the same tab.
        status = page.evaluate(
            """async (name) => {
                const token = sessionStorage.getItem("berth.token");
                const answer = await fetch(`/api/2.0/serving-endpoints/${name}`, {
                    method: "DELETE", headers: {Authorization: `Bearer ${token}`}});
                return answer.status;
            }""",
            name,
        )
        assert status == 403
        forced = as_user.put(
            f"/api/2.0/serving-endpoints/{name}/config",
            json={"served_entities": [entity(model, "1", workload_size="Medium")]},
        )
        assert forced.status_code == 403, forced.text
        assert api.get(f"/api/2.0/serving-endpoints/{name}").status_code == 200
    finally:
        as_user.close()


def test_an_expired_session_returns_to_sign_in(
    console: Console, api: httpx.Client, server: BerthServer
) -> None:
    user = unique("brief")
    _, as_user = make_user(api, server, user, entitled=False)
    token = str(as_user.headers["Authorization"]).removeprefix("Bearer ")
    page = console.sign_in(token)
    listed = as_user.get("/api/2.0/token/list").json()["token_infos"]
    revoked = as_user.post("/api/2.0/token/delete", json={"token_id": listed[0]["token_id"]})
    as_user.close()
    assert revoked.status_code == 200, revoked.text
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("alert")).to_contain_text(re.compile("sign in again"))
    expect(page.get_by_label("Token")).to_be_visible()


HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'


def test_text_from_models_and_users_is_shown_never_run(
    console: Console, api: httpx.Client, tmp_path: Path
) -> None:
    """A model's logs and answers, and tags another manager wrote, are untrusted: the page
    shows them as text, and its policy would refuse an inline script if one slipped through."""
    model = tmp_path / "loud"
    model.mkdir()
    (model / "score.py").write_text(
        "def load_model():\n"
        f"    print({HOSTILE!r}, flush=True)\n"
        "\n"
        "def predict(data, model=load_model()):\n"
        f"    return {{'predictions': [{HOSTILE!r}]}}\n"
    )
    name = unique("hostile")
    create(api, name, entity(register_model(api, model), "1"), [{"key": "x", "value": HOSTILE}])
    wait_ready(api, name)
    page = console.sign_in()
    console.open(f"/console/endpoints/{name}")
    expect(page.get_by_text(f"x={HOSTILE}")).to_be_visible()
    page.get_by_role("tab", name="Logs").click()
    expect(page.get_by_label("Log lines")).to_contain_text(HOSTILE)
    page.get_by_role("tab", name="Query").click()
    page.get_by_label("instances").check()
    page.get_by_label("Request body").fill('{"instances": [1]}')
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_label("Response")).to_contain_text("onerror")
    assert page.evaluate("window.pwned") is None
    assert page.locator("img[src=x], main script").count() == 0


def test_deploy_a_model_version_from_its_page(console: Console, api: httpx.Client) -> None:
    model = register_model(api, ECHO)
    taken = unique("taken")
    create(api, taken, entity(model, "1"))
    page = console.sign_in()
    page.get_by_role("link", name="Models").click()
    page.get_by_label("Search").fill(model)
    page.get_by_role("link", name=model, exact=True).click()
    page.get_by_role("button", name="Deploy version 1").click()

    # A name already in use is refused at the name; nothing is made.
    page.get_by_label("Endpoint name").fill(taken)
    page.get_by_role("dialog").get_by_role("button", name="Deploy").click()
    expect(page.get_by_label("Endpoint name")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_contain_text(taken)

    name = unique("deployed")
    page.get_by_label("Endpoint name").fill(name)
    page.get_by_role("dialog").get_by_role("button", name="Deploy").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("h1 [data-state]")).to_have_attribute("data-state", "ready", timeout=60_000)
    served = endpoint(api, name)["config"]["served_entities"][0]
    assert (served["entity_name"], served["entity_version"]) == (model, "1")


def test_an_admin_creates_a_token_shown_once_and_revokes_it(
    console: Console, server: BerthServer
) -> None:
    page = console.sign_in()
    page.get_by_role("link", name="Admin").click()
    page.get_by_role("tab", name="Tokens").click()
    comment = unique("console-token")
    page.get_by_label("Comment").fill(comment)
    page.get_by_role("button", name="Create token").click()
    value = page.get_by_label("Token value").input_value()
    with server.client(value) as as_new:
        assert as_new.get("/api/2.0/preview/scim/v2/Me").status_code == 200
        page.get_by_role("button", name="Done").click()
        expect(page.get_by_label("Token value")).to_have_count(0)
        expect(page.get_by_text(comment).first).to_be_visible()
        assert value not in page.content()  # listed by comment and id, never by value
        page.get_by_role("button", name=f"Delete token {comment}").first.click()
        page.get_by_role("dialog").get_by_role("button", name="Delete token").click()
        expect(page.get_by_text(comment)).to_have_count(0)
        assert as_new.get("/api/2.0/preview/scim/v2/Me").status_code == 401


def test_the_playground_chats_with_an_open_llm(
    console: Console, api: httpx.Client, tmp_path: Path
) -> None:
    """SmolLM2 on llama.cpp: the page learns it is a chat model from its version's details."""
    weights = tmp_path / "smollm2"
    weights.mkdir()
    os.link(smollm2_gguf(), weights / smollm2_gguf().name)
    name = unique("smol")
    create(api, name, entity(register_model(api, weights), "1"))
    wait_ready(api, name, timeout=180)
    page = console.sign_in()
    console.open(f"/console/endpoints/{name}?tab=query")
    expect(page.get_by_role("tab", name="Playground")).to_be_visible()
    streamed = chat_answer_types(page)
    page.get_by_label("Max tokens").fill("8")
    page.get_by_label("Message").fill("Say hello.")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=60_000)
    answer = page.locator(".message-assistant .content").inner_text()
    assert answer.strip() and answer != "…"
    assert streamed and streamed[0].startswith("text/event-stream")
