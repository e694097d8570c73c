"""The datasets this package knows: their files with published sizes and SHA-256, classes, statistics, mirrors."""

from dataclasses import dataclass

SPLITS = ("train", "test")


@dataclass(frozen=True)
class KnownFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    files: dict  # split -> tuple of KnownFile (images, labels) or (npz,)
    classes: tuple  # empty when the file itself carries the class names
    mean: float  # of pixel/255 over the training set; images are normalized as (pixel/255 - mean) / std
    std: float
    mirrors: tuple  # base URLs serving the files under their own names; empty when not downloadable

    def all_files(self) -> tuple:
        """Every distinct file of the dataset, in a fixed order."""
        seen = {}
        for split in SPLITS:
            for f in self.files[split]:
                seen[f.name] = f
        return tuple(seen.values())


def _idx_files(sums: dict) -> dict:
    """MNIST-layout file table: split -> (images, labels)."""
    def known(name):
        size, sha = sums[name]
        return KnownFile(name, size, sha)
    return {
        "train": (known("train-images-idx3-ubyte.gz"), known("train-labels-idx1-ubyte.gz")),
        "test": (known("t10k-images-idx3-ubyte.gz"), known("t10k-labels-idx1-ubyte.gz")),
    }


MNIST = DatasetInfo(
    name="mnist",
    files=_idx_files({
        "train-images-idx3-ubyte.gz": (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    }),
    classes=tuple(str(d) for d in range(10)),
    # The customary rounded values; the exact ones are 0.130660 and 0.308108 (population std).
    mean=0.1307,
    std=0.3081,
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    files=_idx_files({
        "train-images-idx3-ubyte.gz": (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    }),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    # Computed here from the 60,000 training images: mean 0.286041, population std 0.353024 (pixel/255).
    mean=0.2860,
    std=0.3530,
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)

_MODELNET_NPZ = KnownFile(
    "modelnet40_1024.npz", 66850861, "3695fff78e60c18285e58287679114c2b9002b1b04a701da86938f43a411d2e2")

MODELNET40 = DatasetInfo(
    name="modelnet40",
    files={"train": (_MODELNET_NPZ,), "test": (_MODELNET_NPZ,)},
    classes=(),
    mean=0.0,  # points are already centred and scaled to unit radius
    std=1.0,
    mirrors=(),  # a repack made for this project; it has no public mirror
)

DATASETS = {info.name: info for info in (MNIST, FASHION_MNIST, MODELNET40)}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`, or a ValueError listing the known names."""
    if not isinstance(name, str) or name.lower() not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name.lower()]


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    return split
