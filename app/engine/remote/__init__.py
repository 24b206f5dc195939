"""Remote engines: llama.cpp's llama-server, vLLM and OpenAI-compatible servers behind the Engine protocol."""
