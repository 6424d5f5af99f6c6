"""Unit tests: prompts, answer parsing, filters, backoff, store semantics."""

import random

import pytest

from synthrank.data import DataFormatError
from synthrank.generate.filters import FilterSettings, count_reasons, filter_query_passages, single_reason
from synthrank.generate.prompts import (BUILTIN_PROMPTS, InvalidAnswer, answer_schema, load_prompt, parse_answer,
                                        parse_prompt_text)
from synthrank.generate.retry import RetryPolicy, backoff_delay
from synthrank.generate.store import Generation, Store


HARD_PROMPTS = ("per-level-hard", "per-level-hard-grounded")


@pytest.mark.parametrize("name", [p for p in BUILTIN_PROMPTS if p not in HARD_PROMPTS])
def test_builtin_prompts_render_with_query_and_levels(name):
    prompt = load_prompt(name)
    level = 1 if prompt.kind == "per-level" else None
    messages = prompt.messages("what is  a  tomato", [3, 2, 1, 0], 1, level=level)
    text = messages[-1]["content"]
    assert "Query: what is a tomato" in text and "${" not in text
    assert len(prompt.hash) == 16
    if prompt.kind == "per-level":
        assert "does NOT answer" in text  # the level-1 definition
        zero = prompt.messages("what is a tomato", [3, 2, 1, 0], 1, level=0)[-1]["content"]
        assert "tomato" not in zero and "${" not in zero  # level 0: an unrelated subject, query hidden
    else:
        assert '"level_3"' in text and '"level_0"' in text


@pytest.mark.parametrize("name", HARD_PROMPTS)
def test_hard_prompts_keep_the_query_at_every_level_and_name_the_collection(name):
    """Hard levels: level 0 is a near miss about the query's neighbourhood, so the query is shown at every level."""
    prompt = load_prompt(name)
    for level in (3, 2, 1, 0):
        text = prompt.messages("what is  a  tomato", [3, 2, 1, 0], 1, level=level, style_example="A real  document.",
                               collection="abstracts of papers")
        user, system = text[-1]["content"], text[0]["content"]
        assert "Query: what is a tomato" in user and "${" not in user + system
        assert "abstracts of papers" in system + user
        assert ("A real document." in user) == (name == "per-level-hard-grounded")
    zero = prompt.messages("q", [3, 2, 1, 0], 1, level=0)[-1]["content"]
    assert "near miss" in zero and "Baltic" not in zero  # no unrelated distractor subject


def _one_pass_messages(prompt, query, levels, n, level, style_example, collection, scale):
    """The reference: every value in one mapping, each text through ``Template.safe_substitute`` once."""
    from string import Template

    from synthrank.generate.prompts import distractor_for, level_key
    from synthrank.generate.style import GENERIC_STYLE

    values = {"query": " ".join(query.split()), "n": str(n), "definitions": scale.definitions_text(levels),
              "example": prompt.example, "keys": ", ".join(f'"{level_key(lv)}"' for lv in levels),
              "level": "" if level is None else str(level),
              "level_name": "" if level is None else scale.levels[level].name,
              "level_definition": "" if level is None else scale.levels[level].definition,
              "distractor": distractor_for(query), "style_example": " ".join((style_example or GENERIC_STYLE).split()),
              "collection": " ".join(collection.split())}
    values["level_instruction"] = "" if level is None else Template(scale.levels[level].instruction).safe_substitute(values)
    user = dict(prompt.level_users).get(level, prompt.user) if level is not None else prompt.user
    out = [{"role": "system", "content": Template(prompt.system).safe_substitute(values).strip()}] if prompt.system.strip() else []
    return out + [{"role": "user", "content": Template(user).safe_substitute(values).strip()}]


def test_prompt_renderer_matches_one_pass_substitution_for_every_prompt(tmp_path):
    """The renderer fills the fixed values once per kind of request; its text must equal one-pass substitution,
    also when a query, a collection or an instruction holds ``$``, ``$$`` or a placeholder of its own."""
    from synthrank.generate.levels import DEFAULT_SCALE, LevelScale, LevelSpec

    odd = LevelScale(levels={
        4: LevelSpec(name="perfect $$", definition="costs $5 ${query}", instruction="mention ${distractor} and ${query}, $$ $x"),
        2: LevelSpec(name="part", definition="d", instruction="${level_instruction} ${n} ${collection} ${unknown} ${style_example}"),
        0: LevelSpec(name="none", definition="no", instruction="")})
    mine = tmp_path / "mine.txt"
    mine.write_text("kind: per-level\n[system]\n$$ ${unknown} $ ${level_instruction}\n[user-level-0]\nzero ${query} ${distractor}\n"
                    "[user]\nQuery: ${query} ${level} ${level_name} ${level_definition} ${definitions} ${keys} ${n} $query\n")
    queries = ["what is  a  tomato", "price ${n} of $$ gold ${level_instruction}", "  "]
    for prompt in [load_prompt(name) for name in BUILTIN_PROMPTS] + [load_prompt(mine)]:
        for scale in (DEFAULT_SCALE, odd):
            levels = list(scale.levels)
            for level in (levels if prompt.kind == "per-level" else [None]):
                for n, collection, style in ((1, "web pages", None), (3, "papers on $$ and ${query}", "A real  ${n} doc.")):
                    renderer = prompt.renderer(levels, n, level, collection, scale)
                    for query in queries:
                        expected = _one_pass_messages(prompt, query, levels, n, level, style, collection, scale)
                        assert renderer.messages(query, style) == expected, (prompt.name, level, query)
                        assert prompt.messages(query, levels, n, level, style, collection, scale) == expected


def test_prompt_hash_changes_with_text_and_user_file_is_loaded(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("kind: per-level\n[user]\nQuery: ${query}\nlevel ${level}\n")
    mine = load_prompt(path)
    assert mine.kind == "per-level" and mine.name == "mine"
    path.write_text("kind: per-level\n[user]\nQuery: ${query}\nLevel ${level}!\n")
    assert load_prompt(path).hash != mine.hash


def test_malformed_prompt_file_names_file_line_and_field(tmp_path):
    with pytest.raises(DataFormatError, match=r"p\.txt:1: kind: must be one of"):
        parse_prompt_text("kind: sideways\n[user]\n${query}", "p", tmp_path / "p.txt")
    with pytest.raises(DataFormatError, match=r"\[user\]: the user message must contain"):
        parse_prompt_text("kind: per-level\n[user]\nno placeholder ${level}", "p", "p.txt")
    with pytest.raises(DataFormatError, match="no such prompt file"):
        load_prompt(tmp_path / "missing.txt")


def test_parse_answer_accepts_valid_and_fenced_json():
    assert parse_answer('{"passages": [" a b "]}', "per-level", [2], 1) == {2: ["a b"]}
    fenced = '```json\n{"level_1": ["x"], "level_0": ["y"]}\n```'
    assert parse_answer(fenced, "single-call", [1, 0], 1) == {1: ["x"], 0: ["y"]}


@pytest.mark.parametrize("text, reason", [
    ('{"passages": ["a"', "malformed JSON"),
    ('["a"]', "expected a JSON object"),
    ('{"passages": "a"}', "schema: passages"),
    ('{"passages": []}', "expected 1 passages"),
    ('__import__("os").system("true")', "malformed JSON"),
])
def test_parse_answer_rejects_invalid_output_with_reason(text, reason):
    with pytest.raises(InvalidAnswer, match=reason):
        parse_answer(text, "per-level", [3], 1)


def test_single_call_missing_level_is_invalid():
    with pytest.raises(InvalidAnswer, match="missing key level_0"):
        parse_answer('{"level_1": ["x"]}', "single-call", [1, 0], 1)


def test_answer_schema_shapes():
    assert answer_schema("per-level", [3], 2)["properties"]["passages"]["minItems"] == 2
    assert answer_schema("single-call", [3, 0], 1)["required"] == ["level_3", "level_0"]


LONG = "Tomatoes ripen within six to eight weeks after pollination when days are warm and nights stay mild enough for colour."


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   ", "empty"), (None, "empty"),
    ("Too short to use.", "too_short"),
    ("word " * 400, "too_long"),
    ("As an AI language model I cannot write about tomatoes but I can explain many other things to you today.", "refusal_or_meta"),
    ("Here is a passage: " + LONG, "refusal_or_meta"),
    (LONG, None),
])
def test_single_passage_filters(text, reason):
    assert single_reason(text, "how long do tomatoes take to ripen") == reason


def test_copies_query_and_duplicates_within_a_query():
    query = "how long does it take for tomatoes to ripen on the vine in a warm garden"
    passages = [("a", LONG), ("b", LONG.upper()), ("c", LONG.replace("colour", "color")),
                ("d", query + " tomatoes"), ("e", "The Baltic Sea is a brackish arm of the Atlantic Ocean bordered by many northern European countries.")]
    reasons = filter_query_passages(query, passages, FilterSettings())
    assert reasons == {"a": None, "b": "exact_duplicate", "c": "near_duplicate", "d": "copies_query", "e": None}
    counts = count_reasons(reasons)
    assert counts["kept"] == 2 and counts["near_duplicate"] == 1 and counts["too_long"] == 0


def test_backoff_is_exponential_jittered_and_honours_retry_after():
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    rng = random.Random(0)
    for retry in range(6):
        d = backoff_delay(retry, policy, rng=rng)
        cap = min(8.0, 2 ** retry)
        assert cap / 2 <= d <= cap
    assert backoff_delay(0, policy, retry_after=5.0, rng=rng) >= 5.0
    assert backoff_delay(0, RetryPolicy(max_retry_after=2.0), retry_after=500, rng=rng) < 3.0


def _row(qid, level, status, passage=None, error=None, attempts=1):
    return {"gen_key": "g", "query_id": qid, "level": level, "idx": 0, "status": status, "prompt_hash": "p", "model": "m",
            "sampling": "{}", "passage": passage, "error": error, "attempts": attempts}


def test_store_never_overwrites_done_and_replaces_failed(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        gen = Generation("m", "per-level", "per-level", "p", {"temperature": 0.7})
        gen_key = st.register(gen)
        assert st.register(gen) == gen_key
        rows = [dict(r, gen_key=gen_key) for r in (_row("q1", 3, "done", "first"), _row("q1", 2, "failed", error="boom"))]
        st.put(rows)
        st.put([dict(rows[0], passage="second"), dict(rows[1], status="done", passage="fixed", error=None)])
        items = {(r["query_id"], r["level"]): r for r in st.items(gen_key)}
    assert items[("q1", 3)]["passage"] == "first"
    assert items[("q1", 2)]["passage"] == "fixed" and items[("q1", 2)]["attempts"] == 2
    with Store(path) as st:  # reopen: WAL file, same content
        assert st.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert st.done_keys(gen_key) == {("q1", 3, 0), ("q1", 2, 0)}


def test_generation_key_changes_with_prompt_or_model():
    a = Generation("m1", "x", "per-level", "h1", {"t": 1})
    assert a.key != Generation("m2", "x", "per-level", "h1", {"t": 1}).key
    assert a.key != Generation("m1", "x", "per-level", "h2", {"t": 1}).key
    assert a.key == Generation("m1", "renamed", "per-level", "h1", {"t": 1}).key


def test_cross_query_dedupe_drops_a_passage_an_earlier_query_kept() -> None:
    from synthrank.data import Query
    from synthrank.generate.export import filtered_items, summarize
    from synthrank.generate.filters import FilterSettings

    text = "Volcanic eruptions happen when magma rises through the crust and gas pressure builds until the rock gives way."
    other = "Tomatoes ripen in six to eight weeks after pollination, faster in warm weather and under full sun."

    class Rows:
        def items(self, gen_key):
            return [dict(query_id=q, level=lv, idx=0, status="done", passage=p, error=None, completion_tokens=1, latency_s=0.1)
                    for q, lv, p in (("b", 3, text + " Indeed."), ("a", 3, text), ("a", 0, other))]

    queries = {"a": Query(_id="a", text="what causes eruptions"), "b": Query(_id="b", text="why do volcanoes erupt")}
    plain = summarize(filtered_items(Rows(), "g", queries))
    assert plain["kept"] == 3 and "cross_query_duplicate" not in plain["filters"]  # off by default: cards as before
    deduped = filtered_items(Rows(), "g", queries, FilterSettings(cross_query_dedupe=True))
    reasons = {(r["query_id"], r["level"]): r["filter"] for r in deduped}
    assert reasons == {("a", 3): None, ("a", 0): None, ("b", 3): "cross_query_duplicate"}  # "a" comes first in the file
    assert summarize(deduped)["filters"]["cross_query_duplicate"] == 1
    strict = filtered_items(Rows(), "g", queries, FilterSettings(min_words=50))
    assert {r["filter"] for r in strict} == {"too_short"}


def test_batched_store_writes_keep_every_answer_received_before_a_crash(tmp_path):
    """Rows are written in batches; a run that dies (here: the backend raises a bug, not a BackendError)
    still stores every answer it received, and a resumed run generates only the rest."""
    import asyncio
    import json

    from synthrank.data import Query
    from synthrank.generate.backends.base import Backend, Completion
    from synthrank.generate.runner import GenerationOptions, GenerationSettings, run_generation

    class Flaky(Backend):
        name, max_concurrency = "flaky", None

        def __init__(self, crash_after):
            self.calls, self.crash_after = 0, crash_after

        @property
        def model_id(self):
            return "flaky"

        async def complete(self, messages, schema, sampling):
            self.calls += 1
            if self.crash_after is not None and self.calls > self.crash_after:
                raise RuntimeError("a bug in the backend")
            await asyncio.sleep(0)
            return Completion(text=json.dumps({"passages": [f"passage number {self.calls} with enough words in it"]}),
                              prompt_tokens=1, completion_tokens=1, finish_reason="stop", endpoint=None)

        async def aclose(self):
            pass

    queries = [Query(_id=f"q{i}", text=f"question {i}") for i in range(10)]
    settings = GenerationSettings(load_prompt("per-level"), GenerationOptions(levels=[3, 2, 1, 0], concurrency=1))
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(RuntimeError, match="a bug"):
            asyncio.run(run_generation(queries, Flaky(crash_after=7), store, settings, progress=False))
        gen_key = settings.generation("flaky").key
        assert len(store.done_keys(gen_key)) == 7  # fewer than a batch: written when the run failed
        again = Flaky(crash_after=None)
        summary = asyncio.run(run_generation(queries, again, store, settings, progress=False))
        assert (again.calls, summary.done_rows, len(store.done_keys(gen_key))) == (33, 33, 40)
