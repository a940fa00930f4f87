"""Every exception a segpipe user can see.

Each carries one line that says what was expected, what came, and where.
The CLI maps :class:`ConfigError` to exit code 2 and :class:`DataError` to 3.
"""

from __future__ import annotations


class SegpipeError(Exception):
    """Base class of all errors segpipe reports to its user."""

    exit_code = 1


class ConfigError(SegpipeError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    exit_code = 2

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class DataError(SegpipeError):
    """The data (input files, output location, dtypes, shapes) cannot be processed."""

    exit_code = 3


class OutputExistsError(DataError):
    """The output location holds something and overwriting was not asked for."""


class BlockError(DataError):
    """A task failed on one block: which pass, which block, and the error."""

    def __init__(
        self,
        task: str,
        block: tuple[int, ...] | None,
        error: str,
        rerun: str = "",
        data: bool = False,
    ) -> None:
        self.task, self.block, self.error, self.rerun = task, block, error, rerun
        self.data = data  # the data is at fault (a rerun of the block shows no more)
        where = (
            f"block {','.join(map(str, block))}"
            if block is not None
            else "a task of several blocks"
        )
        hint = f" (rerun just this block: {rerun})" if rerun else ""
        super().__init__(f"{task}: failed on {where}: {error}{hint}")

    def __reduce__(self):  # picklable, to travel back from a worker process
        return (BlockError, (self.task, self.block, self.error, self.rerun, self.data))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for
    the one-line errors of libraries whose messages run over several lines."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
