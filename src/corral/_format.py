"""Fitting a result into a model's context budget.

Codex users lost the tail of failed builds to head-only truncation, found the
truncation notice in the middle of the text, and could not trust its counts.
Here the beginning *and* the end are kept, cut on line boundaries, the tail
gets the larger share (errors come last), and one notice at the top says
exactly how many lines and bytes are missing and where the complete output is.

Counting rules: a line is text up to and including ``"\\n"`` (a final line
without one counts too).  A line shown only in part -- one longer than the
whole budget, or one cut by the capture cap -- counts as omitted; the bytes
of it that are shown count as shown.  Shown bytes are measured by encoding
the shown text back with the output's encoding, which is exact for output
that decoded without errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._result import CapturedText, ExecResult

__all__ = ["BYTES_PER_TOKEN", "DEFAULT_MAX_TOKENS", "TruncatedText", "format_for_model",
           "truncate_middle"]

#: Codex's usual budget for a tool's output.
DEFAULT_MAX_TOKENS = 10_000
#: An estimate (no tokenizer): English text and code average about 4 bytes a token.
BYTES_PER_TOKEN = 4
# The tail's share of the body budget; whatever one side leaves, the other gets.
_TAIL_SHARE = 0.6
_CUT_MARK = "…[line truncated]\n"


@dataclass(frozen=True, slots=True)
class TruncatedText:
    """Text cut in the middle to fit a budget, and what was cut.

    ``omitted_lines`` counts lines not shown in full; ``omitted_chars`` the
    characters not shown (markers excluded).
    """

    text: str
    omitted_lines: int
    omitted_chars: int
    shown_head_lines: int
    shown_tail_lines: int


@dataclass(frozen=True, slots=True)
class _Selection:
    head: list[str]      # complete lines from the start
    tail: list[str]      # complete lines from the end
    head_cut: str = ""   # a shown prefix of the next line, when no whole line fit

    def shown_text(self) -> str:
        return "".join(self.head) + self.head_cut + "".join(self.tail)


def _take(lines: list[str], budget: int, from_end: bool) -> tuple[int, int]:
    """How many lines (from the start or the end) fit in ``budget``, and their size."""
    used = count = 0
    indices = range(len(lines) - 1, -1, -1) if from_end else range(len(lines))
    for i in indices:
        if used + len(lines[i]) > budget:
            break
        used += len(lines[i])
        count += 1
    return count, used


def _select(
    head: list[str], tail: list[str], shared: bool, budget: int, partial_head: str = ""
) -> _Selection:
    """Chooses lines from the start of ``head`` and the end of ``tail``.

    ``shared``: head and tail are the same list (nothing dropped before), so
    the sides must not overlap.  When no whole line of the head fits, the
    start of the first one (or of ``partial_head``, a line the capture cut)
    is shown, cut.
    """
    tail_budget = int(budget * _TAIL_SHARE)
    n_tail, used_tail = _take(tail, tail_budget, from_end=True)
    head_limit = len(head) - n_tail if shared else len(head)
    n_head, used_head = _take(head[:head_limit], budget - used_tail, from_end=False)
    spare = budget - used_head - used_tail
    if spare > 0:  # the head left room: give it back to the tail
        rest = tail[n_head if shared else 0 : len(tail) - n_tail]
        more, used_more = _take(rest, spare, from_end=True)
        n_tail += more
        spare -= used_more
    head_cut = ""
    if n_head == 0 and spare > len(_CUT_MARK):
        unshown = head[: len(head) - n_tail] if shared else head
        candidate = unshown[0] if unshown else "" if shared else partial_head
        head_cut = candidate[: spare - len(_CUT_MARK)]
    return _Selection(head[:n_head], tail[len(tail) - n_tail:] if n_tail else [], head_cut)


def _split_lines(text: str, *, drop_first: bool, drop_last: bool) -> tuple[list[str], str, str]:
    """Lines of ``text``; optionally without the partial first/last line (returned apart)."""
    lines = text.splitlines(keepends=True)
    first = last = ""
    if drop_last and lines and not lines[-1].endswith("\n"):
        last = lines.pop()
    if drop_first and lines:
        first = lines.pop(0)
    return lines, first, last


def truncate_middle(text: str, *, max_chars: int) -> TruncatedText:
    """``text`` cut in the middle to at most ``max_chars`` characters, markers included.

    The shared mechanism of :func:`format_for_model`, for any text.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    lines = text.splitlines(keepends=True)
    if len(text) <= max_chars:
        return TruncatedText(text, 0, 0, len(lines), 0)
    marker_room = len(_marker(len(lines)))
    selection = _select(lines, lines, True, max(0, max_chars - marker_room))
    body = _body(selection, len(lines))
    shown = len(selection.head) + len(selection.tail)
    return TruncatedText(body, len(lines) - shown, len(text) - len(selection.shown_text()),
                         len(selection.head), len(selection.tail))


def _lines(count: int) -> str:
    return f"{count} line" if count == 1 else f"{count} lines"


def _marker(omitted_lines: int) -> str:
    return f"[... {_lines(omitted_lines)} omitted ...]\n"


def _body(selection: _Selection, total_lines: int) -> str:
    omitted = total_lines - len(selection.head) - len(selection.tail)
    cut = selection.head_cut + _CUT_MARK if selection.head_cut else ""
    return "".join(selection.head) + cut + _marker(omitted) + "".join(selection.tail)


def _header(result: ExecResult) -> str:
    lines = [f"Exit code: {result.exit_code}", f"Wall time: {result.duration:.2f} s"]
    if result.timed_out:
        lines.append("Timed out: the command and everything it started were killed")
    elif result.cancelled:
        lines.append("Cancelled: the command and everything it started were killed")
    elif result.signal is not None:
        lines.append(f"Killed by signal {result.signal_name} ({result.signal})")
    return "\n".join(lines) + "\n"


def _notice(result: ExecResult, head_lines: int, tail_lines: int, lines: int, size: int) -> str:
    out = result.output
    where = f" Full output: {result.spill_path}" if result.spill_path else ""
    return (
        f"[corral: output truncated: showing the first {head_lines} and the last {tail_lines}"
        f" of {_lines(out.total_lines)}; {_lines(lines)} ({size} bytes) omitted from the middle."
        f"{where}]\n"
    )


def _bytes(text: str, encoding: str) -> int:
    try:
        return len(text.encode(encoding, errors="replace"))
    except LookupError:
        return len(text.encode())


def format_for_model(
    result: ExecResult, *, max_tokens: int | None = None, max_chars: int | None = None
) -> str:
    """The result as text for a model, at most ``max_chars`` characters long.

    Give ``max_tokens`` (converted at :data:`BYTES_PER_TOKEN` characters a
    token) or ``max_chars``, not both; neither means :data:`DEFAULT_MAX_TOKENS`.
    The header (exit code, wall time, timeout or signal) and the truncation
    notice are always included, even if they alone exceed a tiny budget
    (about 200 characters); the output itself always fits.
    """
    if max_tokens is not None and max_chars is not None:
        raise ValueError("give max_tokens or max_chars, not both")
    budget = max_chars if max_chars is not None else (
        (DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens) * BYTES_PER_TOKEN
    )
    if budget <= 0:
        raise ValueError(f"the output budget must be positive, got {budget}")
    header = _header(result) + "Output:\n"
    out: CapturedText = result.output
    if not out.truncated and len(header) + len(out.head) <= budget:
        return header + out.head
    head, _, head_partial = _split_lines(out.head, drop_first=False, drop_last=out.truncated)
    if out.truncated:
        tail, _, _ = _split_lines(out.tail, drop_first=True, drop_last=False)
    else:
        tail = head
    # Reserve room for the notice and the marker with the largest numbers they can hold.
    widest = _notice(result, out.total_lines, out.total_lines, out.total_lines, out.total_bytes)
    room = budget - len(header) - len(widest) - len(_marker(out.total_lines))
    selection = _select(head, tail, not out.truncated, max(0, room), head_partial)
    omitted_lines = out.total_lines - len(selection.head) - len(selection.tail)
    omitted_bytes = out.total_bytes - _bytes(selection.shown_text(), out.encoding)
    notice = _notice(result, len(selection.head), len(selection.tail), omitted_lines, omitted_bytes)
    return _header(result) + notice + "Output:\n" + _body(selection, out.total_lines)
