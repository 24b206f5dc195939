"""Qt-free, torch-free conversion of Llama checkpoints (Hugging Face or Meta layout) to GGUF."""
