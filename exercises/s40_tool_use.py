"""s40 · Tool use: JSON tool calls, schema validation, a runtime and its guardrails.

You build
    make_registry(tools)           name -> Tool, refusing duplicate names and invalid schemas
    tool_prompt(registry)          the system prompt: how to call, then one line per tool
    parse_reply(reply)             None for a final answer, else the {"name", "arguments"} call;
                                   ToolError("malformed") for anything that is not that
    validate_call(call, registry)  the Tool to run; ToolError("unknown_tool") for an invented
                                   tool, ToolError("invalid_arguments") for schema drift
    run_tool(tool, arguments)      the result as JSON text, with a timeout (a daemon thread);
                                   ToolError("timeout") / ToolError("tool_error")
    classify_reply(reply, registry)
                                   "answer", "valid" or the error kind, without running anything
    run_agent(model, registry, user_message, max_steps)
                                   the loop: ask the model, run its call, append the result or
                                   the error, ask again; stops at an answer or after max_steps

How it differs from the previous steps
    Until now the model's text was the product. Here it is a program's input: the model writes
    one line, CALL {"name": "add", "arguments": {"a": 2, "b": 3}}, the runtime runs the tool and
    appends its result to the context, and the model continues with that result in view. Tool
    use is mostly prompt + parsing + guardrails: the prompt says which tools exist and how to
    call them; the parser turns text into a call or refuses it; the guardrails make sure that
    whatever the model writes, nothing runs that should not, and the loop always ends.

The protocol (a transcript is a list of messages, each a dict)
    {"role": "system", "content": tool_prompt(registry)}, {"role": "user", "content": ...},
    then per step {"role": "assistant", "content": reply} followed, for a call, by either
    {"role": "tool", "name": name, "content": the result as JSON text} or
    {"role": "error", "kind": kind, "name": the called name or None, "content": why}.
    A reply whose text (leading whitespace ignored) starts with CALL_PREFIX is a call, any
    other reply is the final answer. The JSON after the prefix must be exactly an object with
    the keys "name" (a non-empty string) and "arguments" (an object); arguments are checked
    against the tool's JSON Schema (the jsonschema library validates; you build the runtime).

Failure modes, and the guardrail for each
    - truncated or malformed JSON (the model ran out of tokens mid-call): reported as
      "malformed", never guessed at. Python's json accepts NaN and Infinity; JSON does not.
    - tool hallucination (a tool that does not exist): "unknown_tool", never executed.
    - schema drift (a renamed, missing or extra argument, "3" for 3, true for 1): caught by the
      schema before the tool sees it. In Python isinstance(True, int) holds; in JSON Schema a
      boolean is not an integer, which is one reason to let a validator decide.
    - a tool that raises or hangs: "tool_error" or "timeout", and the loop goes on. The tool
      runs in a daemon thread joined with a timeout: a Python thread cannot be killed, so a
      hung one is abandoned (daemon: it never keeps the process alive).
    - looping (the model calls tools forever): max_steps model calls, then stop.
    - prompt injection: a tool result is data. It is appended as JSON text under role "tool"
      and never parsed as a call; only assistant replies are. The model gets deep copies of
      the messages, so it cannot rewrite the transcript either.

You should be able to explain
    - why tool use is mostly prompt + parsing + guardrails, and what each of the three does;
    - why errors go back to the model as messages instead of raising (it can repair its call);
    - why a step limit, and not "the model will stop", is what ends the loop;
    - what can still go wrong with every guardrail here in place (the model may call a real
      tool with harmful arguments that pass the schema: validation is not authorisation).
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import jsonschema

CALL_PREFIX = "CALL "
INSTRUCTIONS = ('To use a tool, reply with one line: CALL {"name": <tool name>, "arguments": '
                '<an object matching its schema>}. Any other reply is your final answer.')
ERROR_KINDS = ("malformed", "unknown_tool", "invalid_arguments", "timeout", "tool_error")


class ToolError(Exception):
    """A call that was refused or a run that failed: kind (one of ERROR_KINDS) and message."""

    def __init__(self, kind: str, message: str):
        if kind not in ERROR_KINDS:
            raise ValueError(f"kind must be one of {ERROR_KINDS}, got {kind!r}")
        super().__init__(f"{kind}: {message}")
        self.kind, self.message = kind, message


@dataclass(frozen=True)
class Tool:
    name: str
    description: str  # one sentence, shown to the model in tool_prompt
    parameters: dict  # the JSON Schema of the arguments object ({"type": "object", ...})
    fn: Callable[..., object]  # called as fn(**arguments); returns something JSON can encode
    timeout: float = 1.0  # seconds run_tool waits before reporting a timeout


def make_registry(tools: list[Tool]) -> dict[str, Tool]:
    """{tool.name: tool} in the given order; ValueError when two tools share a name, a schema
    is not a valid JSON Schema (jsonschema's check_schema), or its "type" is not "object"."""
    registry: dict[str, Tool] = {}
    raise NotImplementedError("s40 tool use: refuse duplicates and bad schemas, then map each name to its tool")
    return registry


def tool_prompt(registry: dict[str, Tool]) -> str:
    """INSTRUCTIONS, then per tool in registry order a line "- {name}: {description}
    Arguments: {json.dumps(parameters, sort_keys=True)}", joined with newlines."""
    raise NotImplementedError("s40 tool use: the instructions line, then one line per tool")


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_reply(reply: str) -> dict | None:
    """None when reply.lstrip() does not start with CALL_PREFIX; else {"name", "arguments"}
    from the JSON after the prefix, ToolError("malformed") unless that JSON (NaN and Infinity
    refused) is an object with exactly a non-empty string "name" and an object "arguments"."""
    if not isinstance(reply, str):
        raise TypeError(f"a model's reply must be a str, got {type(reply).__name__}")
    raise NotImplementedError("s40 tool use: not a call -> None; json.loads the rest; check keys and types")


def validate_call(call: dict, registry: dict[str, Tool]) -> Tool:
    """registry[call["name"]]; ToolError("unknown_tool") naming the known tools when it is not
    there, ToolError("invalid_arguments") naming the offending field when call["arguments"]
    fails the tool's schema (jsonschema decides)."""
    raise NotImplementedError("s40 tool use: look the tool up, then validate the arguments against its schema")


def run_tool(tool: Tool, arguments: dict) -> str:
    """json.dumps(tool.fn(**arguments), sort_keys=True, allow_nan=False), fn run in a daemon
    thread joined for tool.timeout s: ToolError("timeout") if it is still running, ToolError(
    "tool_error", "<ExceptionType>: <message>") if it raised or its result is not JSON."""
    if not tool.timeout > 0:
        raise ValueError(f"{tool.name}: timeout must be > 0, got {tool.timeout}")
    raise NotImplementedError("s40 tool use: run fn in a daemon thread, join with the timeout, report what happened")


def classify_reply(reply: str, registry: dict[str, Tool]) -> str:
    """"answer" for a final answer, "valid" for a call validate_call accepts, else the
    ToolError's kind ("malformed", "unknown_tool" or "invalid_arguments"); runs no tool."""
    raise NotImplementedError("s40 tool use: parse, validate, and name the outcome")


def run_agent(model: Callable[[list[dict]], str], registry: dict[str, Tool],
              user_message: str, max_steps: int = 8) -> dict:
    """At most max_steps model(deep copy of messages) calls, messages as in the module's
    protocol; returns {"messages", "answer" (the final reply stripped, or None), "stop"
    ("answer" or "max_steps"), "steps" (model calls made)}. ValueError if max_steps < 1."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    messages = [{"role": "system", "content": tool_prompt(registry)},
                {"role": "user", "content": user_message}]
    raise NotImplementedError("s40 tool use: ask, parse, validate, run; append the result or the error; stop at an answer")
