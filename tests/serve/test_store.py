"""The session store: durable sessions, turns and content-addressed images; undo, branches, crash recovery."""

import hashlib
import sqlite3
import threading

import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.images import png_bytes
from llmga.serve.http_errors import ConflictError, NotFoundError
from llmga.serve.store import DONE, INTERRUPTED, PENDING, SQLiteStore, TurnOutcome, open_store


def png(colour, size=(8, 8), **meta):
    return png_bytes(Image.new("RGB", size, colour), meta or None)


def finished_turn(store, session_id, text, colours=("red",)):
    turn = store.begin_turn(session_id, text, {"refine": True})
    outputs = [(store.put_image(png(c, prompt=text)), text, {"seed": i}) for i, c in enumerate(colours)]
    return store.finish_turn(turn.id, TurnOutcome(f"reply to {text}", f"raw {text}", [text], "generate",
                                                  "a text request", outputs=outputs))


@pytest.fixture
def store(tmp_path):
    s = SQLiteStore(tmp_path / "data")
    yield s
    s.close()


def test_images_are_files_named_by_their_hash(store):
    data = png("blue")
    digest = store.put_image(data)
    path = store.image_path(digest)
    assert digest == hashlib.sha256(data).hexdigest() and path.name == f"{digest}.png"
    assert path.read_bytes() == data
    assert store.put_image(data) == digest  # stored once
    assert not list(store.blobs.root.rglob(".tmp-*"))


@pytest.mark.parametrize("bad", ["../studio.db", "a" * 63, "A" * 64, "g" * 64, "", "0" * 64 + "/x"])
def test_image_path_accepts_only_known_hashes(store, bad):
    with pytest.raises(NotFoundError):
        store.image_path(bad)
    with pytest.raises(NotFoundError):  # well-formed but unknown
        store.image_path("0" * 64)


def test_a_turn_is_pending_then_done_with_everything_it_made(store):
    session = store.create_session()
    upload = store.put_image(png("green"))
    turn = store.begin_turn(session.id, "draw a fox", {"task": None}, [("input", upload)])
    assert turn.status == PENDING and turn.seq == 1 and [r.hash for r in turn.images_of("input")] == [upload]
    assert store.get_session(session.id).title == "draw a fox"
    with pytest.raises(ConflictError):  # one running turn per session
        store.begin_turn(session.id, "another", {})
    out = store.put_image(png("red", prompt="a fox"))
    done = store.finish_turn(turn.id, TurnOutcome("Here!", "Here! <gen_img>a fox</gen_img>", ["a fox"], "generate",
                                                  "a text request", ["note"], [], [(out, "a fox", {"seed": 3})]))
    assert done.status == DONE and done.reply_text == "Here!" and done.prompts == ["a fox"]
    assert [(r.hash, r.prompt, r.metadata, r.width) for r in done.images_of("output")] == [(out, "a fox", {"seed": 3}, 8)]
    with pytest.raises(ConflictError):
        store.finish_turn(turn.id, TurnOutcome("", "", []))


def test_sessions_survive_reopening_and_list_newest_first(tmp_path):
    first = open_store(tmp_path)
    old = first.create_session("old")
    new = first.create_session("new")
    finished_turn(first, new.id, "a cat")
    first.close()
    again = open_store(f"sqlite:///{tmp_path}")
    assert [s.id for s in again.list_sessions()] == [new.id, old.id]
    assert again.get_session(new.id).turns == 1
    assert again.turns(new.id)[0].reply_text == "reply to a cat"
    assert sqlite3.connect(tmp_path / "studio.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again.close()


def test_store_urls(tmp_path):
    with pytest.raises(InvalidInputError, match="PostgreSQL"):
        open_store("postgresql://db/llmga")
    with pytest.raises(InvalidInputError, match="unknown store URL"):
        open_store("mysql://db")


def test_undo_hides_the_last_turn_and_refuses_a_running_one(store):
    session = store.create_session()
    first = finished_turn(store, session.id, "one")
    second = finished_turn(store, session.id, "two")
    assert store.undo(session.id).id == second.id
    assert [t.id for t in store.turns(session.id)] == [first.id]
    assert [t.undone for t in store.turns(session.id, include_undone=True)] == [False, True]
    store.begin_turn(session.id, "three", {})
    with pytest.raises(ConflictError, match="still running"):
        store.undo(session.id)


def test_branch_from_a_turn_copies_history_up_to_it(store):
    session = store.create_session("story")
    one = finished_turn(store, session.id, "one")
    finished_turn(store, session.id, "two")
    branch = store.branch(session.id, turn_id=one.id)
    assert branch.parent_session == session.id and branch.turns == 1 and branch.title == "story (branch)"
    copied = store.turns(branch.id)[0]
    assert copied.id != one.id and copied.user_text == "one" and copied.images[0].hash == one.images[0].hash
    finished_turn(store, branch.id, "three")  # the branch goes on by itself
    assert [t.user_text for t in store.turns(session.id)] == ["one", "two"]
    assert [t.user_text for t in store.turns(branch.id)] == ["one", "three"]


def test_branch_from_an_image_makes_it_the_newest(store):
    session = store.create_session()
    turn = finished_turn(store, session.id, "two pictures", colours=("red", "blue"))
    finished_turn(store, session.id, "later")
    first_image = turn.images_of("output")[0].hash
    branch = store.branch(session.id, image=first_image)
    outputs = store.turns(branch.id)[-1].images_of("output")
    assert len(store.turns(branch.id)) == 1 and outputs[-1].hash == first_image
    with pytest.raises(NotFoundError):
        store.branch(session.id, image="0" * 64)


def test_recover_marks_pending_interrupted_and_removes_debris(tmp_path):
    store = SQLiteStore(tmp_path)
    session = store.create_session()
    done = finished_turn(store, session.id, "kept")
    upload = store.put_image(png("green"))
    pending = store.begin_turn(session.id, "half way", {}, [("input", upload)])
    unused = store.put_image(png("white"))  # painted, but the turn never finished
    stray = store.blobs.root / "ab" / ".tmp-crash"
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"half a png")
    orphan = store.blobs.put(png("black"))  # a file whose row was never committed
    report = store.recover()
    assert report == {"interrupted": 1, "temp_files": 1, "orphan_files": 1, "unused_images": 1, "missing_files": 0}
    turns = {t.id: t for t in store.turns(session.id)}
    assert turns[pending.id].status == INTERRUPTED and turns[pending.id].images_of("input")[0].hash == upload
    assert turns[done.id].status == DONE and store.image_path(done.images[0].hash).is_file()
    assert not stray.exists() and not store.blobs.path(orphan).exists() and not store.blobs.path(unused).exists()
    assert store.recover() == dict.fromkeys(report, 0)
    store.close()


def test_a_failed_commit_leaves_no_record(store, monkeypatch):
    session = store.create_session()
    turn = store.begin_turn(session.id, "x", {})
    out = store.put_image(png("red"))
    with pytest.raises(NotFoundError):  # one output is unknown: nothing of the outcome is written
        store.finish_turn(turn.id, TurnOutcome("r", "r", ["p"], outputs=[(out, "p", {}), ("1" * 64, "p", {})]))
    again = store.get_turn(turn.id)
    assert again.status == PENDING and again.reply_text == "" and again.images == []


def test_concurrent_sessions_from_many_threads(store):
    sessions = [store.create_session() for _ in range(4)]
    errors = []

    def work(session):
        try:
            for i in range(5):
                finished_turn(store, session.id, f"turn {i}")
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all([t.seq for t in store.turns(s.id)] == [1, 2, 3, 4, 5] for s in sessions)


def test_one_studio_per_data_folder(tmp_path):
    first = SQLiteStore(tmp_path)
    with pytest.raises(ConflictError, match="in use by another llmga studio"):
        SQLiteStore(tmp_path)
    first.close()
    SQLiteStore(tmp_path).close()
