"""Hard-hat detection (Pascal VOC XML) with torchvision detectors; mAP."""

# Steps that run on the GPU: the orchestrator gives each the GPU's one slot (flows/graph.py).
ACCELERATED_STEPS = ("train", "evaluate")
