"""The local OpenAI-compatible API server: a face on the chat service, secure by default."""
