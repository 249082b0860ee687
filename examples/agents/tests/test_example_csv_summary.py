"""csv-summary through the SDK's runner, as a host runs it: summaries of text and files,
bad input named by field, refusals with their codes, progress, pain, cancellation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vsm_example_agents import CsvSummary

from vsm.agent import AgentIdentity, Feeling, Intent, Invocation, Progress, RunningAgent, spawn

ORDERS = """\
item,quantity,price
bolt,8,0.25
nut,12,0.1
washer,,0.05
spring,3,n/a
"""


async def agent(config: dict[str, Any] | None = None) -> RunningAgent:
    return await spawn(CsvSummary, config or {}, AgentIdentity("csv-1", "csv-summary"))


def error_code(outcome: Any) -> str:
    assert outcome.result.error is not None, outcome.result
    return str(outcome.result.error.code)


async def test_text_is_summarised_column_by_column() -> None:
    running = await agent()
    done = await running.run(Invocation("summarise", {"text": ORDERS}))
    assert done.result.status == "ok", done.result.error
    summary = done.result.result
    assert summary is not None
    assert (summary["source"], summary["rows"], summary["malformed_rows"]) == ("text", 4, 0)
    item, quantity, price = summary["columns"]
    assert item == {
        "name": "item",
        "count": 4,
        "empty": 0,
        "numeric": 0,
        "min": None,
        "max": None,
        "mean": None,
    }
    assert (quantity["count"], quantity["empty"], quantity["numeric"]) == (3, 1, 3)
    assert (quantity["min"], quantity["max"], quantity["mean"]) == (3.0, 12.0, 23 / 3)
    assert (price["count"], price["numeric"], price["min"], price["max"]) == (4, 3, 0.05, 0.25)
    assert running.audit()["rows_processed"] == 4


async def test_without_a_header_columns_are_numbered_and_another_delimiter_is_read() -> None:
    running = await agent()
    data = {"text": "1;2\n3;4\n", "delimiter": ";", "has_header": False}
    done = await running.run(Invocation("summarise", data))
    assert done.result.result is not None
    columns = done.result.result["columns"]
    assert [(c["name"], c["mean"]) for c in columns] == [("column_1", 2.0), ("column_2", 3.0)]


async def test_input_that_does_not_fit_the_model_is_invalid_input_naming_the_field() -> None:
    running = await agent()
    bad = await running.run(Invocation("summarise", {"text": "a,b", "delimiter": ";;"}))
    assert error_code(bad) == "invalid_input"
    assert bad.result.error is not None
    assert [e["field"] for e in bad.result.error.details["errors"]] == ["data.delimiter"]

    both = await running.run(Invocation("summarise", {"text": "a", "path": "a.csv"}))
    assert error_code(both) == "invalid_input"
    assert both.result.error is not None
    assert "either text or path" in both.result.error.message

    unknown = await running.run(Invocation("summarise", {"text": "a", "rows": 3}))
    assert unknown.result.error is not None
    assert unknown.result.error.details["errors"][0]["field"] == "data.rows"


async def test_a_file_under_the_data_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / "sales").mkdir()
    (tmp_path / "sales" / "orders.csv").write_text(ORDERS)
    running = await agent({"data_dir": str(tmp_path)})
    done = await running.run(Invocation("summarise", {"path": "sales/orders.csv"}))
    assert done.result.result is not None
    assert (done.result.result["source"], done.result.result["rows"]) == ("file", 4)
    audit = running.audit()
    assert (audit["files_read"], audit["bytes_read"]) == (1, len(ORDERS.encode()))


async def test_a_path_leaving_the_data_directory_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")
    (root / "link.csv").symlink_to(tmp_path / "secret.csv")
    running = await agent({"data_dir": str(root)})
    outside = ("../secret.csv", str(tmp_path / "secret.csv"), "link.csv", "a/../../secret.csv")
    for path in outside:
        refused = await running.run(Invocation("summarise", {"path": path}))
        assert error_code(refused) == "path_outside_data_dir", path
        assert refused.result.error is not None
        assert refused.result.error.details == {"path": path}
        assert "hunter2" not in refused.result.model_dump_json()
    unusable = await running.run(Invocation("summarise", {"path": "a\x00b.csv"}))
    assert error_code(unusable) == "invalid_path"
    assert running.audit()["refused"] == 5
    assert running.audit()["files_read"] == 0


async def test_files_are_refused_without_a_data_directory_or_over_the_limits(
    tmp_path: Path,
) -> None:
    (tmp_path / "orders.csv").write_text(ORDERS)
    no_dir = await (await agent()).run(Invocation("summarise", {"path": "orders.csv"}))
    assert error_code(no_dir) == "no_data_dir"

    small = await agent({"data_dir": str(tmp_path), "max_bytes": 10})
    too_big = await small.run(Invocation("summarise", {"path": "orders.csv"}))
    assert error_code(too_big) == "input_too_large"
    assert too_big.result.error is not None
    assert too_big.result.error.details["max_bytes"] == 10
    missing = await small.run(Invocation("summarise", {"path": "none.csv"}))
    assert error_code(missing) == "file_not_found"

    short = await agent({"max_rows": 3})
    too_long = await short.run(Invocation("summarise", {"text": ORDERS}))
    assert error_code(too_long) == "too_many_rows"
    three = await short.run(Invocation("summarise", {"text": "a\n1\n2\n3\n"}))
    assert three.ok


async def test_csv_the_parser_cannot_read_is_refused_with_its_line() -> None:
    running = await agent()
    refused = await running.run(Invocation("summarise", {"text": 'a,b\n1,2\n3,"x"y\n'}))
    assert error_code(refused) == "malformed_csv"
    assert refused.result.error is not None
    assert refused.result.error.details == {"line": 3}

    too_wide = await running.run(Invocation("summarise", {"text": ",".join(["1"] * 300)}))
    assert error_code(too_wide) == "too_many_columns"

    empty = await running.run(Invocation("summarise", {"text": "\n\n"}))
    assert empty.result.result == {"source": "text", "rows": 0, "malformed_rows": 0, "columns": []}


async def test_big_input_reports_progress_by_chunks() -> None:
    running = await agent({"chunk_rows": 100})
    text = "n\n" + "".join(f"{i}\n" for i in range(1, 1001))
    seen: list[Intent] = []
    done = await running.run(Invocation("summarise", {"text": text}), on_intent=seen.append)
    assert done.result.result is not None
    assert done.result.result["columns"][0]["mean"] == 500.5
    reports = [(p.done, p.total) for p in seen if isinstance(p, Progress)]
    assert len(reports) == 11  # after every 100 rows, and at the end
    assert all(total == len(text) for _, total in reports)
    done = [done for done, _ in reports]
    assert done == sorted(done)
    assert done[-1] == len(text)


async def test_a_burst_of_malformed_rows_is_felt_as_pain() -> None:
    running = await agent({"pain_malformed_rows": 3})
    text = "a,b\n1,2\n" + "1,2,3\n" * 3 + "4\n"
    done = await running.run(Invocation("summarise", {"text": text}))
    assert done.result.result is not None
    assert (done.result.result["rows"], done.result.result["malformed_rows"]) == (1, 4)
    pains = [i for i in done.intents if isinstance(i, Feeling)]
    assert [(p.kind, p.reason, p.context["malformed"]) for p in pains] == [
        ("pain", "malformed_rows", 4)
    ]

    calm = await running.run(Invocation("summarise", {"text": "a,b\n1,2\n1\n"}))
    assert not [i for i in calm.intents if isinstance(i, Feeling)]
    assert running.audit()["malformed_rows"] == 5


async def test_a_cancelled_command_stops_between_chunks() -> None:
    running = await agent({"chunk_rows": 10})
    invocation = Invocation("summarise", {"text": "n\n" + "1\n" * 1000})
    reports: list[Progress] = []

    def cancel_on_first_progress(intent: Intent) -> None:
        if isinstance(intent, Progress):
            reports.append(intent)
            running.cancel(invocation.command_id, "operator")

    done = await running.run(invocation, on_intent=cancel_on_first_progress)
    assert error_code(done) == "cancelled"
    assert done.result.error is not None
    assert done.result.error.details == {"reason": "operator"}
    assert len(reports) == 1
    assert running.audit()["rows_processed"] == 0


async def test_a_deadline_too_short_for_the_input_ends_it() -> None:
    running = await agent({"chunk_rows": 1})
    late = await running.run(
        Invocation("summarise", {"text": "n\n" + "1\n" * 50_000}, deadline_s=0.05)
    )
    assert error_code(late) == "deadline_exceeded"
