"""Llama Desk: private, local desktop chat with Llama-2-chat GGUF models."""

__version__ = "0.1.0"
APP_NAME = "Llama Desk"
APP_ID = "llama-desk"
