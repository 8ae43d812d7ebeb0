"""An independent PyTorch MVFNet ResNet, written from SPEC.md, with the release's state_dict keys.

Test-only (torch is not a dependency of the package). The network takes
normalised clips `(batch, frames, 3, H, W)` and returns clip logits, the mean of
the per-frame logits, as the released TSN-style recognizer does in eval mode.
"""

import torch
from torch import nn

MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)
BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


class MVFConv(nn.Module):
    """Wraps a block's first conv: depthwise T/H/W convs on the first k channels, then `net`."""

    def __init__(self, net, num_frames, channels, alpha):
        super().__init__()
        self.net = net
        self.num_frames = num_frames
        self.k = int(channels * alpha)
        self.shift_conv = nn.Conv3d(
            self.k, self.k, (3, 1, 1), padding=(1, 0, 0), groups=self.k, bias=False
        )
        self.h_conv = nn.Conv3d(
            self.k, self.k, (1, 3, 1), padding=(0, 1, 0), groups=self.k, bias=False
        )
        self.w_conv = nn.Conv3d(
            self.k, self.k, (1, 1, 3), padding=(0, 0, 1), groups=self.k, bias=False
        )
        self.bn = nn.BatchNorm3d(self.k, eps=1e-5)

    def forward(self, x):
        frames, channels, height, width = x.shape
        clips = x.view(frames // self.num_frames, self.num_frames, channels, height, width)
        part = clips[:, :, : self.k].permute(0, 2, 1, 3, 4)  # (N, k, T, H, W)
        fused = self.shift_conv(part) + self.h_conv(part) + self.w_conv(part)
        fused = nn.functional.hardswish(self.bn(fused)).permute(0, 2, 1, 3, 4)
        out = torch.cat([fused, clips[:, :, self.k :]], dim=2)
        return self.net(out.reshape(frames, channels, height, width))


class Bottleneck(nn.Module):
    def __init__(self, in_channels, filters, stride, num_frames, alpha):
        super().__init__()
        conv1 = nn.Conv2d(in_channels, filters, 1, bias=False)
        self.conv1 = conv1 if alpha is None else MVFConv(conv1, num_frames, in_channels, alpha)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.conv3 = nn.Conv2d(filters, 4 * filters, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * filters)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or in_channels != 4 * filters:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, 4 * filters, 1, stride=stride, bias=False),
                nn.BatchNorm2d(4 * filters),
            )

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + shortcut)


class ResNet(nn.Module):
    """torchvision-style ResNet; MVF wraps conv1 of every block in `mvf_layers`.

    `depth` is 50, 101 or a tuple of blocks per layer; `width` is the stem's filters.
    """

    def __init__(self, depth, num_frames=8, alpha=0.125, mvf_layers=(3, 4), width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = width
        for index, count in enumerate(BLOCKS.get(depth, depth), start=1):
            filters = width * 2 ** (index - 1)
            blocks = []
            for block in range(count):
                stride = 2 if block == 0 and index > 1 else 1
                module_alpha = alpha if index in mvf_layers else None
                blocks.append(Bottleneck(in_channels, filters, stride, num_frames, module_alpha))
                in_channels = 4 * filters
            setattr(self, f"layer{index}", nn.Sequential(*blocks))

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class Head(nn.Module):
    def __init__(self, in_features, num_classes):
        super().__init__()
        self.dropout = nn.Dropout(0.5)
        self.new_fc = nn.Linear(in_features, num_classes)


class MVFNet(nn.Module):
    """The recognizer: `backbone` (ResNet with MVF) and `cls_head.new_fc`."""

    def __init__(self, depth=50, num_frames=8, num_classes=400, alpha=0.125, width=64):
        super().__init__()
        self.backbone = ResNet(depth, num_frames, alpha, width=width)
        self.cls_head = Head(32 * width, num_classes)

    def forward(self, clips):
        batch, frames = clips.shape[:2]
        features = self.backbone(clips.flatten(0, 1)).mean(dim=(2, 3))
        logits = self.cls_head.new_fc(self.cls_head.dropout(features))
        return logits.view(batch, frames, -1).mean(dim=1)


def set_num_frames(model, num_frames):
    """The weights fit any clip length; this sets the one the MVF modules expect."""
    for module in model.modules():
        if isinstance(module, MVFConv):
            module.num_frames = num_frames
    return model


def torchvision_state_dict(backbone, num_classes=1000, seed=0):
    """A backbone's state dict as torchvision saves an ImageNet ResNet: with an `fc` head."""
    generator = torch.Generator().manual_seed(seed)
    state = dict(backbone.state_dict())
    features = state["layer4.0.conv3.weight"].shape[0]
    state["fc.weight"] = torch.randn(num_classes, features, generator=generator) * 0.01
    state["fc.bias"] = torch.zeros(num_classes)
    return state


def randomize(model, seed=0):
    """Random weights and non-trivial BatchNorm statistics, in place; returns `model`."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0, 0.1, generator=generator)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                size = module.num_features
                module.weight.copy_(0.5 + torch.rand(size, generator=generator))
                module.bias.normal_(0, 0.2, generator=generator)
                module.running_mean.normal_(0, 0.2, generator=generator)
                module.running_var.copy_(0.5 + torch.rand(size, generator=generator))
                module.num_batches_tracked.fill_(1000)
        # Quiet residual branches keep deep nets' activations in a sane range.
        for module in model.modules():
            if isinstance(module, Bottleneck):
                module.bn3.weight.mul_(0.2)
    return model.eval()


def normalise(clips):
    """`(batch, frames, H, W, 3)` RGB 0..255 -> the network's `(batch, frames, 3, H, W)` input."""
    clips = torch.as_tensor(clips, dtype=torch.float32)
    clips = (clips - torch.tensor(MEAN)) / torch.tensor(STD)
    return clips.permute(0, 1, 4, 2, 3).contiguous()
