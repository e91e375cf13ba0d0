"""Answers measured once and kept in the artifact folder: JSON records that name the question they answer.

The leakage guard's figures (evaluation/leakage_store.py) and a snapshot's drift bins (monitoring/reference_store.py)
follow from their inputs alone, so each is measured once and stored under a key hashed from its question. Both are
read and written here: an answer is written whole or not at all (a temporary file beside it, renamed into place),
and one that cannot be read, or names another key or question, is an error naming the file, never measured over.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TypeVar

from ml_platform.records.base import Record

Answer = TypeVar("Answer", bound=Record)  # a record with the fields `key` and `question`


def read_answer(path: Path, kind: type[Answer], key: str, question: dict, error: type[Exception], what: str,
                again: str, answers: str = "answers") -> Answer:
    """The `kind` record stored at path, checked to name this key and question; else `error`, naming the file as
    "the stored <what>" and telling to remove it "to <again>" (`answers`: the verb that agrees with `what`)."""
    try:
        answer = kind.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as failure:
        reason = " ".join(str(failure).split())  # on one line
        raise error(f"the stored {what} {path} cannot be read ({reason}); remove the file to {again}") from failure
    if answer.key != key or answer.question != question:
        raise error(f"the stored {what} {path} {answers} another question (key {answer.key[:12]}, expected "
                    f"{key[:12]}); remove the file to {again}")
    return answer


def write_answer(path: Path, answer: Record) -> None:
    """Write the answer whole or not at all: a temporary file beside it, renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-", suffix=".json")
    try:
        with os.fdopen(handle, "wb") as output:
            output.write(answer.model_dump_json().encode())
            output.flush()
            os.fsync(output.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
