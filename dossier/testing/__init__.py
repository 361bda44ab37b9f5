"""Test doubles for testing a pipeline on Dossier offline, with no model and no network.

* ``ScriptedChatModel``: an in-process LangChain chat model (tool calling, structured output,
  streaming, async) answered from a queue or a responder; it records every call.
* ``OpenAIStub``: a scripted OpenAI-compatible HTTP server on 127.0.0.1 for anything that takes a
  ``base_url`` (the CLI, notebooks, ``ChatOpenAI``); it also scripts faults (429, hangs, dropped
  streams...) and, with ``Personality``, the quirks of real servers.
* A script, ``(Turn) -> Answer``, drives either double the same way: ``scripted_chat_model(script)``
  or ``OpenAIStub(stub_responder(script))``. ``ScriptedAnalyst`` is a script that plays every role of
  the LLM engine, so ``Researcher`` runs end to end::

      from dossier.testing import ScriptedAnalyst, scripted_chat_model

      model = scripted_chat_model(ScriptedAnalyst())
      researcher = Researcher(kb, settings=settings.model_copy(update={"engine": "llm"}),
                              chat_models={"fast": model, "strong": model})

Request helpers, fault rules and records live in ``dossier.testing.openai_stub``; call records in
``dossier.testing.scripted_chat``.
"""

from dossier.testing.openai_stub import OpenAIStub, Reply
from dossier.testing.personalities import Personality
from dossier.testing.scripted_chat import RecordedCall, ScriptedChatModel, ScriptExhaustedError, ai_tool_call
from dossier.testing.scripts import Answer, Script, ScriptedAnalyst, Turn, scripted_chat_model, stub_responder

__all__ = [
    "Answer",
    "OpenAIStub",
    "Personality",
    "RecordedCall",
    "Reply",
    "Script",
    "ScriptExhaustedError",
    "ScriptedAnalyst",
    "ScriptedChatModel",
    "Turn",
    "ai_tool_call",
    "scripted_chat_model",
    "stub_responder",
]
