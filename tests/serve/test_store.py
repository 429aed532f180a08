"""The session store: durable sessions, turns and content-addressed images; undo, branches, crash recovery.

Every test of the interface runs on both engines: the embedded SQLite store and
PostgreSQL (a real server, started once per run by the ``postgres`` fixture).
"""

import hashlib
import sqlite3
import threading
import time

import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.images import png_bytes
from llmga.serve.http_errors import ConflictError, NotFoundError, StoreUnavailableError
from llmga.serve.store import CANCELLED, DONE, INTERRUPTED, PENDING, SQLiteStore, TurnOutcome, open_store


def png(colour, size=(8, 8), **meta):
    return png_bytes(Image.new("RGB", size, colour), meta or None)


def finished_turn(store, session_id, text, colours=("red",)):
    turn = store.begin_turn(session_id, text, {"refine": True})
    outputs = [(store.put_image(png(c, prompt=text)), text, {"seed": i}) for i, c in enumerate(colours)]
    return store.finish_turn(turn.id, TurnOutcome(f"reply to {text}", f"raw {text}", [text], "generate",
                                                  "a text request", outputs=outputs))


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request, tmp_path):
    """Opens the store of this test (the same one each time), on either engine."""
    location = tmp_path / "data" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return lambda: open_store(location, tmp_path / "images")


@pytest.fixture
def store(opener):
    s = opener()
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


def test_sessions_survive_reopening_and_list_newest_first(opener):
    first = opener()
    old = first.create_session("old")
    new = first.create_session("new")
    finished_turn(first, new.id, "a cat")
    first.close()
    again = opener()
    assert [s.id for s in again.list_sessions()] == [new.id, old.id]
    assert again.get_session(new.id).turns == 1
    assert again.turns(new.id)[0].reply_text == "reply to a cat"
    again.close()


def test_sqlite_keeps_its_journal_and_takes_its_url(tmp_path):
    open_store(f"sqlite:///{tmp_path}").close()
    assert sqlite3.connect(tmp_path / "studio.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(InvalidInputError, match="folder"):
        open_store("postgresql://db/llmga")  # its images need a folder
    with pytest.raises(InvalidInputError, match="unknown store URL"):
        open_store("mysql://db")


def test_an_unreachable_postgresql_is_a_clear_503_error(tmp_path):
    from llmga.testing.servers import free_port

    start = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="cannot reach") as caught:
        open_store(f"postgresql://llmga:secret@127.0.0.1:{free_port()}/llmga", tmp_path)
    assert time.monotonic() - start < 10 and "secret" not in str(caught.value)


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


def test_recover_marks_pending_interrupted_and_removes_debris(store):
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


def test_a_shared_store_recovers_only_what_is_old_enough(store):
    session = store.create_session()
    pending = store.begin_turn(session.id, "running elsewhere", {})
    fresh = store.put_image(png("white"))  # another process is about to use it
    report = store.recover(turns=False, grace=3600)
    assert report["interrupted"] == report["unused_images"] == 0
    assert store.get_turn(pending.id).status == PENDING and store.has_image(fresh)
    assert store.pending_turns(before=time.time() + 1) == [pending.id]


def test_a_late_result_still_finishes_an_interrupted_turn(store):
    session = store.create_session()
    turn = store.begin_turn(session.id, "slow", {})
    store.end_turn(turn.id, INTERRUPTED, "its worker stopped")
    out = store.put_image(png("red"))
    done = store.finish_turn(turn.id, TurnOutcome("late", "late", ["p"], outputs=[(out, "p", {})]))
    assert done.status == DONE and done.error is None and done.images_of("output")[0].hash == out
    other = store.begin_turn(session.id, "cancelled", {})
    assert store.end_turn(other.id, CANCELLED, "cancelled").error_code == "cancelled"
    with pytest.raises(ConflictError, match="already cancelled"):
        store.finish_turn(other.id, TurnOutcome("too late", "", []))


def test_deleting_a_session_deletes_its_turns_and_the_images_only_it_used(store, monkeypatch):
    keep, gone = store.create_session("keep"), store.create_session("gone")
    shared = finished_turn(store, keep.id, "shared", colours=("red",)).images[0].hash
    finished_turn(store, gone.id, "shared", colours=("red",))  # the same picture: one image, two turns
    own = finished_turn(store, gone.id, "own", colours=("blue",)).images[0].hash
    monkeypatch.setattr("llmga.serve.sql_store.FRESH_SECONDS", 0.0)
    assert store.delete_session(gone.id) == 1
    with pytest.raises(NotFoundError):
        store.get_session(gone.id)
    assert not store.has_image(own) and not store.blobs.path(own).exists()
    assert store.image_path(shared).is_file() and store.session_has_image(keep.id, shared)
    assert not store.session_has_image(gone.id, shared)
    with pytest.raises(NotFoundError):
        store.delete_session(gone.id)


def test_fresh_images_outlive_a_deletion_until_the_sweep(store):
    session = store.create_session()
    digest = finished_turn(store, session.id, "just painted").images[0].hash
    assert store.delete_session(session.id) == 0  # another session may be about to use the same picture
    assert store.recover(turns=False, grace=0)["unused_images"] == 1 and not store.has_image(digest)


def test_sessions_expire_after_their_last_activity_unless_running(store):
    old, running, recent = (store.create_session(t) for t in ("old", "running", "recent"))
    store.begin_turn(running.id, "still painting", {})
    cutoff = time.time()
    finished_turn(store, recent.id, "later")
    assert store.expire(before=cutoff) == [old.id]
    assert {s.id for s in store.list_sessions()} == {running.id, recent.id}


def test_history_is_added_in_one_go_and_secrets_are_kept(store):
    session = store.create_session()
    store.add_done_turns(session.id, [("a fox", TurnOutcome("ok", "ok <gen_img>a fox</gen_img>", ["a fox"])),
                                      ("at night", TurnOutcome("sure", "sure", []))])
    turns = store.turns(session.id)
    assert [(t.seq, t.status, t.user_text) for t in turns] == [(1, DONE, "a fox"), (2, DONE, "at night")]
    assert turns[0].prompts == ["a fox"] and turns[0].request == {"imported": True}
    assert store.get_session(session.id).title == "a fox"
    key = store.secret("image-urls")
    assert len(key) == 64 and store.secret("image-urls") == key and store.secret("other") != key


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


def test_one_running_turn_per_session_even_across_connections(store):
    session = store.create_session()
    results = []

    def begin():
        try:
            results.append(store.begin_turn(session.id, "at once", {}).status)
        except ConflictError:
            results.append("refused")

    threads = [threading.Thread(target=begin) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [PENDING] + ["refused"] * 5


def test_one_studio_per_data_folder(tmp_path):
    first = SQLiteStore(tmp_path)
    with pytest.raises(ConflictError, match="in use by another llmga studio"):
        SQLiteStore(tmp_path)
    first.close()
    SQLiteStore(tmp_path).close()
