"""The chat service: the one Qt-free way every face (window, CLI, API server) runs a conversation."""
