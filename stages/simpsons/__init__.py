"""Image classification (Kaggle `journey-springfield`): Simpsons characters, 42 imbalanced
classes, transfer learning, F1."""

# Steps that run on the GPU: the orchestrator gives each the GPU's one slot (flows/graph.py).
ACCELERATED_STEPS = ("train", "evaluate")
