"""The paper's networks: LeNet-5 (MNIST, Fashion-MNIST) and PointNet without T-nets (ModelNet40)."""

from elasticzo.nn import Conv2d, Flatten, Linear, MaxPool2d, PointLinear, PointMaxPool, ReLU, Sequential


def lenet5(num_classes: int = 10, seed: int = 0):
    """LeNet-5 as in the paper (SPEC §1): 107,786 parameters for 10 classes, 5 parameter layers."""
    return Sequential(
        [
            ("conv1", Conv2d(1, 6, 5, padding=2)),
            ("relu1", ReLU()),
            ("pool1", MaxPool2d(2)),
            ("conv2", Conv2d(6, 16, 5, padding=2)),
            ("relu2", ReLU()),
            ("pool2", MaxPool2d(2)),
            ("flatten", Flatten()),
            ("fc1", Linear(784, 120)),
            ("relu3", ReLU()),
            ("fc2", Linear(120, 84)),
            ("relu4", ReLU()),
            ("fc3", Linear(84, num_classes)),
        ],
        seed=seed,
    )


def pointnet(num_classes: int = 40, seed: int = 0):
    """PointNet without T-nets or batch-norm (SPEC §1): 815,400 parameters for 40 classes, 8 parameter layers.

    The per-point layers' ReLUs work in place (one buffer per per-point layer), as the paper's memory figures assume.
    """
    widths = [3, 64, 64, 64, 128, 1024]
    modules = []
    for i in range(5):
        modules += [(f"mlp{i + 1}", PointLinear(widths[i], widths[i + 1])), (f"mlp_relu{i + 1}", ReLU(inplace=True))]
    modules += [
        ("maxpool", PointMaxPool()),
        ("fc1", Linear(1024, 512)),
        ("relu1", ReLU()),
        ("fc2", Linear(512, 256)),
        ("relu2", ReLU()),
        ("fc3", Linear(256, num_classes)),
    ]
    return Sequential(modules, seed=seed)


MODELS = {"lenet5": lenet5, "pointnet": pointnet}


def build(name: str, num_classes: int, seed: int = 0):
    """A model by name ('lenet5' or 'pointnet')."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](num_classes=num_classes, seed=seed)
