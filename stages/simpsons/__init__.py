"""Image classification (Kaggle `journey-springfield`): Simpsons characters, 42 imbalanced
classes, transfer learning, F1."""
