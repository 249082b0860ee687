"""`csv-summary`: an I/O agent type. It reads CSV (text given in the command, or a file
under the directory its config names) and answers a summary of each column: how many values,
how many empty, and for numbers their minimum, maximum and mean.

What it shows of the SDK: typed, bounded input and output models; a config that decides what
the agent may touch (one directory, files up to a size); refusals with stable codes (a path
leaving the directory, a file too big); progress and cancellation checks between chunks of
rows; pain when a burst of malformed rows comes in; an audit view of the rows processed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vsm.agent import Agent, Context, Refused, command

__all__ = ["ColumnSummary", "CsvAudit", "CsvSummary", "CsvSummaryConfig", "Summarise", "Summary"]

MAX_TEXT_CHARS = 1_000_000
"""CSV given inline: at most this many characters (about a megabyte)."""
MAX_COLUMNS = 256


class CsvSummaryConfig(BaseModel):
    """What one csv-summary agent may read, and how much."""

    model_config = ConfigDict(extra="forbid")

    data_dir: str | None = Field(
        default=None,
        max_length=4096,
        description="The directory files are read from (None: inline text only).",
    )
    max_bytes: int = Field(default=5_000_000, ge=1, le=100_000_000, description="A file's limit.")
    max_rows: int = Field(default=100_000, ge=1, le=1_000_000, description="Data rows at most.")
    chunk_rows: int = Field(
        default=1_000, ge=1, le=100_000, description="Rows between progress reports."
    )
    pain_malformed_rows: int = Field(
        default=10,
        ge=1,
        description="Malformed rows in one command that hurt (a burst of bad input).",
    )


class Summarise(BaseModel):
    """The CSV to summarise: `text`, or a `path` relative to the agent's data directory."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    path: str | None = Field(default=None, min_length=1, max_length=256)
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    has_header: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> Summarise:
        if (self.text is None) == (self.path is None):
            raise ValueError("give either text or path")
        return self


class ColumnSummary(BaseModel):
    """One column: its values counted, and its numbers summed up (None: no number in it)."""

    name: str
    count: int = Field(description="Values that are not empty.")
    empty: int
    numeric: int = Field(description="Values that read as finite numbers.")
    min: float | None = None
    max: float | None = None
    mean: float | None = None


class Summary(BaseModel):
    source: Literal["text", "file"]
    rows: int = Field(description="Data rows summarised (the header and malformed rows left out).")
    malformed_rows: int = Field(description="Rows whose number of fields differs from the header.")
    columns: list[ColumnSummary]


class CsvAudit(BaseModel):
    """What an S3* audit sees of a csv-summary agent."""

    commands: int = 0
    rows_processed: int = 0
    malformed_rows: int = 0
    files_read: int = 0
    bytes_read: int = 0
    refused: int = 0


class _Column:
    """A column's running totals."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = self.empty = self.numeric = 0
        self.total = 0.0
        self.low = math.inf
        self.high = -math.inf

    def add(self, value: str) -> None:
        value = value.strip()
        if not value:
            self.empty += 1
            return
        self.count += 1
        try:
            number = float(value)
        except ValueError:
            return
        if math.isfinite(number):
            self.numeric += 1
            self.total += number
            self.low = min(self.low, number)
            self.high = max(self.high, number)

    def summary(self) -> ColumnSummary:
        if not self.numeric:
            return ColumnSummary(name=self.name, count=self.count, empty=self.empty, numeric=0)
        return ColumnSummary(
            name=self.name,
            count=self.count,
            empty=self.empty,
            numeric=self.numeric,
            min=self.low,
            max=self.high,
            mean=self.total / self.numeric,
        )


def inside(root: Path, relative: str) -> Path:
    """The file `relative` names under `root`; `Refused("path_outside_data_dir")` when it
    would leave it (`..`, an absolute path, a symbolic link pointing out)."""
    try:
        base = root.resolve()
        target = (base / relative).resolve()
    except (OSError, ValueError):  # a NUL byte, a name too long, a loop of links
        raise Refused("invalid_path", "not a usable path", {"path": relative}) from None
    if Path(relative).is_absolute() or not target.is_relative_to(base):
        raise Refused(
            "path_outside_data_dir",
            "the path must stay inside the agent's data directory",
            {"path": relative},
        )
    return target


def read_file(root: Path, relative: str, max_bytes: int) -> tuple[str, int]:
    """The text of the file `relative` names under `root` and its size in bytes (blocking:
    run it in a thread); refused when it leaves `root`, is missing, is over `max_bytes` or is
    not UTF-8."""
    path = inside(root, relative)
    if not path.is_file():
        raise Refused("file_not_found", "no such file in the data directory", {"path": relative})
    with path.open("rb") as file:
        raw = file.read(max_bytes + 1)  # never more, however big the file is (or grows)
    if len(raw) > max_bytes:
        details = {"path": relative, "max_bytes": max_bytes}
        raise Refused("input_too_large", f"the file is over {max_bytes} bytes", details)
    try:
        return raw.decode("utf-8-sig"), len(raw)
    except UnicodeDecodeError:
        raise Refused("not_utf8", "the file is not UTF-8 text", {"path": relative}) from None


def records(reader: Iterator[list[str]], line: Callable[[], int]) -> Iterator[list[str]]:
    """The reader's rows, blank lines left out; what it cannot parse is `malformed_csv`."""
    try:
        for row in reader:
            if row:
                yield row
    except csv.Error as error:
        raise Refused("malformed_csv", f"line {line()}: {error}", {"line": line()}) from None


def columns_of(first: list[str], named: bool) -> list[_Column]:
    """The columns a header names (blank names numbered), or as many as the first row has."""
    if len(first) > MAX_COLUMNS:
        raise Refused("too_many_columns", f"at most {MAX_COLUMNS} columns", {"columns": len(first)})
    names = [name.strip() if named else "" for name in first]
    return [_Column(name or f"column_{i}") for i, name in enumerate(names, start=1)]


class CsvSummary(Agent[CsvSummaryConfig]):
    """Summarises CSV data column by column: counts, and minimum, maximum and mean of numbers."""

    name = "csv-summary"
    version = "1.0"

    async def start(self) -> None:
        self.seen = CsvAudit()

    def audit(self) -> CsvAudit:
        return self.seen

    @command
    async def summarise(self, data: Summarise, ctx: Context) -> Summary:
        """Summarise CSV given as text, or a file under the agent's data directory."""
        self.seen.commands += 1
        try:
            text = data.text if data.text is not None else await self._read(data.path or "")
            summary = await self._summarise(text, data, ctx)
        except Refused:
            self.seen.refused += 1
            raise
        self.seen.rows_processed += summary.rows
        self.seen.malformed_rows += summary.malformed_rows
        seen = summary.rows + summary.malformed_rows
        if summary.malformed_rows >= self.config.pain_malformed_rows:
            ctx.pain(
                "malformed_rows",
                intensity=min(1.0, 0.3 + 0.7 * summary.malformed_rows / seen),
                malformed=summary.malformed_rows,
                rows=seen,
            )
        ctx.log.info("summarised", rows=summary.rows, malformed=summary.malformed_rows)
        return summary

    async def _summarise(self, text: str, data: Summarise, ctx: Context) -> Summary:
        """Read the rows into the columns a chunk at a time: between chunks the progress (in
        characters read) is reported and the cancellation checked. Malformed rows (a number
        of fields other than the columns') are counted and left out."""
        source = io.StringIO(text, newline="")
        reader = csv.reader(source, delimiter=data.delimiter, strict=True)
        rows = records(reader, lambda: reader.line_num)
        first = next(rows, None)
        if first is None:
            return Summary(source=_source(data), rows=0, malformed_rows=0, columns=[])
        columns = columns_of(first, data.has_header)
        if not data.has_header:
            rows = chain([first], rows)
        summarised = malformed = 0
        for count, row in enumerate(rows, start=1):
            if count > self.config.max_rows:
                limit = self.config.max_rows
                raise Refused("too_many_rows", f"at most {limit} rows", {"max_rows": limit})
            if len(row) == len(columns):
                summarised += 1
                for column, value in zip(columns, row, strict=True):
                    column.add(value)
            else:
                malformed += 1
            if count % self.config.chunk_rows == 0:
                ctx.progress(source.tell(), len(text), "characters read")
                await asyncio.sleep(0)  # the host's cancellation comes in here
                ctx.check()
        ctx.progress(len(text), len(text), "characters read")
        return Summary(
            source=_source(data),
            rows=summarised,
            malformed_rows=malformed,
            columns=[column.summary() for column in columns],
        )

    async def _read(self, relative: str) -> str:
        """A file's text, read in a thread: under the data directory, within the limit."""
        if self.config.data_dir is None:
            raise Refused("no_data_dir", "this agent reads no files: its config names no data_dir")
        root = Path(self.config.data_dir)
        text, size = await asyncio.to_thread(read_file, root, relative, self.config.max_bytes)
        self.seen.files_read += 1
        self.seen.bytes_read += size
        return text


def _source(data: Summarise) -> Literal["text", "file"]:
    return "text" if data.text is not None else "file"
