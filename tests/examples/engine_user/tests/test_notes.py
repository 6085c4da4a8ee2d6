from d1check.remote import D1Client


def test_notes_on_the_real_engine(d1_engine):
    with D1Client(d1_engine.account_id, d1_engine.token, api_base=d1_engine.api_base) as d1:
        db = d1.create_database("notes").uuid
        d1.query(db, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")


def test_note_text_is_trimmed():
    assert " hello ".strip() == "hello"
