"""English→Russian translation: seq2seq with attention and a Transformer; BLEU."""

# Steps that run on the GPU: the orchestrator gives each the GPU's one slot (flows/graph.py).
ACCELERATED_STEPS = ("train", "evaluate")
