"""The studio's web app: Gradio Blocks mounted at /ui on the API's FastAPI app.

Chat with the assistant, upload an image and paint a mask on it, see the
reply, the generation prompt (editable, and re-painted as it is with one
button) and the images; set seed, steps, guidance, size and negative prompt;
reopen, undo, branch and delete sessions; follow progress and cancel. The
layout is in :func:`build_blocks`; what each control does is in
:class:`StudioWeb`, plain Python over the :class:`~llmga.serve.studio.Studio`
(tested without a browser).

Uploads are held to the API's limits: Gradio takes files up to the upload
size; the images it decodes itself to prepare the editor's value are refused
from their header beyond the pixel limit (Pillow's ``MAX_IMAGE_PIXELS``, set
by :func:`mount_web`; Gradio runs one send at a time); and every image the
studio uses (the editor's picture and strokes, a control map, handed over as
files) is checked from its header and decoded by the studio's
:class:`~llmga.serve.uploads.Decoder`.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import LLMGAError
from ..routing import Task
from ..tasks import Outpaint, parse_size
from .session_records import PENDING, TurnRecord
from .studio import Studio, TurnInput
from .uploads import Upload

SIZES = ["default", "256", "384", "512", "640", "768", "1024"]
TASKS = ["auto"] + [t.value for t in Task]
POLL_SECONDS = 0.25

#: what every view action returns, in this order (see ``StudioWeb.view``)
VIEW = ("chat", "gallery", "prompt", "status", "images")


class StudioWeb:
    """The web app's actions over a studio; each returns the new values of the view's components."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    # -- sessions ---------------------------------------------------------

    def session_choices(self) -> list[tuple[str, str]]:
        return [(f"{s.title} ({s.turns} turns)", s.id) for s in self.studio.sessions(200)]

    def view(self, session_id: str | None, status: str = "") -> tuple:
        """(chat messages, gallery, last prompt, status line, image hashes in gallery order)."""
        if not session_id:
            return [], [], "", status, []
        _, turns = self.studio.session(session_id)
        outputs = [(ref, turn) for turn in turns for ref in turn.images_of("output")]
        gallery = [(str(self.studio.store.image_path(ref.hash)), f"turn {turn.seq}: {ref.prompt}")
                   for ref, turn in outputs]
        prompts = [p for turn in turns for p in turn.prompts]
        chat = chat_messages(turns, self.studio.image_url)
        return chat, gallery, prompts[-1] if prompts else "", status, [ref.hash for ref, _ in outputs]

    def new_session(self) -> str:
        return self.studio.create_session().id

    def delete(self, session_id: str | None) -> tuple:
        """Delete the open session and its images; the view goes blank."""
        if not session_id:
            return self.view(None, "no session to delete")
        try:
            gone = self.studio.delete_session(session_id)
        except LLMGAError as exc:
            return self.view(None, f"⚠ {exc}")
        return self.view(None, f"deleted the session and {gone} image(s) only it used")

    def undo(self, session_id: str | None) -> tuple:
        if not session_id:
            return self.view(None, "no session to undo in")
        try:
            turn = self.studio.undo(session_id)
        except LLMGAError as exc:
            return self.view(session_id, f"⚠ {exc}")
        return self.view(session_id, f"took back turn {turn.seq}")

    def editor_value(self, image: str | None) -> Any:
        """A selected image, put in the editor so a mask can be painted on it (None leaves the editor as is)."""
        if not image:
            return None
        path = self.studio.store.image_path(image)
        return {"background": str(path), "layers": [], "composite": str(path)}

    def branch(self, session_id: str | None, image: str | None) -> str | None:
        """A new session continuing from the selected image (or the whole session); its id."""
        if not session_id:
            return None
        return self.studio.branch(session_id, image=image).id

    def cancel(self, session_id: str | None) -> str:
        _, turns = self.studio.session(session_id) if session_id else (None, [])
        job = next((self.studio.job_of(t) for t in reversed(turns) if t.status == PENDING), None)
        if job is None:
            return "nothing is running"
        self.studio.cancel(job.id)
        return "cancelling…"

    # -- turns ------------------------------------------------------------

    def send(self, session_id: str | None, text: str, editor: Any, task: str, settings: dict[str, Any],
             refine: bool = True, extras: dict[str, Any] | None = None) -> Iterator[tuple[str, tuple]]:
        """Run a turn; yield (session id, view) as it goes: the reply as it is written, progress, the result.

        ``extras`` are the task inputs of the advanced panel (see :func:`task_extras`).
        """
        session_id = session_id or self.new_session()
        try:
            image, mask = editor_uploads(editor, self.studio)
            turn = TurnInput(text, image=image, mask=mask, task=None if task in (None, "auto") else task,
                             refine=refine, paint=settings, **(extras or {}))
            record, job = self.studio.submit_turn(session_id, turn)
        except LLMGAError as exc:
            yield session_id, self.view(session_id, f"⚠ {exc}")
            return
        pieces: list[str] = []
        job.subscribe(lambda event: pieces.append(event["text"]) if event["type"] == "text" else None)
        yield session_id, self.view(session_id, _progress(job))  # the message shows at once
        while not job.wait(POLL_SECONDS):
            chat, *rest = self.view(session_id, _progress(job))
            if pieces and chat:
                chat[-1] = {"role": "assistant", "content": "".join(pieces) + " …"}
            yield session_id, (chat, *rest)
        done = self.studio.store.get_turn(record.id)
        yield session_id, self.view(session_id, _outcome(done))


def editor_uploads(value: Any, studio: Studio) -> tuple[Upload | None, Upload | None]:
    """The uploaded picture and the painted mask (strokes on any layer, white = repaint) of an ImageEditor value.

    Its images are files (or PIL images, from Python), each checked and decoded by the studio's decoder.
    """
    if not value or value.get("background") is None:
        return None, None
    image = studio.decoder.image(_bytes(value["background"]), "image")
    width, height = image.original_size
    strokes = np.zeros((height, width), dtype=bool)
    for layer in value.get("layers") or []:
        layer = studio.decoder.picture(_bytes(layer), "mask layer").convert("RGBA").resize((width, height))
        strokes |= np.asarray(layer.getchannel("A")) > 0
    if not strokes.any():
        return image, None
    mask = Image.fromarray(np.where(strokes, 255, 0).astype(np.uint8))
    if mask.size != image.image.size:
        mask = mask.resize(image.image.size, Image.Resampling.NEAREST)
    return image, Upload(mask, (width, height))


def chat_messages(turns: list[TurnRecord], url_for: Callable[[str, str], str]) -> list[dict[str, str]]:
    """The turns as chat messages (Markdown): the user's words, the reply, prompts, images, notices, errors."""
    messages = []
    for turn in turns:
        uploads = " ".join(f"![upload]({url_for(turn.session_id, r.hash)})" for r in turn.images_of("input"))
        messages.append({"role": "user", "content": f"{turn.user_text}\n\n{uploads}".strip()})
        parts = [turn.reply_text] if turn.reply_text else []
        if turn.task:
            parts.append(f"*task: {turn.task}*")
        parts.extend(f"> **prompt:** {prompt}" for prompt in turn.prompts)
        parts.extend(f"![{r.prompt or ''}]({url_for(turn.session_id, r.hash)})" for r in turn.images_of("output"))
        parts.extend(f"*note: {n}*" for n in turn.notices)
        parts.extend(f"⚠ {e}" for e in turn.errors)
        if turn.status != "done":
            parts.append(f"*{turn.status}{': ' + turn.error if turn.error else ''}*")
        messages.append({"role": "assistant", "content": "\n\n".join(parts) or "…"})
    return messages


def paint_settings(seed: Any, steps: Any, guidance: Any, width: str, height: str, negative: str,
                   restore: bool = True) -> dict[str, Any]:
    """The advanced panel as paint overrides (empty fields: the server's defaults; ``restore`` unticked: no
    seam repair for this turn)."""
    settings = {"seed": _int(seed), "steps": _int(steps), "guidance": guidance if guidance not in ("", None) else None,
                "width": None if width in (None, "default") else int(width),
                "height": None if height in (None, "default") else int(height),
                "negative_prompt": negative or None, "restore": None if restore else False}
    return {k: v for k, v in settings.items() if v is not None}


def task_extras(outpaint: str, grow: str, control: Any, from_photo: bool, source: str,
                studio: Studio) -> dict[str, Any]:
    """The advanced panel's task inputs as turn fields (empty fields: none).

    ``outpaint``: "LEFT RIGHT TOP BOTTOM" pixels or an aspect like "16:9";
    ``grow``: a WIDTHxHEIGHT to grow to; ``control``: a control map (or, with
    ``from_photo``, a photo to take canny edges from); ``source``: the
    description of an uploaded image being edited.
    """
    extras: dict[str, Any] = {}
    if (outpaint or "").strip():
        spec = Outpaint.parse(outpaint.strip())
        extras["outpaint"] = {k: v for k, v in asdict(spec).items() if v not in (0, None)}
    if (grow or "").strip():
        extras["expand_to"] = parse_size(grow.strip())
    if control is not None:
        extras["control"] = studio.decoder.image(_bytes(control), "control image")
        extras["control_from_photo"] = bool(from_photo)
    if (source or "").strip():
        extras["source_prompt"] = source.strip()
    return extras


def _bytes(value: Any) -> bytes:
    """The bytes of an image Gradio hands over: a file path, or (from Python) a PIL image or an array."""
    if isinstance(value, (str, Path)):
        return Path(value).read_bytes()
    picture = value if isinstance(value, Image.Image) else Image.fromarray(np.asarray(value))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _int(value: Any) -> int | None:
    return None if value in ("", None) else int(value)


def _progress(job: Any) -> str:
    if job.status == "queued":
        return "⏳ waiting for a free painter…"
    step, total = job.progress or (0, 0)
    return f"🎨 painting: step {step} of {total}" if total else "✍ the assistant is writing…"


def _outcome(turn: TurnRecord) -> str:
    if turn.status == "done":
        return f"done in {turn.finished - turn.created:.1f} s" + (f" ({len(turn.errors)} error(s))" if turn.errors else "")
    return f"⚠ {turn.status}: {turn.error or ''}"


# -- layout ---------------------------------------------------------------


def build_blocks(web: StudioWeb) -> Any:
    """The Gradio Blocks of the studio."""
    import gradio as gr

    with gr.Blocks(title="llmga studio") as blocks:
        session = gr.State(None)
        images = gr.State([])
        selected = gr.State(None)
        with gr.Row():
            with gr.Column(scale=1, min_width=240):
                sessions = gr.Dropdown(label="Sessions", choices=web.session_choices(), interactive=True)
                with gr.Row():
                    new = gr.Button("New session")
                    refresh = gr.Button("↻")
                undo = gr.Button("Undo last turn")
                branch = gr.Button("Branch from selected image")
                delete = gr.Button("Delete session", variant="stop")
                with gr.Accordion("Advanced", open=False):
                    task = gr.Dropdown(TASKS, value="auto", label="Task")
                    seed = gr.Number(None, label="Seed", precision=0)
                    steps = gr.Number(None, label="Steps", precision=0, minimum=1)
                    guidance = gr.Number(None, label="Guidance")
                    width = gr.Dropdown(SIZES, value="default", label="Width")
                    height = gr.Dropdown(SIZES, value="default", label="Height")
                    negative = gr.Textbox(label="Negative prompt")
                    restore = gr.Checkbox(True, label="Repair in/outpainting seams (when a restorer is configured)")
                    outpaint = gr.Textbox(label="Outpaint: pixels LEFT RIGHT TOP BOTTOM, or an aspect like 16:9")
                    grow = gr.Textbox(label="Grow to WIDTHxHEIGHT, step by step (e.g. 2048x512)")
                    control = gr.Image(label="Control map (ControlNet)", type="filepath", image_mode=None, height=160)
                    from_photo = gr.Checkbox(label="The control image is a photo: use its canny edges")
                    source = gr.Textbox(label="Description of the uploaded image (for edits)")
            with gr.Column(scale=3):
                chat = gr.Chatbot(label="Conversation", height=480, elem_id="studio-chat")
                status = gr.Markdown("", elem_id="studio-status")
                with gr.Row():
                    text = gr.Textbox(placeholder="Ask for a picture, or say how to change the last one…",
                                      show_label=False, scale=4, elem_id="studio-message")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="studio-send")
                    cancel = gr.Button("Cancel", scale=1)
                editor = gr.ImageEditor(label="Image (paint over the part to repaint: any stroke is the mask)",
                                        type="filepath", height=360, elem_id="studio-editor")
                with gr.Row():
                    prompt = gr.Textbox(label="Generation prompt (edit and re-paint)", scale=4)
                    repaint = gr.Button("Re-paint", scale=1)
                gallery = gr.Gallery(label="Images (select one to paint a mask on it or branch from it)", columns=4, height=260,
                                     elem_id="studio-gallery")

        view = [chat, gallery, prompt, status, images]
        advanced = [task, seed, steps, guidance, width, height, negative, restore, outpaint, grow, control, from_photo, source]

        def choices(session_id):
            return gr.update(choices=web.session_choices(), value=session_id)

        def run(session_id, message, picture, task_name, *fields, refine=True):
            if not (message or "").strip():
                yield session_id, choices(session_id), *web.view(session_id, "type a message first")
                return
            try:
                extras = task_extras(*fields[7:], web.studio)
            except LLMGAError as exc:
                yield session_id, choices(session_id), *web.view(session_id, f"⚠ {exc}")
                return
            for current, values in web.send(session_id, message, picture, task_name, paint_settings(*fields[:7]),
                                            refine=refine, extras=extras):
                yield current, choices(current), *values

        def run_prompt(session_id, edited, task_name, *fields):
            yield from run(session_id, edited, None, task_name, *fields, refine=False)

        def pick(hashes, event):
            return hashes[event.index] if event.index is not None and event.index < len(hashes) else None

        pick.__annotations__["event"] = gr.SelectData  # a string under postponed annotations; Gradio needs the class

        def show(session_id, status=""):
            return session_id, choices(session_id), *web.view(session_id, status)

        def branch_from(session_id, image):
            new_id = web.branch(session_id, image)
            return show(new_id, "branched" if new_id else "open a session first")

        sessions.input(lambda sid: (sid, *web.view(sid)), sessions, [session, *view])
        new.click(lambda: show(web.new_session()), None, [session, sessions, *view])
        refresh.click(lambda sid: (choices(sid), *web.view(sid)), session, [sessions, *view])
        undo.click(web.undo, session, view)
        delete.click(lambda sid: (None, choices(None), *web.delete(sid)), session, [session, sessions, *view])
        gallery.select(pick, images, selected).then(web.editor_value, selected, editor, api_name=False)
        branch.click(branch_from, [session, selected], [session, sessions, *view])
        send_event = {"fn": run, "inputs": [session, text, editor, *advanced], "outputs": [session, sessions, *view]}
        send.click(**send_event, api_name="send").then(lambda: "", None, text, api_name=False)
        text.submit(**send_event, api_name=False).then(lambda: "", None, text, api_name=False)
        repaint.click(run_prompt, [session, prompt, *advanced], [session, sessions, *view], api_name="repaint")
        cancel.click(web.cancel, session, status, api_name="cancel")
    return blocks


def mount_web(app: Any, studio: Studio, path: str = "/ui") -> Any:
    """Mount the web app on ``app`` at ``path`` (Gradio serves the gallery's files from the store's folder).

    Pillow's own guard is set to the studio's pixel limit for this process, so an
    image Gradio opens is refused from its header beyond it (Pillow refuses
    images over twice ``MAX_IMAGE_PIXELS``).
    """
    import gradio as gr

    Image.MAX_IMAGE_PIXELS = studio.limits.max_image_pixels // 2

    blocks = build_blocks(StudioWeb(studio))
    return gr.mount_gradio_app(app, blocks, path=path, allowed_paths=[str(studio.store.files_root)],
                               ssr_mode=False, footer_links=["api"], max_file_size=studio.limits.max_image_bytes)
