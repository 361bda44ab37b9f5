"""One research branch with the model: a tool-calling loop that gathers evidence even without tool calls.

Small local models often answer in prose instead of calling a tool, and some servers do not enforce
``tool_choice``. So a reply with no tool call is read for a plain-text tool protocol (``search_documents:
...`` lines, or JSON naming a tool), and a branch that ends with no evidence runs the sub-question's
planned queries directly (the offline engine's searches and schema-linked SQL), recorded in the trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agents.engine import ResearchTask
from agents.llm.budget import fit_messages, prompt_budget
from agents.llm.client import ChatClient, MalformedOutput
from agents.llm.prompts import RESEARCH
from agents.llm.structured import is_format_refusal
from agents.llm.tools import dispatch, parse_text_calls, tool_schemas
from agents.toolbox import Toolbox
from agents.trace import Trace
from tools.vocabulary import Finding

TEXT_RESULTS = "Tool results (you wrote the calls as text):"


async def research(client: ChatClient, settings: Any, task: ResearchTask, *, toolbox: Toolbox,
                   trace: Trace) -> Finding:
    gap = f"Still missing: {task.gap.description}. Try: {task.gap.follow_up_queries}" if task.gap else ""
    messages: list[BaseMessage] = RESEARCH.format_messages(
        question=task.question, sub_question_id=task.sub_question.id, sub_question=task.sub_question.question,
        gap=gap,
    )
    budget = prompt_budget(settings, "research")
    tools, note, unparsable_turns, text_turns = tool_schemas(), "", 0, 0
    for step in range(settings.max_tool_steps):
        choice = None if step else _first_choice(settings)
        try:
            reply = await client.invoke("fast", fit_messages(messages, budget), trace, tools=tools,
                                        tool_choice=choice if tools else None)
        except Exception as exc:
            if not tools or not is_format_refusal(exc):
                raise
            # A server that refuses tools (HTTP 400 'tools not supported'): the same turn without them;
            # the model may still write its calls as text, and the planned queries stand behind it.
            tools = []
            trace.fallbacks.append(f"research {task.sub_question.id}: the server refuses tools; asked without them")
            continue
        messages.append(_replayable(reply))
        if reply.tool_calls or reply.invalid_tool_calls:
            unparsable_turns = unparsable_turns + 1 if not reply.tool_calls else 0
            if unparsable_turns > 1:  # re-asked once with the parse error, and still nothing usable
                raise MalformedOutput(f"tool call arguments still unparsable after a re-ask: "
                                      f"{_invalid_call_error(reply.invalid_tool_calls[0])}")
            messages += [await _run_call(call, toolbox) for call in reply.tool_calls]
            messages += [_invalid_call_message(call) for call in reply.invalid_tool_calls]
            continue
        text = _content(reply)
        calls = parse_text_calls(text)
        if not calls:
            note = text
            break
        text_turns += 1
        results = [f"{c['name']}: {await dispatch(c['name'], c['args'], toolbox)}" for c in calls]
        messages.append(HumanMessage("\n\n".join([TEXT_RESULTS, *results])))
    if not toolbox.evidence:
        note = await _run_planned(task, toolbox, trace, made_calls=bool(toolbox.calls))
    elif text_turns:
        trace.fallbacks.append(f"research {task.sub_question.id}: the model wrote its tool calls as text "
                               f"({text_turns} turn(s)); they were run")
    return Finding(sub_question_id=task.sub_question.id, round=task.round, notes=note[:1000])


def _first_choice(settings: Any) -> str | None:
    choice = getattr(settings, "tool_choice_first", "auto")
    return None if choice == "auto" else choice


async def _run_planned(task: ResearchTask, toolbox: Toolbox, trace: Trace, *, made_calls: bool) -> str:
    """The sub-question's planned searches and schema-linked SQL, run without the model."""
    from agents.offline.engine import OfflineEngine  # the planned-query runner both engines share

    why = "its tool calls found no evidence" if made_calls else "the model made no tool call"
    await OfflineEngine(toolbox.kb).research(task, toolbox=toolbox, trace=trace)
    message = (f"research {task.sub_question.id}: {why}; ran the sub-question's planned queries "
               f"({len(toolbox.evidence)} pieces of evidence)")
    trace.fallbacks.append(message)
    return message


async def _run_call(call: Mapping[str, Any], toolbox: Toolbox) -> ToolMessage:
    text = await dispatch(call["name"], call.get("args") or {}, toolbox)
    return ToolMessage(text, tool_call_id=call["id"])


def _replayable(reply: AIMessage) -> AIMessage:
    """The reply as the next turn sends it back. langchain-openai sends the empty text beside tool calls as
    ``content: null``, which llama-cpp-python's server rejects (HTTP 500, "Input should be a valid string")."""
    if reply.content or not (reply.tool_calls or reply.invalid_tool_calls):
        return reply
    return reply.model_copy(update={"content": " "})


def _content(reply: AIMessage) -> str:
    return reply.content if isinstance(reply.content, str) else ""


def _invalid_call_message(call: Mapping[str, Any]) -> ToolMessage:
    return ToolMessage(f"{_invalid_call_error(call)}; call the tool again with valid JSON arguments",
                       tool_call_id=call.get("id") or "invalid")


def _invalid_call_error(call: Mapping[str, Any]) -> str:
    detail = " ".join(str(call.get("error") or "invalid JSON").split())  # one line: it ends up in the report
    return f"could not parse the arguments of {call.get('name')}: {detail[:300]}"
