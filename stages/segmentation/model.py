"""The networks (UNet and SegNet after their papers, a UNet decoder on a torchvision encoder),
the losses (segmentation_models_pytorch), per-image IoU / Dice, and the Lightning module that
trains one (model, loss) pair."""

from __future__ import annotations

import lightning.pytorch as pl
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.transforms import v2

from stages.core.pretrained import torchvision_model
from stages.segmentation.params import ModelSpec

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def conv_block(c_in: int, c_out: int, convs: int = 2) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """Ronneberger et al. 2015: a contracting path of double 3×3 convolutions and 2×2 max-pools,
    an expanding path of 2×2 up-convolutions concatenated with the matching encoder features.
    Padded convolutions (the paper crops) and batch norm, as is usual now."""

    def __init__(self, width: int = 16, depth: int = 3):
        super().__init__()
        channels = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList(
            conv_block(c_in, c_out)
            for c_in, c_out in zip([3, *channels[:-2]], channels[:-1], strict=True)
        )
        self.bottom = conv_block(channels[-2], channels[-1])
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(c, c // 2, 2, stride=2) for c in reversed(channels[1:])
        )
        self.decode = nn.ModuleList(conv_block(c, c // 2) for c in reversed(channels[1:]))
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for up, decode, skip in zip(self.up, self.decode, reversed(skips), strict=True):
            x = up(x)
            x = decode(torch.cat([_match(x, skip), skip], dim=1))
        return self.head(x)


class SegNet(nn.Module):
    """Badrinarayanan et al. 2017: a VGG-like encoder whose max-pools remember their indices and
    a mirrored decoder that max-unpools with them (no skip concatenation, unlike UNet)."""

    def __init__(self, width: int = 16, depth: int = 3):
        super().__init__()
        channels = [width * 2**i for i in range(depth)]
        self.encode = nn.ModuleList(
            conv_block(c_in, c_out)
            for c_in, c_out in zip([3, *channels[:-1]], channels, strict=True)
        )
        ups = list(reversed(channels))
        self.decode = nn.ModuleList(
            conv_block(c_in, c_out) for c_in, c_out in zip(ups, [*ups[1:], width], strict=True)
        )
        self.head = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pools = []
        for block in self.encode:
            x = block(x)
            size = x.shape[-2:]
            x, indices = F.max_pool2d(x, 2, return_indices=True)
            pools.append((indices, size))
        for block, (indices, size) in zip(self.decode, reversed(pools), strict=True):
            x = block(F.max_unpool2d(x, indices, 2, output_size=size))
        return self.head(x)


# Feature maps at strides 2, 4, 8, 16, 32 of the torchvision classifiers.
ENCODER_NODES = {
    "mobilenet_v2": ["features.1", "features.3", "features.6", "features.13", "features.18"],
    "resnet18": ["relu", "layer1", "layer2", "layer3", "layer4"],
}


class EncoderUNet(nn.Module):
    """A UNet decoder on a torchvision classifier's feature maps (transfer learning: with
    `pretrained` the encoder starts from ImageNet)."""

    def __init__(self, encoder: str, depth: int, pretrained: bool | str, width: int = 16):
        super().__init__()
        start = torchvision_model(encoder, pretrained, "segmentation.train.models.pretrained")
        nodes = ENCODER_NODES[encoder][: depth + 1]
        self.encoder = create_feature_extractor(start, {n: n for n in nodes})
        with torch.no_grad():
            shapes = [f.shape[1] for f in self.encoder(torch.zeros(1, 3, 64, 64)).values()]
        decoded = [width * 2**i for i in range(len(shapes) - 1)]
        self.decode = nn.ModuleList(
            conv_block(below + skip, out)
            for below, skip, out in zip(
                [shapes[-1], *reversed(decoded[1:])],
                reversed(shapes[:-1]),
                reversed(decoded),
                strict=True,
            )
        )
        self.head = nn.Conv2d(decoded[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = list(self.encoder(x).values())
        x = features[-1]
        for decode, skip in zip(self.decode, reversed(features[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = decode(torch.cat([x, skip], dim=1))
        return self.head(F.interpolate(x, size=size, mode="bilinear", align_corners=False))


def _match(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Odd sizes: pad the up-sampled map to the skip's size."""
    dy, dx = like.shape[-2] - x.shape[-2], like.shape[-1] - x.shape[-1]
    return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2]) if dx or dy else x


def build_network(spec: ModelSpec) -> nn.Module:
    if spec.architecture == "unet":
        return UNet(spec.width, spec.depth)
    if spec.architecture == "segnet":
        return SegNet(spec.width, spec.depth)
    return EncoderUNet(spec.encoder, spec.depth, spec.pretrained, spec.width)


class BceDice(nn.Module):
    def __init__(self):
        super().__init__()
        self.bce = smp.losses.SoftBCEWithLogitsLoss()
        self.dice = smp.losses.DiceLoss(smp.losses.BINARY_MODE, from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.bce(logits, target) + self.dice(logits, target)


def build_loss(name: str) -> nn.Module:
    """Every loss takes logits and a float {0, 1} target of the same shape."""
    binary = smp.losses.BINARY_MODE
    return {
        "bce": lambda: smp.losses.SoftBCEWithLogitsLoss(),
        "dice": lambda: smp.losses.DiceLoss(binary, from_logits=True),
        "focal": lambda: smp.losses.FocalLoss(binary, gamma=2.0),
        # alpha weighs false positives, beta false negatives: missing lesion costs more
        "tversky": lambda: smp.losses.TverskyLoss(binary, from_logits=True, alpha=0.3, beta=0.7),
        "bce_dice": BceDice,
        "lovasz": lambda: smp.losses.LovaszLoss(binary, per_image=True),
    }[name]()


def iou_dice(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image IoU and Dice of the thresholded prediction (logit > 0); an image where both
    prediction and truth are empty scores 1."""
    predicted = logits > 0
    truth = target > 0.5
    dims = tuple(range(1, logits.dim()))
    inter = (predicted & truth).sum(dims).float()
    union = (predicted | truth).sum(dims).float()
    total = predicted.sum(dims).float() + truth.sum(dims).float()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    dice = torch.where(total > 0, 2 * inter / total.clamp(min=1), torch.ones_like(total))
    return iou, dice


def thresholded_iou(iou: torch.Tensor) -> torch.Tensor:
    """The course's score: ceil(clamp(20 * (iou - 0.5), 0, 10)) / 10."""
    return torch.ceil(torch.clamp(20 * (iou - 0.5), 0, 10)) / 10


class CachedPairs(Dataset):
    """uint8 images and {0, 1} masks; the same random flips and rotations for both."""

    def __init__(self, cached: dict, augment: bool):
        self.images, self.masks = cached["images"], cached["masks"]
        self.augment = augment
        self.normalize = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image, mask = self.images[i], self.masks[i]
        if self.augment:
            if torch.rand(()) < 0.5:
                image, mask = image.flip(-1), mask.flip(-1)
            if torch.rand(()) < 0.5:
                image, mask = image.flip(-2), mask.flip(-2)
            turns = int(torch.randint(4, ()))
            image, mask = image.rot90(turns, (-2, -1)), mask.rot90(turns, (-2, -1))
        return self.normalize(image), mask.float()


class LesionSegmenter(pl.LightningModule):
    def __init__(
        self, spec: dict, loss: str, learning_rate: float, weight_decay: float, epochs: int
    ):
        super().__init__()
        self.save_hyperparameters()
        self.network = build_network(ModelSpec(**spec))
        self.loss = build_loss(loss)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images).float()  # losses and IoU in float32 under mixed precision

    def training_step(self, batch, _):
        images, masks = batch
        loss = self.loss(self(images), masks)
        self.log("train_loss", loss, on_epoch=True, on_step=False, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        images, masks = batch
        logits = self(images)
        iou, dice = iou_dice(logits, masks)
        size = len(images)
        self.log("val_loss", self.loss(logits, masks), on_epoch=True, batch_size=size)
        self.log("val_iou", iou.mean(), on_epoch=True, prog_bar=True, batch_size=size)
        self.log("val_dice", dice.mean(), on_epoch=True, batch_size=size)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.hparams.epochs)
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def predict_logits(
    network: nn.Module, images: torch.Tensor, device: str = "cpu", batch_size: int = 32
) -> torch.Tensor:
    """Logits for cached uint8 images, computed on `device`, returned on the CPU."""
    normalize = CachedPairs({"images": images, "masks": images}, augment=False).normalize
    network.eval().to(device)
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = normalize(images[start : start + batch_size]).to(device)
            outputs.append(network(batch).float().cpu())
    return torch.cat(outputs) if outputs else torch.zeros((0, 1, *images.shape[-2:]))
