"""Public graders for s40 tool use: the registry and its schema checks, the tool prompt
character for character, the reply parser on answers, calls and every kind of broken call,
schema drift caught by validate_call, run_tool's JSON results, errors and timeout (a daemon
thread), classify_reply, and run_agent's transcript checked message by message against
scripted fake models (one that repairs its calls, one that never stops calling).

A fake model is a list of replies played in order; it records the messages it was shown.
"""

import json
import threading

import pytest

from graders.helpers import expect_raises

ADD_SCHEMA = {"type": "object",
              "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
              "required": ["a", "b"], "additionalProperties": False}
ECHO_SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}},
               "required": ["text"]}


def call_text(name, arguments) -> str:
    return "CALL " + json.dumps({"name": name, "arguments": arguments})


class Counter:
    """A tool function that counts its runs: fn(**kwargs) -> result(**kwargs)."""

    def __init__(self, result):
        self.result, self.runs = result, []

    def __call__(self, **kwargs):
        self.runs.append(kwargs)
        return self.result(**kwargs)


def toolbox(impl, timeout: float = 1.0):
    """(registry with add and echo, {name: Counter})."""
    counters = {"add": Counter(lambda a, b: a + b), "echo": Counter(lambda text: {"said": text})}
    tools = [impl.Tool("add", "Add two integers.", ADD_SCHEMA, counters["add"], timeout),
             impl.Tool("echo", "Repeat a text.", ECHO_SCHEMA, counters["echo"], timeout)]
    return impl.make_registry(tools), counters


class Scripted:
    """A fake model: replies[i] on its i-th call; records a copy of every context it saw."""

    def __init__(self, replies):
        self.replies, self.seen = list(replies), []

    def __call__(self, messages):
        if len(self.seen) >= len(self.replies):
            raise AssertionError(f"run_agent asked the model a {len(self.seen) + 1}-th time, but "
                                 f"it had already given its final answer (or the step limit was "
                                 f"reached): stop the loop as soon as parse_reply returns None")
        self.seen.append(json.loads(json.dumps(messages)))
        return self.replies[len(self.seen) - 1]


def expect_tool_error(impl, call, kind: str, what: str):
    """call() must raise impl.ToolError of this kind; returns the error."""
    try:
        got = call()
    except impl.ToolError as exc:
        assert exc.kind == kind, (f"{what}: expected a ToolError of kind {kind!r}, got kind "
                                  f"{exc.kind!r} ({exc.message}). Check which guardrail fires "
                                  "first and what it reports.")
        assert isinstance(exc.message, str) and exc.message, (
            f"{what}: the ToolError needs a message the model can read, got {exc.message!r}")
        return exc
    raise AssertionError(f"{what}: expected ToolError({kind!r}), but it returned {got!r}. "
                         "A refused call must raise ToolError, never return or run.")


def system(impl, registry):
    return {"role": "system", "content": impl.tool_prompt(registry)}


@pytest.mark.points(2)
def test_make_registry_maps_names_and_refuses_bad_tools(impl):
    noop = lambda **kw: None  # noqa: E731
    a = impl.Tool("zeta", "Last letter.", ECHO_SCHEMA, noop)
    b = impl.Tool("alpha", "First letter.", {"type": "object"}, noop)
    reg = impl.make_registry([a, b])
    assert list(reg) == ["zeta", "alpha"] and reg["zeta"] is a and reg["alpha"] is b, (
        f"make_registry([zeta, alpha]): expected {{'zeta': <zeta>, 'alpha': <alpha>}} in that "
        f"order holding the same Tool objects, got {reg!r}")
    assert impl.make_registry([]) == {}, "make_registry([]) should be an empty dict"
    loaded = impl.Tool("loaded", "From a file.", json.loads('{"type": "object"}'), noop)
    assert impl.make_registry([loaded]) == {"loaded": loaded}, (
        "a schema read from JSON text, {\"type\": \"object\"}, should be accepted: compare "
        "strings with ==, never with `is`")
    cases = [([a, impl.Tool("zeta", "Again.", ECHO_SCHEMA, noop)], "two tools named 'zeta'"),
             ([impl.Tool("bad", "Bad.", {"type": "object", "properties": {"x": {"type": "nope"}}},
                         noop)], 'a schema with {"type": "nope"} (check_schema refuses it)'),
             ([impl.Tool("arr", "Arr.", {"type": "array"}, noop)],
              'a schema of type "array" (arguments are an object)'),
             ([impl.Tool("any", "Any.", {}, noop)], 'a schema without "type": "object"')]
    for tools, why in cases:
        expect_raises(ValueError, lambda t=tools: impl.make_registry(t), "make_registry", why)


@pytest.mark.points(2)
def test_tool_prompt_lists_every_tool_with_its_schema(impl):
    registry, _ = toolbox(impl)
    flipped = {"echo": registry["echo"], "add": registry["add"]}
    got = impl.tool_prompt(flipped)
    expected = "\n".join([
        impl.INSTRUCTIONS,
        '- echo: Repeat a text. Arguments: {"properties": {"text": {"type": "string"}}, '
        '"required": ["text"], "type": "object"}',
        '- add: Add two integers. Arguments: {"additionalProperties": false, "properties": '
        '{"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"], '
        '"type": "object"}'])
    assert got == expected, (
        f"tool_prompt: expected\n{expected}\ngot\n{got}\nOne line of INSTRUCTIONS, then one line "
        "per tool in the registry's order, the schema as json.dumps(..., sort_keys=True).")
    only = impl.tool_prompt({})
    assert only == impl.INSTRUCTIONS, (f"tool_prompt({{}}) should be INSTRUCTIONS alone, got "
                                       f"{only!r}")


@pytest.mark.points(2)
def test_parse_reply_tells_final_answers_from_calls(impl):
    for answer in ("The sum is 5.", "call {\"name\": \"add\"}", "CALLS are expensive",
                   "CALL{\"name\": \"add\", \"arguments\": {}}", "", "I will CALL add."):
        got = impl.parse_reply(answer)
        assert got is None, (f"parse_reply({answer!r}): expected None (a final answer: it does "
                             f"not start with 'CALL '), got {got!r}")
    reply = "  \n CALL " + json.dumps({"arguments": {"b": [1, {"c": None}]}, "name": "add"}) + "\n"
    got = impl.parse_reply(reply)
    assert got == {"name": "add", "arguments": {"b": [1, {"c": None}]}}, (
        f"parse_reply({reply!r}): expected {{'name': 'add', 'arguments': {{'b': [1, {{'c': None}}]"
        f"}}}}, got {got!r}. Leading whitespace is ignored; the JSON after the prefix is the call.")
    assert list(got) == ["name", "arguments"], (
        f"parse_reply should return a dict with exactly the keys name and arguments, got {got!r}")


@pytest.mark.points(3)
def test_parse_reply_reports_malformed_and_truncated_calls(impl):
    bad = {
        'CALL {"name": "add", "arguments": {"a": 1': "truncated mid-call",
        'CALL {"name": "add", "arguments": {}} and then': "text after the JSON",
        'CALL ["add", {}]': "a list, not an object",
        'CALL {"name": "add"}': "no arguments key",
        'CALL {"name": "add", "arguments": {}, "id": 1}': "an extra key",
        'CALL {"name": 5, "arguments": {}}': "a name that is not a string",
        'CALL {"name": "", "arguments": {}}': "an empty name",
        'CALL {"name": "add", "arguments": [1, 2]}': "arguments that are a list",
        'CALL {"name": "add", "arguments": null}': "arguments that are null",
        'CALL {"name": "add", "arguments": {"a": NaN}}': "NaN (Python's json takes it, JSON not)",
        'CALL {"name": "add", "arguments": {"a": -Infinity}}': "-Infinity (not JSON)",
        "CALL ": "nothing after the prefix",
        "CALL \"add\"": "a JSON string, not an object",
    }
    for reply, why in bad.items():
        expect_tool_error(impl, lambda r=reply: impl.parse_reply(r), "malformed",
                          f"parse_reply({reply!r}) ({why})")
    expect_raises(TypeError, lambda: impl.parse_reply(None), "parse_reply(None)",
                  "a reply must be a str")


@pytest.mark.points(3)
def test_validate_call_catches_unknown_tools_and_schema_drift(impl):
    registry, counters = toolbox(impl)
    tool = impl.validate_call({"name": "add", "arguments": {"a": 2, "b": -3}}, registry)
    assert tool is registry["add"], (f"validate_call on a good add call should return "
                                     f"registry['add'], got {tool!r}")
    err = expect_tool_error(impl, lambda: impl.validate_call(
        {"name": "multiply", "arguments": {"a": 2, "b": 3}}, registry), "unknown_tool",
        "validate_call for a tool that does not exist ('multiply')")
    assert "add" in err.message and "echo" in err.message, (
        f"the unknown_tool message should name the tools that do exist (add, echo), got "
        f"{err.message!r}: it is what lets the model repair its call")
    drift = [({"a": 2}, "b", "a missing required argument"),
             ({"a": 2, "b": 3, "c": 4}, "c", "an extra argument (additionalProperties false)"),
             ({"a": "2", "b": 3}, "a", 'a string "2" for an integer'),
             ({"a": 2, "b": True}, "b", "true for an integer (a boolean is not an integer)"),
             ({"a": 2.5, "b": 3}, "a", "2.5 for an integer")]
    for arguments, field, why in drift:
        err = expect_tool_error(impl, lambda a=arguments: impl.validate_call(
            {"name": "add", "arguments": a}, registry), "invalid_arguments",
            f"validate_call(add, {arguments}) ({why})")
        assert field in err.message, (f"the invalid_arguments message for {arguments} should "
                                      f"name the field {field!r}, got {err.message!r}")
    expect_tool_error(impl, lambda: impl.validate_call({"name": "echo", "arguments": {"text": 7}},
                                                       registry), "invalid_arguments",
                      "validate_call(echo, {'text': 7})")
    assert counters["add"].runs == [] and counters["echo"].runs == [], (
        "validate_call must never run a tool, but one ran: validation happens before execution")


@pytest.mark.points(2)
def test_run_tool_returns_the_result_as_json_text(impl):
    registry, counters = toolbox(impl)
    got = impl.run_tool(registry["add"], {"a": 40, "b": 2})
    assert got == "42", f"run_tool(add, a=40, b=2): expected the JSON text '42', got {got!r}"
    assert counters["add"].runs == [{"a": 40, "b": 2}], (
        f"the tool should run once with keyword arguments a=40, b=2, ran {counters['add'].runs}")
    cases = [({"z": 1, "a": [True, None]}, '{"a": [true, null], "z": 1}'),
             ("hi", '"hi"'), (None, "null"), (2.5, "2.5")]
    for result, expected in cases:
        tool = impl.Tool("t", "T.", {"type": "object"}, lambda r=result: r)
        got = impl.run_tool(tool, {})
        assert got == expected, (f"run_tool for a tool returning {result!r}: expected "
                                 f"{expected!r} (json.dumps with sort_keys=True), got {got!r}")


@pytest.mark.points(2)
def test_run_tool_reports_a_tool_that_raises_or_returns_non_json(impl):
    def broken(**kw):
        raise ValueError("the weather service is down")

    err = expect_tool_error(impl, lambda: impl.run_tool(
        impl.Tool("weather", "W.", {"type": "object"}, broken), {"city": "Oslo"}), "tool_error",
        "run_tool for a tool that raises ValueError")
    assert err.message == "ValueError: the weather service is down", (
        f"the tool_error message should be '<ExceptionType>: <message>' = 'ValueError: the "
        f"weather service is down', got {err.message!r}")
    for result, why in (({1, 2}, "a set"), (float("nan"), "NaN (allow_nan=False)"),
                        ({"x": object()}, "an object")):
        tool = impl.Tool("t", "T.", {"type": "object"}, lambda r=result: r)
        expect_tool_error(impl, lambda t=tool: impl.run_tool(t, {}), "tool_error",
                          f"run_tool for a tool returning {why}, which is not JSON")


@pytest.mark.points(3)
def test_run_tool_times_out_a_hanging_tool_in_a_daemon_thread(impl):
    release, where = threading.Event(), {}

    def hang(**kw):
        where["thread"] = threading.current_thread()
        release.wait(3.0)
        return "too late"

    try:
        err = expect_tool_error(impl, lambda: impl.run_tool(
            impl.Tool("slow", "Slow.", {"type": "object"}, hang, 0.05), {}), "timeout",
            "run_tool for a tool that hangs (timeout 0.05 s)")
    finally:
        release.set()
    assert "slow" in err.message, f"the timeout message should name the tool, got {err.message!r}"
    thread = where.get("thread")
    assert thread is not None and thread is not threading.main_thread() and thread.daemon, (
        f"the tool should run in a daemon thread (not the caller's thread, so the caller can stop "
        f"waiting; daemon, so it never keeps the process alive), it ran in {thread!r}")

    def quick(**kw):
        release.wait(0.01)
        return kw

    got = impl.run_tool(impl.Tool("quick", "Q.", {"type": "object"}, quick, 2.0), {"n": 1})
    assert got == '{"n": 1}', (f"a tool that finishes within its timeout should give its "
                               f"result, expected '{{\"n\": 1}}', got {got!r}")


@pytest.mark.points(2)
def test_classify_reply_names_each_outcome(impl):
    registry, counters = toolbox(impl)
    cases = [("Five.", "answer"), (call_text("add", {"a": 1, "b": 2}), "valid"),
             ('CALL {"name": "add", "arguments": ', "malformed"),
             (call_text("sub", {"a": 1, "b": 2}), "unknown_tool"),
             (call_text("add", {"a": 1, "b": "2"}), "invalid_arguments"),
             (call_text("echo", {"text": "x"}), "valid")]
    for reply, expected in cases:
        got = impl.classify_reply(reply, registry)
        assert got == expected, f"classify_reply({reply!r}): expected {expected!r}, got {got!r}"
    assert counters["add"].runs == [] and counters["echo"].runs == [], (
        "classify_reply must not run any tool, but one ran")


@pytest.mark.points(3)
def test_run_agent_transcript_of_a_call_then_an_answer(impl):
    registry, counters = toolbox(impl)
    model = Scripted([call_text("add", {"a": 2, "b": 3}), "  The sum is 5.\n"])
    out = impl.run_agent(model, registry, "What is 2 + 3?", max_steps=4)
    expected = [system(impl, registry), {"role": "user", "content": "What is 2 + 3?"},
                {"role": "assistant", "content": call_text("add", {"a": 2, "b": 3})},
                {"role": "tool", "name": "add", "content": "5"},
                {"role": "assistant", "content": "  The sum is 5.\n"}]
    assert out["messages"] == expected, (
        f"run_agent transcript: expected\n{expected}\ngot\n{out['messages']}\nsystem, user, then "
        "each reply as an assistant message followed by the tool's result as a tool message.")
    assert (out["answer"], out["stop"], out["steps"]) == ("The sum is 5.", "answer", 2), (
        f"expected answer 'The sum is 5.' (the reply stripped), stop 'answer', steps 2, got "
        f"{out['answer']!r}, {out['stop']!r}, {out['steps']!r}")
    assert model.seen == [expected[:2], expected[:4]], (
        f"the model should see [system, user] first, then those plus its call and the tool "
        f"result; it saw {model.seen}")
    assert counters["add"].runs == [{"a": 2, "b": 3}], f"add ran {counters['add'].runs}"


@pytest.mark.points(3)
def test_run_agent_reports_errors_to_the_model_and_continues(impl):
    registry, counters = toolbox(impl)
    replies = ['CALL {"name": "add", "arguments": {"a": 2',
               call_text("plus", {"a": 2, "b": 3}),
               call_text("add", {"a": 2, "b": "3"}),
               call_text("echo", {"text": "ok"}),
               "done"]
    out = impl.run_agent(Scripted(replies), registry, "Add 2 and 3.")
    msgs = out["messages"]
    roles = [(m["role"], m.get("kind"), m.get("name")) for m in msgs]
    expected = [("system", None, None), ("user", None, None),
                ("assistant", None, None), ("error", "malformed", None),
                ("assistant", None, None), ("error", "unknown_tool", "plus"),
                ("assistant", None, None), ("error", "invalid_arguments", "add"),
                ("assistant", None, None), ("tool", None, "echo"),
                ("assistant", None, None)]
    assert roles == expected, (
        f"(role, kind, name) of each message: expected\n{expected}\ngot\n{roles}\nEvery refused "
        "call is answered by an error message (kind, the called name or None when the reply did "
        "not parse) and the loop goes on.")
    assert [m["content"] for m in msgs if m["role"] == "assistant"] == replies, (
        "each assistant message's content should be the model's reply, unchanged")
    assert all(isinstance(m["content"], str) and m["content"] for m in msgs[3:8:2]), (
        f"every error message needs a non-empty content saying why, got {msgs[3:8:2]}")
    assert set(msgs[3]) == {"role", "kind", "name", "content"}, (
        f"an error message has exactly role, kind, name and content, got {sorted(msgs[3])}")
    assert msgs[9]["content"] == '{"said": "ok"}', (
        f"the echo result should be the JSON text {{\"said\": \"ok\"}}, got {msgs[9]['content']!r}")
    assert counters["add"].runs == [] and counters["echo"].runs == [{"text": "ok"}], (
        f"only the valid echo call may run; add ran {counters['add'].runs}, echo ran "
        f"{counters['echo'].runs}")
    assert (out["answer"], out["stop"], out["steps"]) == ("done", "answer", 5), (
        f"expected ('done', 'answer', 5), got {(out['answer'], out['stop'], out['steps'])}")


@pytest.mark.points(3)
def test_run_agent_stops_an_endless_caller_at_max_steps(impl):
    registry, counters = toolbox(impl)
    model = Scripted([call_text("add", {"a": i, "b": 1}) for i in range(3)])
    out = impl.run_agent(model, registry, "Count forever.", max_steps=3)
    assert (out["answer"], out["stop"], out["steps"]) == (None, "max_steps", 3), (
        f"a model that never stops calling must be stopped after max_steps=3 model calls: "
        f"expected answer None, stop 'max_steps', steps 3, got "
        f"{(out['answer'], out['stop'], out['steps'])}")
    assert len(model.seen) == 3 and len(counters["add"].runs) == 3, (
        f"expected 3 model calls and 3 runs of add, got {len(model.seen)} and "
        f"{len(counters['add'].runs)}")
    assert [m["content"] for m in out["messages"] if m["role"] == "tool"] == ["1", "2", "3"], (
        f"each result should be appended as it comes, got {out['messages']}")
    assert len(out["messages"]) == 8, (f"system, user and 3 x (call, result) = 8 messages, got "
                                       f"{len(out['messages'])}")
    expect_raises(ValueError, lambda: impl.run_agent(Scripted([]), registry, "x", max_steps=0),
                  "run_agent(max_steps=0)", "the loop needs at least one step")
    one = impl.run_agent(Scripted(["Hello."]), registry, "Hi.", max_steps=1)
    assert (one["answer"], one["stop"], one["steps"]) == ("Hello.", "answer", 1), (
        f"an answer on the only step allowed is still an answer, got "
        f"{(one['answer'], one['stop'], one['steps'])}")
