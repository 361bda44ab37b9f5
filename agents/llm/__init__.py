"""The LLM engine: ChatOpenAI against any OpenAI-compatible endpoint."""
