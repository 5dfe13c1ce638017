"""Fitting a result into a model's context budget.

Codex users lost the tail of failed builds to head-only truncation, found the
truncation notice in the middle of the text, and could not trust its counts.
Here the beginning *and* the end are kept, cut on line boundaries, the tail
gets the larger share (errors come last), and one notice at the top says
exactly how many lines and bytes are missing and where the complete output is.

Selection (shared by :func:`truncate_middle` and :func:`format_for_model`):
the tail may use 60% of the budget and the head the rest; a side that leaves
part of its share unused gives it to the other.  Each side shows whole lines,
the tail's counted from the end, and stops at the first line that does not
fit.  Only a side that cannot show a single whole line -- the output's last
line is longer than the tail's share, or its first line longer than the
head's room -- cuts inside that line (on a character boundary): the head
shows its start followed by ``…[line truncated]``, the tail its end preceded
by ``[line truncated]…``.

Counting rules, which make every number exact:

* A line is text up to and including ``"\\n"``; a final line without one
  counts too.
* A line shown in part counts as shown; its missing characters count as
  omitted.  A line whose start and end are both shown (an output of one
  huge line) counts once, as a head line.  Hence ``shown head lines + shown
  tail lines + omitted lines == total lines``.
* When the capture already dropped a middle, the line that the capture's
  head ends in and the line its tail starts in are treated as incomplete
  (whether a cut fell on a line boundary is not recorded): they are not
  shown, except as the cut line above, and count as omitted.
* Bytes: shown bytes are the shown text encoded with the output's encoding
  (``errors="replace"``), omitted bytes are the total minus those.  That is
  exact for output that decoded without errors; a replacement character may
  encode longer than the bytes it replaced, so the count is then approximate
  (never below 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._result import ExecResult

__all__ = [
    "BYTES_PER_TOKEN",
    "DEFAULT_MAX_TOKENS",
    "TruncatedText",
    "chars_for_tokens",
    "fit_for_model",
    "format_for_model",
    "truncate_middle",
]

#: Codex's usual budget for a tool's output, in tokens.
DEFAULT_MAX_TOKENS = 10_000
#: Characters per token when converting ``max_tokens``: an estimate (no tokenizer),
#: about right for English text and code.
BYTES_PER_TOKEN = 4

_HEAD_CUT = "…[line truncated]\n"
_TAIL_CUT = "[line truncated]…"
_OUTPUT = "Output:\n"


@dataclass(frozen=True, slots=True)
class TruncatedText:
    """Text cut in the middle to fit a budget, and exactly what was cut.

    ``shown_head_lines``/``shown_tail_lines`` count the lines shown, at least
    in part, from the start and from the end; ``omitted_lines`` the lines not
    shown at all; the three add up to the text's lines.  ``omitted_chars``
    counts the text's characters not shown (markers are not text).
    """

    text: str
    omitted_lines: int
    omitted_chars: int
    shown_head_lines: int
    shown_tail_lines: int


def _marker(omitted_lines: int) -> str:
    return f"[... {_lines(omitted_lines)} omitted ...]\n"


def _lines(count: int) -> str:
    return f"{count} line" if count == 1 else f"{count} lines"


def _count_lines(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


@dataclass(frozen=True, slots=True)
class _Selection:
    head: str  # shown from the start: whole lines, or the start of the first line
    tail: str  # shown from the end: whole lines, or the end of the last line
    head_cut: bool
    tail_cut: bool
    head_lines: int
    tail_lines: int  # without the line already counted in the head, if both show it

    def render(self, omitted_lines: int) -> str:
        """Head, tail and the marks between them; the marker only if whole lines are missing."""
        return "".join((
            self.head,
            _HEAD_CUT if self.head_cut else "",
            _marker(omitted_lines) if omitted_lines else "",
            _TAIL_CUT if self.tail_cut else "",
            self.tail,
        ))


def _line_end(text: str, limit: int) -> int:
    """The end of the last whole line (``"\\n"`` included) in ``text[:limit]``; 0 if none."""
    return text.rfind("\n", 0, limit) + 1


def _line_start(text: str, lowest: int) -> int:
    """The first line start at or after ``lowest``; ``len(text)`` if there is none."""
    if lowest == 0:
        return 0
    found = text.find("\n", lowest - 1)
    return len(text) if found < 0 else found + 1


def _select(head: str, tail: str, budget: int, middle_newlines: int | None) -> _Selection:
    """What to show of ``head``'s start and ``tail``'s end in ``budget`` characters.

    ``middle_newlines`` is None when ``head`` and ``tail`` are one text, longer
    than ``budget``, whose two ends must not overlap.  Otherwise a middle
    holding that many newlines was dropped between them, and the line ``head``
    ends in and the one ``tail`` starts in are taken as incomplete: shown only
    as a cut line.  Cut marks count against ``budget``; the omission marker
    does not.
    """
    joined = middle_newlines is None
    budget = max(budget, 0)
    size = len(tail)
    tail_share = budget - budget * 2 // 5
    start = _line_start(tail, max(size - tail_share, 0 if joined else 1))
    tail_cut = start == size and size > 0 and tail_share > len(_TAIL_CUT)
    if tail_cut:
        start = max(size - (tail_share - len(_TAIL_CUT)), 0)
    room = budget - (size - start) - (len(_TAIL_CUT) if tail_cut else 0)
    stop = start if joined else len(head)
    end = _line_end(head, min(room, stop))
    head_cut = end == 0 and stop > 0 and room > len(_HEAD_CUT)
    if head_cut:
        end = min(room - len(_HEAD_CUT), stop)
    else:  # the head may leave room for more of the tail
        lowest = start - (room - end)
        whole = _line_start(tail, max(lowest, end if joined else 1))
        if whole < size or not tail_cut:
            start, tail_cut = whole, False
        else:
            start = max(lowest, 0)
    tail_lines = _count_lines(tail[start:])
    if head_cut and tail_cut:
        if joined:
            one_line = head.find("\n", end, start) < 0
        else:
            one_line = (middle_newlines == 0 and head.find("\n", end) < 0
                        and tail.find("\n", 0, start) < 0)
        if one_line:
            tail_lines -= 1
    head_lines = 1 if head_cut else head.count("\n", 0, end)
    return _Selection(head[:end], tail[start:], head_cut, tail_cut, head_lines, tail_lines)


def truncate_middle(text: str, *, max_chars: int) -> TruncatedText:
    """``text`` in at most ``max_chars`` characters, its middle replaced by a marker.

    Unchanged if it fits.  Otherwise its start and end are kept by the rules
    in the module docstring, with ``[... N lines omitted ...]`` between them
    when whole lines are missing.  The marker is always kept, so a
    ``max_chars`` smaller than it (about 30) yields the marker alone.
    Raises ValueError if ``max_chars`` is not positive.
    """
    _positive("max_chars", max_chars)
    total = _count_lines(text)
    if len(text) <= max_chars:
        return TruncatedText(text, 0, 0, total, 0)
    selection = _select(text, text, max_chars - len(_marker(total)), None)
    omitted = total - selection.head_lines - selection.tail_lines
    return TruncatedText(
        selection.render(omitted),
        omitted,
        len(text) - len(selection.head) - len(selection.tail),
        selection.head_lines,
        selection.tail_lines,
    )


def _status(result: ExecResult) -> str:
    lines = [f"Exit code: {result.exit_code}", f"Wall time: {result.duration:.2f} s"]
    if result.timed_out:
        lines.append("Timed out: the command was killed after the timeout")
    if result.cancelled:
        lines.append("Cancelled")
    if result.signal is not None and not (result.timed_out or result.cancelled):
        lines.append(f"Killed by signal {result.signal_name} ({result.signal})")
    return "\n".join(lines) + "\n"


def _notice(
    full_output: str | None, head: int, tail: int, total: int, omitted: int, omitted_bytes: int
) -> str:
    where = f" Full output: {full_output}" if full_output else ""
    return (
        f"[corral: output truncated: showing the first {head} and the last {tail}"
        f" of {_lines(total)}; omitted {_lines(omitted)} ({omitted_bytes} bytes)"
        f" from the middle.{where}]\n"
    )


def _positive(name: str, value: int) -> int:
    """``value``, once it is positive.  Raises ValueError naming ``name`` otherwise."""
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def chars_for_tokens(tokens: int, name: str = "max_tokens") -> int:
    """The characters a budget of ``tokens`` tokens allows, at
    :data:`BYTES_PER_TOKEN` a token.  Raises ValueError naming ``name`` (the
    caller's parameter) if ``tokens`` is not positive."""
    return _positive(name, tokens) * BYTES_PER_TOKEN


def _budget(max_tokens: int | None, max_chars: int | None) -> int:
    if max_tokens is not None and max_chars is not None:
        raise ValueError("give max_tokens or max_chars, not both")
    if max_chars is not None:
        return _positive("max_chars", max_chars)
    return chars_for_tokens(DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens)


def format_for_model(
    result: ExecResult, *, max_tokens: int | None = None, max_chars: int | None = None
) -> str:
    """``result`` as plain text for a model, in at most the budget's characters.

    The budget is ``max_chars`` characters, or ``max_tokens`` tokens
    converted at :data:`BYTES_PER_TOKEN` characters a token (an estimate:
    no tokenizer is involved); give one, not both (ValueError), or neither
    for :data:`DEFAULT_MAX_TOKENS`.  A budget that is not positive raises
    ValueError.  The layout::

        Exit code: 1
        Wall time: 0.42 s
        Timed out: the command was killed after the timeout   (if it was)
        Cancelled                                             (if it was)
        Killed by signal SIGSEGV (11)                         (otherwise, if one did)
        [corral: output truncated: showing the first 120 and the last 80 of 5000 lines;
         omitted 4800 lines (1234567 bytes) from the middle. Full output: /tmp/x/output.log]
        Output:
        <head lines>
        [... 4800 lines omitted ...]
        <tail lines>

    (the notice is one line).  The output (``result.output``, stdout and
    stderr interleaved) follows verbatim, without notice, when it fits and
    the capture kept all of it.  Otherwise its start and end are selected as
    the module docstring describes; the notice's numbers are exact by its
    counting rules, ``Full output`` appears when ``result.spill_path`` is
    set, and the ``[... N lines omitted ...]`` marker when whole lines are
    missing.  The budget covers everything returned, but the lines above
    ``Output:`` and the marker are always included: a budget smaller than
    they are (about 200 characters plus the spill path) returns them alone,
    and longer.
    """
    spill = result.spill_path
    return fit_for_model(result, _budget(max_tokens, max_chars),
                         None if spill is None else str(spill))


def fit_for_model(result: ExecResult, budget: int, full_output: str | None) -> str:
    """:func:`format_for_model`'s text for ``result`` in ``budget`` characters
    (positive, as :func:`chars_for_tokens` gives them), its notice naming ``full_output`` as where
    the complete output is (no ``Full output`` when None), whatever
    ``result.spill_path`` says: for a caller that serves the output some
    other way than by its path."""
    status = _status(result)
    out = result.output
    middle_newlines: int | None
    if out.truncated:
        head, tail, middle_newlines = out.head, out.tail, out.omitted_lines
    else:
        head = tail = out.text
        middle_newlines = None
        if not head or len(status) + len(_OUTPUT) + len(head) <= budget:
            return status + _OUTPUT + head  # nothing to omit
    # Room for the notice and the marker with the widest numbers they can hold.
    widest = _notice(full_output, out.total_lines, out.total_lines, out.total_lines,
                     out.total_lines, out.total_bytes)
    room = budget - len(status) - len(widest) - len(_OUTPUT) - len(_marker(out.total_lines))
    selection = _select(head, tail, room, middle_newlines)
    omitted_lines = out.total_lines - selection.head_lines - selection.tail_lines
    shown_bytes = len((selection.head + selection.tail).encode(out.encoding, errors="replace"))
    notice = _notice(full_output, selection.head_lines, selection.tail_lines,
                     out.total_lines, omitted_lines, max(out.total_bytes - shown_bytes, 0))
    return status + notice + _OUTPUT + selection.render(omitted_lines)
