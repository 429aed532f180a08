"""The contract between the assistant's text and the painter.

The assistant writes its answer for the user and, for each image to make, a
generation prompt between generation tags: ``<gen_img>…</gen_img>`` (the
paper) or ``<gen_image>…</gen_image>`` (the released checkpoints).
:func:`parse_reply` splits a finished reply; :class:`ReplyParser` does the same
incrementally for streamed text, so a CLI or UI can show the reply as it comes
without ever showing a tag.

Rules:

- Tags are matched case-insensitively, with optional spaces inside the angle
  brackets. Nested opening tags are dropped and their content stays in the
  enclosing prompt; a closing tag with nothing open is dropped.
- An opening tag may say which task its prompt is for:
  ``<gen_img task="edit">…</gen_img>`` (quotes optional; one of :data:`TASKS`).
  The task goes to :attr:`Reply.tasks`, beside the prompt; a tag without one
  leaves the choice to the rules (:mod:`llmga.routing`), and an attribute that
  does not name a task is dropped with a notice in :attr:`Reply.notices`.
- An unclosed tag at the end of the output still yields its prompt.
- Empty or whitespace-only prompts yield no image; they are counted in
  :attr:`Reply.empty_prompts`.
- A chat-template end token (``<|im_end|>``, ``</s>``, …) ends the reply:
  it and everything after it are dropped.
- Only the assistant's output goes through this module; the user's text is
  never parsed for tags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

OPEN_TAG = "<gen_img>"
CLOSE_TAG = "</gen_img>"
#: The tasks an opening tag may name (those of :class:`llmga.routing.Task` that paint).
TASKS = ("generate", "edit", "inpaint", "outpaint", "similar", "expand", "controlnet")

#: End-of-turn tokens of common chat templates.
END_MARKERS: tuple[str, ...] = (
    "<|im_end|>",
    "</s>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|endoftext|>",
    "<|end|>",
    "<end_of_turn>",
    "<|END_OF_TURN_TOKEN|>",
)

_TAG = re.compile(r"<\s{0,3}(/?)\s{0,3}gen_im(?:g|age)(\s[^<>]{0,48})?\s{0,3}>", re.IGNORECASE)
_TASK = re.compile(r"^\s*task\s*=\s*[\"']?([a-z]+)[\"']?\s*$", re.IGNORECASE)
_MARKUP = re.compile("|".join([_TAG.pattern, *map(re.escape, END_MARKERS)]), re.IGNORECASE)
# The longest thing a tag can look like while still incomplete at the end of a chunk.
_MAX_PARTIAL = 72


@dataclass
class Reply:
    """A parsed assistant reply.

    ``text`` is what the user sees (tags and prompts removed); ``prompts`` are
    the non-empty generation prompts, in order, and ``tasks`` the task each
    one's tag named (None where it named none); ``empty_prompts`` counts tagged
    prompts that were empty and so make no image; ``notices`` says what was
    dropped (an attribute that named no task).
    """

    text: str
    prompts: list[str] = field(default_factory=list)
    empty_prompts: int = 0
    raw: str = ""
    tasks: list[str | None] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    @property
    def wants_image(self) -> bool:
        """Whether the reply asks for at least one image."""
        return bool(self.prompts)

    @property
    def stated_task(self) -> str | None:
        """The first task a tag named (None where no tag named one)."""
        return next((task for task in self.tasks if task), None)


@dataclass(frozen=True)
class Piece:
    """A piece of streamed output: ``kind`` is "text" (for the user), "prompt"
    (inside a generation tag) or "prompt_end" (a prompt is complete; its
    ``text`` is the whole prompt, tidied, and empty for an empty prompt;
    ``task`` the task its tag named, ``notice`` what was wrong with the tag)."""

    kind: str
    text: str = ""
    task: str | None = None
    notice: str | None = None


class ReplyParser:
    """Incremental parser: feed chunks of the assistant's output, get pieces.

    Text that could be the start of a tag or end marker is held back until the
    next chunk decides it, so a tag split across chunks is never shown.
    """

    def __init__(self, end_markers: Iterable[str] = ()) -> None:
        self._markers = tuple(dict.fromkeys((*END_MARKERS, *end_markers)))
        self._buffer = ""
        self._depth = 0
        self._done = False
        self._prompt: list[str] = []
        self._task: str | None = None
        self._notice: str | None = None

    def feed(self, chunk: str) -> list[Piece]:
        """Parse ``chunk`` and return the pieces that are now certain."""
        if self._done:
            return []
        self._buffer += chunk
        cut = self._end_marker_position()
        if cut is not None:
            self._buffer = self._buffer[:cut]
            return self.close()
        keep = self._held_back_length()
        ready, self._buffer = self._buffer[: len(self._buffer) - keep], self._buffer[len(self._buffer) - keep :]
        return self._scan(ready)

    def close(self) -> list[Piece]:
        """End of output: flush what was held back and end an unclosed prompt."""
        if self._done:
            return []
        pieces = self._scan(self._buffer)
        self._buffer = ""
        self._done = True
        if self._depth > 0:
            self._depth = 0
            pieces.append(self._end_prompt())
        return pieces

    def _end_marker_position(self) -> int | None:
        hits = [i for i in (self._buffer.find(m) for m in self._markers) if i >= 0]
        return min(hits) if hits else None

    def _held_back_length(self) -> int:
        """Length of the buffer's tail that may be an incomplete tag or end marker."""
        keep = 0
        lt = self._buffer.rfind("<")
        if lt >= 0 and ">" not in self._buffer[lt:] and len(self._buffer) - lt <= _MAX_PARTIAL:
            keep = len(self._buffer) - lt
        for marker in self._markers:
            for n in range(min(len(marker) - 1, len(self._buffer)), keep, -1):
                if self._buffer.endswith(marker[:n]):
                    keep = n
                    break
        return keep

    def _scan(self, text: str) -> list[Piece]:
        pieces: list[Piece] = []
        pos = 0
        for match in _TAG.finditer(text):
            self._emit(pieces, text[pos : match.start()])
            pos = match.end()
            before = self._depth
            if match.group(1):  # closing tag
                if self._depth == 1:
                    pieces.append(self._end_prompt())
                self._depth = max(0, self._depth - 1)
            else:
                if self._depth == 0:
                    self._task, self._notice = _task_of(match.group(2))
                self._depth += 1
            if 0 in (before, self._depth):  # the tag touched the user's text: keep words apart
                pieces.append(Piece("text", " "))
        self._emit(pieces, text[pos:])
        return pieces

    def _emit(self, pieces: list[Piece], text: str) -> None:
        if text:
            pieces.append(Piece("prompt" if self._depth else "text", text))
            if self._depth:
                self._prompt.append(text)

    def _end_prompt(self) -> Piece:
        prompt = _tidy(_strip_markup("".join(self._prompt)))
        piece = Piece("prompt_end", prompt, self._task, self._notice)
        self._prompt, self._task, self._notice = [], None, None
        return piece


def _task_of(attributes: str | None) -> tuple[str | None, str | None]:
    """The task an opening tag's attributes name, or (None, a notice) when they name none."""
    if not attributes or not attributes.strip():
        return None, None
    match = _TASK.match(attributes)
    if match and match.group(1).lower() in TASKS:
        return match.group(1).lower(), None
    return None, (f"the assistant's tag said {attributes.strip()!r}, which names no task "
                  f"({', '.join(TASKS)}); the task was chosen by the rules")


def assemble(pieces: Iterable[Piece], raw: str = "") -> Reply:
    """Build a :class:`Reply` from parser pieces."""
    text_parts: list[str] = []
    reply = Reply(text="", raw=raw)
    for piece in pieces:
        if piece.kind == "text":
            text_parts.append(piece.text)
        elif piece.kind == "prompt_end":
            if piece.notice:
                reply.notices.append(piece.notice)
            if piece.text:
                reply.prompts.append(piece.text)
                reply.tasks.append(piece.task)
            else:
                reply.empty_prompts += 1
    reply.text = _tidy_text(_strip_markup("".join(text_parts)))
    return reply


def parse_reply(text: str, end_markers: Iterable[str] = ()) -> Reply:
    """Split the assistant's finished output into the user's reply and generation prompts."""
    parser = ReplyParser(end_markers)
    return assemble([*parser.feed(text), *parser.close()], raw=text)


def last_open_tag_end(text: str) -> int | None:
    """Where the prompt of ``text``'s last generation tag starts, if that tag is open (either spelling), else None."""
    last = None
    for last in _TAG.finditer(text):
        pass
    return last.end() if last is not None and not last.group(1) else None


def tag_prompt(prompt: str, task: str | None = None) -> str:
    """Wrap a prompt in the generation tags the assistant is taught to write (naming its ``task`` if given)."""
    if task is None:
        return f"{OPEN_TAG}{prompt}{CLOSE_TAG}"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    return f'<gen_img task="{task}">{prompt}{CLOSE_TAG}'



def _strip_markup(text: str) -> str:
    """Remove tags and end markers that only formed when the pieces were joined."""
    while _MARKUP.search(text):
        text = _MARKUP.sub(" ", text)
    return text


def _tidy(prompt: str) -> str:
    return " ".join(prompt.split())


def _tidy_text(text: str) -> str:
    """Collapse the gaps left where prompts were removed, keep line breaks."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    out = "\n".join(lines)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()
