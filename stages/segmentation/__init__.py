"""Skin-lesion segmentation (PH2 dermoscopy): binary masks with UNet, SegNet and a UNet on a
torchvision encoder, trained with several losses; IoU and Dice."""

# Steps that run on the GPU: the orchestrator gives each the GPU's one slot (flows/graph.py).
ACCELERATED_STEPS = ("train", "evaluate")
