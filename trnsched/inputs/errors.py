"""Bad input is reported as one line naming the file, the job and the field."""
from __future__ import annotations


class InputError(ValueError):
    """Raised for malformed or invalid input; the CLI prints it and exits 2."""

    def __init__(self, message: str, *, file: str | None = None, job: str | None = None,
                 field: str | None = None) -> None:
        self.file, self.job, self.field, self.detail = file, job, field, message
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.file or "<input>"]
        if self.job is not None:
            parts.append(f"job {self.job!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        return ": ".join(parts + [self.detail])

    def located(self, *, file: str | None = None, job: str | None = None) -> "InputError":
        """The same error with the file or job filled in where it was missing."""
        return InputError(self.detail, file=self.file or file, job=self.job if self.job is not None else job,
                          field=self.field)


class OutputError(OSError):
    """An output file that could not be written: the CLI prints the path and the
    reason on one line and exits 1 (the input was fine; the machine refused)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: cannot write: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: cannot write: {self.reason}"
