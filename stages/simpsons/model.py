"""The classifier: a torchvision backbone with a new head, trained through Lightning with
torchvision v2 augmentation and torchmetrics F1."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import Dataset
from torchmetrics.classification import MulticlassF1Score
from torchvision.transforms import v2

from stages.core.pretrained import torchvision_model

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_network(architecture: str, classes: int, pretrained: bool | str) -> tuple[nn.Module, str]:
    """The network and the name prefix of its new head (the part trained while frozen)."""
    network = torchvision_model(architecture, pretrained, "simpsons.train.pretrained")
    if architecture == "resnet18":
        network.fc = nn.Linear(network.fc.in_features, classes)
        return network, "fc."
    last = network.classifier[-1]
    network.classifier[-1] = nn.Linear(last.in_features, classes)
    return network, "classifier."


def train_transform(size: int) -> v2.Compose:
    return v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(0.7, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(MEAN, STD),
        ]
    )


def eval_transform() -> v2.Compose:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])


class CachedImages(Dataset):
    def __init__(self, cached: dict, transform: v2.Compose):
        self.images, self.labels, self.transform = cached["images"], cached["labels"], transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), self.labels[i]


class ImageClassifier(pl.LightningModule):
    def __init__(
        self,
        architecture: str,
        classes: int,
        pretrained: bool | str,
        learning_rate: float,
        weight_decay: float,
        class_weights: list[float] | None,
        label_smoothing: float,
        freeze_epochs: int,
        epochs: int,
        backbone_lr_factor: float = 1.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.network, self.head = build_network(architecture, classes, pretrained)
        weight = torch.tensor(class_weights) if class_weights else None
        self.loss = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        self.f1_micro = MulticlassF1Score(classes, average="micro")
        self.f1_macro = MulticlassF1Score(classes, average="macro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images)

    def on_train_epoch_start(self) -> None:
        """Fine-tuning: with pretrained weights only the head learns for `freeze_epochs`."""
        frozen = bool(self.hparams.pretrained) and self.current_epoch < self.hparams.freeze_epochs
        for name, parameter in self.network.named_parameters():
            parameter.requires_grad = not frozen or name.startswith(self.head)

    def training_step(self, batch, _):
        images, labels = batch
        loss = self.loss(self(images), labels)
        self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        images, labels = batch
        logits = self(images)
        self.log("val_loss", self.loss(logits, labels), on_epoch=True, prog_bar=True)
        self.f1_micro(logits, labels)
        self.f1_macro(logits, labels)
        self.log("val_f1_micro", self.f1_micro, on_epoch=True, prog_bar=True)
        self.log("val_f1_macro", self.f1_macro, on_epoch=True)

    def configure_optimizers(self):
        # pretrained features are only nudged once unfrozen: at the head's rate they are lost
        factor = self.hparams.backbone_lr_factor if self.hparams.pretrained else 1.0
        head, backbone = [], []
        for name, parameter in self.network.named_parameters():
            (head if name.startswith(self.head) else backbone).append(parameter)
        rate = self.hparams.learning_rate
        optimizer = torch.optim.AdamW(
            [{"params": head, "lr": rate}, {"params": backbone, "lr": rate * factor}],
            weight_decay=self.hparams.weight_decay,
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.hparams.epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
