"""Qt-free chat engine on llama-cpp-python: model checks, prompt formats, budget, streaming, stop."""
