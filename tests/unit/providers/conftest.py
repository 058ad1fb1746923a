"""Provider tests talk to the fake LLM server over real HTTP."""

from tests.support.llm import llm_server

__all__ = ["llm_server"]
