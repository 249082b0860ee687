"""The fake Anthropic API against the real `anthropic` SDK: the SDK must parse, retry and raise
exactly as it would against api.anthropic.com, without any patching of the client."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
from anthropic.types import TextBlock, ToolUseBlock

from tests.support.fake_anthropic import FakeAnthropic

MODEL = "claude-haiku-4-5"
HELLO: list[Any] = [{"role": "user", "content": "Hello, fake."}]


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


def client(fake: FakeAnthropic, max_retries: int = 2) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="test-key", max_retries=max_retries)


def async_client(fake: FakeAnthropic, max_retries: int = 2) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key="test-key", max_retries=max_retries)


def test_text_reply_is_parsed_and_the_request_recorded(fake: FakeAnthropic) -> None:
    fake.reply_text("Hello, human.")
    with client(fake) as sdk:
        message = sdk.messages.create(
            model=MODEL, max_tokens=64, system="Be brief.", messages=HELLO
        )

    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "Hello, human."
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    [request] = fake.requests
    assert request.path == "/v1/messages"
    assert request.model == MODEL
    assert request.system == "Be brief."
    assert request.messages == HELLO
    assert request.max_tokens == 64
    assert request.api_key == "test-key"
    assert "anthropic-version" in request.headers


def test_a_scripted_usage_is_what_the_reply_counts(fake: FakeAnthropic) -> None:
    fake.reply_text("cached", usage={"input_tokens": 12, "cache_read_input_tokens": 3000})
    fake.reply_tool_use("t", {}, usage={"output_tokens": 40, "cache_creation_input_tokens": 9})
    with client(fake) as sdk:
        first = sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO).usage
        second = sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO).usage

    assert (first.input_tokens, first.cache_read_input_tokens) == (12, 3000)
    assert first.output_tokens > 0
    assert first.cache_creation_input_tokens == 0
    assert (second.output_tokens, second.cache_creation_input_tokens) == (40, 9)


def test_empty_script_echoes_the_last_user_message(fake: FakeAnthropic) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    with client(fake) as sdk:
        echoed = sdk.messages.create(model=MODEL, max_tokens=16, messages=messages)
        fake.default_reply = "fixed"
        fixed = sdk.messages.create(model=MODEL, max_tokens=16, messages=messages)

    assert [echoed.content[0], fixed.content[0]] == [
        TextBlock(type="text", text="second"),
        TextBlock(type="text", text="fixed"),
    ]


def test_tool_use_reply_is_parsed_into_a_tool_use_block(fake: FakeAnthropic) -> None:
    tools: list[Any] = [
        {
            "name": "get_weather",
            "description": "Weather for a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    fake.reply_tool_use("get_weather", {"city": "Paris"}, text="Let me check.")
    with client(fake) as sdk:
        message = sdk.messages.create(model=MODEL, max_tokens=64, messages=HELLO, tools=tools)

    assert message.stop_reason == "tool_use"
    text, tool = message.content
    assert isinstance(text, TextBlock)
    assert text.text == "Let me check."
    assert isinstance(tool, ToolUseBlock)
    assert (tool.name, tool.input) == ("get_weather", {"city": "Paris"})
    assert tool.id.startswith("toolu_")
    assert fake.requests[0].tools == tools


async def test_overloaded_then_success_is_retried(fake: FakeAnthropic) -> None:
    fake.fail(529, "overloaded_error", "Overloaded", retry_after=0.01).reply_text("made it")
    async with async_client(fake, max_retries=2) as sdk:
        message = await sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)

    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "made it"
    first, second = fake.requests
    assert first.headers["x-stainless-retry-count"] == "0"
    assert second.headers["x-stainless-retry-count"] == "1"


async def test_more_failures_than_retries_raise_overloaded_error(fake: FakeAnthropic) -> None:
    fake.fail_times(3).reply_text("never seen")
    async with async_client(fake, max_retries=2) as sdk:
        with pytest.raises(anthropic.OverloadedError) as caught:
            await sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)

    assert caught.value.status_code == 529
    assert caught.value.type == "overloaded_error"
    assert len(fake.requests) == 3
    assert fake.pending == 1


def test_authentication_error_is_not_retried(fake: FakeAnthropic) -> None:
    fake.fail(401, "authentication_error", "invalid x-api-key")
    with client(fake, max_retries=2) as sdk, pytest.raises(anthropic.AuthenticationError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)

    assert len(fake.requests) == 1
    assert caught.value.api_message == "invalid x-api-key"
    assert caught.value.request_id is not None
    assert caught.value.request_id.startswith("req_")


def test_x_should_retry_false_stops_a_retryable_status(fake: FakeAnthropic) -> None:
    fake.fail(529, should_retry=False).reply_text("never seen")
    with client(fake, max_retries=2) as sdk, pytest.raises(anthropic.OverloadedError):
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)

    assert len(fake.requests) == 1


def test_rate_limit_carries_retry_after(fake: FakeAnthropic) -> None:
    fake.fail(429, "rate_limit_error", "Slow down.", retry_after=0.2)
    with client(fake, max_retries=0) as sdk, pytest.raises(anthropic.RateLimitError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)

    headers = caught.value.response.headers
    assert (headers["retry-after-ms"], headers["retry-after"]) == ("200", "1")
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Slow down."},
        "request_id": caught.value.body["request_id"],  # type: ignore[index]
    }


def test_rate_limit_retry_waits_as_told(fake: FakeAnthropic) -> None:
    fake.fail(429, "rate_limit_error", "Slow down.", retry_after=0.05).reply_text("patience")
    with client(fake, max_retries=2) as sdk:
        started = time.monotonic()
        message = sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
        waited = time.monotonic() - started

    assert isinstance(message.content[0], TextBlock)
    assert message.content[0].text == "patience"
    assert len(fake.requests) == 2
    assert 0.05 <= waited < 0.3  # without retry-after the SDK would back off 0.375-0.5 s


def test_streamed_text_reply(fake: FakeAnthropic) -> None:
    fake.reply_text("Streaming works, word by word.")
    with (
        client(fake) as sdk,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == "Streaming works, word by word."
    assert isinstance(final.content[0], TextBlock)
    assert final.content[0].text == "Streaming works, word by word."
    assert final.stop_reason == "end_turn"
    assert fake.requests[0].stream


async def test_streamed_tool_use_reply(fake: FakeAnthropic) -> None:
    fake.reply_tool_use("lookup", {"query": "viable system", "limit": 3})
    async with (
        async_client(fake) as sdk,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        final = await stream.get_final_message()

    [tool] = final.content
    assert isinstance(tool, ToolUseBlock)
    assert tool.input == {"query": "viable system", "limit": 3}
    assert final.stop_reason == "tool_use"


def test_stream_dropped_midway_surfaces_as_a_transport_error(fake: FakeAnthropic) -> None:
    fake.fail_stream_midway("Half an ans")
    received: list[str] = []
    with (
        client(fake) as sdk,
        pytest.raises(httpx2.RemoteProtocolError),
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        received.extend(stream.text_stream)

    assert "".join(received) == "Half an ans"
    assert len(fake.requests) == 1  # a stream that already began is never retried


def test_stream_error_event_midway_raises_api_status_error(fake: FakeAnthropic) -> None:
    fake.fail_stream_midway("Half", error_type="overloaded_error")
    with (
        client(fake) as sdk,
        pytest.raises(anthropic.APIStatusError) as caught,
        sdk.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        stream.until_done()

    assert caught.value.type == "overloaded_error"
    assert len(fake.requests) == 1


def test_count_tokens(fake: FakeAnthropic) -> None:
    with client(fake) as sdk:
        counted = sdk.messages.count_tokens(model=MODEL, messages=HELLO)

    assert counted.input_tokens > 0


def test_invalid_requests_get_the_api_errors(fake: FakeAnthropic) -> None:
    version = {"anthropic-version": "2023-06-01"}
    body = {"model": MODEL, "max_tokens": 16, "messages": HELLO}
    with httpx.Client(base_url=fake.url) as http:
        no_key = http.post("/v1/messages", json=body, headers=version)
        no_tokens = http.post(
            "/v1/messages",
            json={"model": MODEL, "messages": HELLO},
            headers={**version, "x-api-key": "test-key"},
        )
        unknown = http.post("/v1/complete", json=body, headers={**version, "x-api-key": "k"})

    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    assert no_tokens.status_code == 400
    assert no_tokens.json()["type"] == "error"
    assert no_tokens.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert unknown.status_code == 404
    assert len(fake.requests) == 3


def test_only_the_configured_api_key_is_accepted() -> None:
    with FakeAnthropic(api_key="right") as fake:
        fake.reply_text("never seen")
        with client(fake) as sdk, pytest.raises(anthropic.AuthenticationError):
            sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
        assert fake.pending == 1  # rejected requests do not consume the script


def test_a_subprocess_finds_the_fake_through_the_environment(fake: FakeAnthropic) -> None:
    fake.reply_text("from afar")
    code = (
        "import anthropic\n"
        "with anthropic.Anthropic() as client:\n"
        f"    reply = client.messages.create(model={MODEL!r}, max_tokens=16,\n"
        "        messages=[{'role': 'user', 'content': 'hi'}])\n"
        "print(reply.content[0].text)\n"
    )
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean_env, **fake.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert done.stdout.strip() == "from afar"
    assert fake.wait_for_requests(1)[0].api_key == "test-key"


def test_close_leaves_no_threads_even_with_open_client_connections() -> None:
    before = set(threading.enumerate())
    with FakeAnthropic() as fake, client(fake) as sdk:
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
        sdk.messages.create(model=MODEL, max_tokens=16, messages=HELLO)
        fake.close()  # while the client still holds a keep-alive connection
        assert set(threading.enumerate()) - before == set()


def test_reset_forgets_script_and_requests(fake: FakeAnthropic) -> None:
    fake.fail_times(2).reply_text("queued")
    with client(fake) as sdk:
        sdk.messages.count_tokens(model=MODEL, messages=HELLO)
    fake.reset()

    assert (fake.pending, fake.requests) == (0, [])
