"""The web app over the registered models: one Gradio tab per task (python -m serve)."""
