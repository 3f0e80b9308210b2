"""Progress bars for long transfers: on stderr, and only when someone is watching.

    with transfer_progress(lambda: folder_size(path), "hashing") as progress:
        client.log_dataset("wine", path, progress=progress)

The bar appears only when stderr is a terminal and the transfer is over ``MIN_BYTES``;
otherwise the callback does nothing, so pipes, logs and ``--json`` output stay clean and
small transfers do not flicker. ``total`` may be a function so that the size (a folder
walk, a request) is worked out only when a bar will be drawn.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from cairn.client.transfer import Progress

MIN_BYTES = 8 * 1024 * 1024


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    return stream is not None and stream.isatty()


def _ignore(_n: int) -> None:
    return None


@contextmanager
def transfer_progress(total: int | Callable[[], int], label: str) -> Iterator[Progress]:
    """A ``Progress`` callback (bytes done since the last call) that drives a bar on stderr.

    Bytes past ``total`` (a retried chunk, a size that grew) are not counted, so the bar
    never runs over 100%.
    """
    if not _stderr_is_terminal():
        yield _ignore
        return
    size = total() if callable(total) else total
    if size <= MIN_BYTES:
        yield _ignore
        return
    with click.progressbar(length=size, label=label, file=sys.stderr, show_eta=True) as bar:
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            step = min(n, size - done)
            if step > 0:
                done += step
                bar.update(step)

        yield advance
