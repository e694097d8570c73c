"""Tests of elasticzo.data on the real MNIST / Fashion-MNIST / ModelNet40 files and on damaged copies of them."""

import gzip
import os
import http.server
import shutil
import socket
import struct
import threading

import numpy as np
import pytest

from elasticzo.data import (
    DATASETS, ChecksumError, DatasetFormatError, DatasetNotFoundError, DownloadError, batches, dataset_info,
    download_dataset, drops_small_last, epoch_order, load_dataset, normalize_images, num_batches, read_idx_images,
    read_idx_labels, rotate_images, rotated_subset, search_dirs, training_batches_per_epoch,
)
from elasticzo.data.dataset import pixel_table
from elasticzo.data.integrity import sha256_of, verify_file
from elasticzo.data.locate import find_files, repository_root

# Label histograms published in shared/data/README.md.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _write_idx(path, magic, dims, payload):
    path.write_bytes(gzip.compress(struct.pack(f">{1 + len(dims)}I", magic, *dims) + bytes(payload)))


def _fake_mnist(folder, split, images, labels, image_dims=None, label_count=None):
    """A damaged-on-purpose MNIST split in `folder`: uint8 images (N, H, W) and labels, header overrides."""
    info = dataset_info("mnist")
    folder.mkdir(parents=True, exist_ok=True)
    img_file, lbl_file = (folder / f.name for f in info.files[split])
    _write_idx(img_file, 2051, image_dims or images.shape, images.tobytes())
    _write_idx(lbl_file, 2049, (len(labels) if label_count is None else label_count,), bytes(labels))
    return img_file, lbl_file


# ---- real files ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("split,counts", [("train", MNIST_TRAIN_COUNTS), ("test", MNIST_TEST_COUNTS)])
def test_mnist_counts_and_label_histogram(split, counts, mnist_train, mnist_test):
    ds = mnist_train if split == "train" else mnist_test
    assert len(ds) == sum(counts)
    assert np.bincount(ds.y, minlength=10).tolist() == counts
    assert ds.x.shape == (len(ds), 1, 28, 28) and ds.x.dtype == np.uint8  # held as the file stores it
    # batches convert per batch to exactly what normalizing the whole split up front gave
    some = np.arange(0, len(ds), 7)
    x, y = ds.take(some)
    assert x.dtype == np.float32 and x.flags.c_contiguous and y.dtype == np.int32
    np.testing.assert_array_equal(x, normalize_images(ds.x[some, 0], ds.mean, ds.std))
    assert ds.y.dtype == np.int32 and ds.classes == tuple("0123456789") and ds.split == split


def test_fashion_counts_and_label_histogram(fashion_train, fashion_test):
    assert np.bincount(fashion_train.y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(fashion_test.y, minlength=10).tolist() == [1000] * 10
    assert fashion_train.x.shape == (60000, 1, 28, 28) and fashion_test.x.shape == (10000, 1, 28, 28)
    assert fashion_train.classes[0] == "T-shirt/top" and fashion_train.classes[9] == "Ankle boot"


def test_known_files_match_published_checksums(mnist_dir, fashion_dir, modelnet_dir):
    folders = {"mnist": mnist_dir, "fashion-mnist": fashion_dir, "modelnet40": modelnet_dir}
    for name, info in DATASETS.items():
        for known in info.all_files():
            assert sha256_of(folders[name] / known.name) == known.sha256, f"{name}/{known.name}"
            verify_file(folders[name] / known.name, known, name)


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_normalization_statistics(name, mnist_train, fashion_train):
    ds = mnist_train if name == "mnist" else fashion_train
    # statistics of the float32 inputs batches deliver, from the pixel histogram (no float copy of the split)
    weights = np.bincount(ds.x.ravel(), minlength=256) / ds.x.size
    values = pixel_table(ds.mean, ds.std).astype(np.float64)
    x_mean = float(weights @ values)
    x_std = float(np.sqrt(weights @ (values - x_mean) ** 2))
    assert abs(x_mean) < 2e-4 and abs(x_std - 1) < 2e-4, (x_mean, x_std)
    # x is affine in pixel/255, so these are the training-set statistics of pixel/255 (to ~1e-7), which the
    # registry holds rounded to 4 decimals
    assert round(x_mean * ds.std + ds.mean, 4) == ds.mean == DATASETS[name].mean
    assert round(x_std * ds.std, 4) == ds.std == DATASETS[name].std


def test_unnormalized_images_are_pixels_over_255(mnist_dir):
    raw = read_idx_images(mnist_dir / "t10k-images-idx3-ubyte.gz")
    ds = load_dataset("mnist", mnist_dir, "test", normalize=False)
    assert (ds.mean, ds.std) == (0.0, 1.0)
    np.testing.assert_array_equal(ds.inputs()[:, 0], (raw / 255.0).astype(np.float32))


def test_modelnet40_both_splits(modelnet_dir):
    expected = {"airplane": (626, 100), "bathtub": (106, 50), "desk": (200, 86), "xbox": (103, 20)}
    for i, (split, n) in enumerate((("train", 9843), ("test", 2468))):
        ds = load_dataset("modelnet40", modelnet_dir.parent, split)
        assert ds.x.shape == (n, 1024, 3) and ds.x.dtype == np.float16 and ds.y.dtype == np.int32  # as stored
        assert len(ds.classes) == 40 and ds.classes[0] == "airplane" and ds.classes[-1] == "xbox"
        counts = np.bincount(ds.y, minlength=40)
        assert {c: int(counts[ds.classes.index(c)]) for c in expected} == {c: v[i] for c, v in expected.items()}
    points = ds.inputs()
    assert points.dtype == np.float32 and np.array_equal(points, ds.x.astype(np.float32))
    assert np.abs(points.mean(axis=1)).max() < 1e-3  # centred (test split only, to keep this test fast)
    radius = np.linalg.norm(points, axis=2).max(axis=1)
    assert np.all(np.abs(radius - 1) < 1e-3)  # unit sphere


def test_unknown_name_and_split_are_rejected(mnist_dir):
    with pytest.raises(ValueError, match="known: mnist, fashion-mnist, modelnet40"):
        load_dataset("cifar10", mnist_dir)
    with pytest.raises(ValueError, match="unknown split 'val'"):
        load_dataset("mnist", mnist_dir, "val")


# ---- damaged files ---------------------------------------------------------------------------------------------

@pytest.fixture
def mnist_copy(tmp_path, mnist_dir):
    """A writable copy of the MNIST test split."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for known in dataset_info("mnist").files["test"]:
        shutil.copyfile(mnist_dir / known.name, folder / known.name)
    return folder


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip_byte], ids=["truncated", "flipped-byte"])
@pytest.mark.parametrize("which", [0, 1], ids=["images", "labels"])
def test_damaged_gzip_names_the_file(mnist_copy, damage, which):
    path = mnist_copy / dataset_info("mnist").files["test"][which].name
    damage(path)
    with pytest.raises(ChecksumError, match="download_dataset") as checked:
        load_dataset("mnist", mnist_copy, "test")
    assert str(path) in str(checked.value)
    with pytest.raises(DatasetFormatError, match="not a readable gzip file") as parsed:
        load_dataset("mnist", mnist_copy, "test", verify=False)
    assert str(path) in str(parsed.value)


def test_wrong_magic_names_the_file(tmp_path):
    path = tmp_path / "labels.gz"
    _write_idx(path, 2051, (3,), [1, 2, 3])
    with pytest.raises(DatasetFormatError, match="magic number 2051 where an IDX labels file has 2049") as e:
        read_idx_labels(path)
    assert str(path) in str(e.value)
    _write_idx(path, 2049, (1, 2, 2), [1, 2, 3, 4])
    with pytest.raises(DatasetFormatError, match="magic number 2049 where an IDX images file has 2051"):
        read_idx_images(path)


@pytest.mark.parametrize("images_shape,image_dims,labels,label_count,bad_file,message", [
    ((3, 28, 28), (4, 28, 28), [1, 2, 3], None, 0, "header says 4 x 28 x 28 = 3136 bytes of images but 2352"),
    ((3, 28, 28), None, [1, 2, 3], 2, 1, "header says 2 = 2 bytes of labels but 3 follow it"),
    ((3, 28, 27), None, [1, 2, 3], None, 0, "images of 28x27 pixels, expected 28x28"),
    ((3, 28, 28), None, [1, 10, 3], None, 1, "label 10 outside 0..9"),
    ((3, 28, 28), None, [1, 2], None, 0, "holds 3 images but .* holds 2 labels"),
], ids=["image-count", "label-count", "image-size", "label-range", "count-mismatch"])
def test_inconsistent_files_name_the_file(tmp_path, images_shape, image_dims, labels, label_count, bad_file,
                                          message):
    images = np.zeros(images_shape, dtype=np.uint8)
    files = _fake_mnist(tmp_path, "test", images, labels, image_dims, label_count)
    with pytest.raises(DatasetFormatError, match=message) as e:
        load_dataset("mnist", tmp_path, "test", verify=False)
    assert str(files[bad_file]) in str(e.value)


def test_short_header_is_reported(tmp_path):
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(DatasetFormatError, match="only 3 bytes .* 8-byte IDX header"):
        read_idx_labels(path)


def test_damaged_npz_names_the_file(tmp_path):
    folder = tmp_path / "modelnet40"
    folder.mkdir()
    path = folder / "modelnet40_1024.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip archive")
    with pytest.raises(ChecksumError):
        load_dataset("modelnet40", tmp_path)
    with pytest.raises(DatasetFormatError, match="not a readable npz archive") as e:
        load_dataset("modelnet40", tmp_path, verify=False)
    assert str(path) in str(e.value)
    np.savez(path, train_points=np.zeros((2, 1024, 3), np.float16), train_labels=np.array([0, 2], np.uint8),
             class_names=np.array(["a", "b"]))
    with pytest.raises(DatasetFormatError, match="label 2 outside 0..1"):
        load_dataset("modelnet40", tmp_path, verify=False)
    with pytest.raises(DatasetFormatError, match="no array named test_points, test_labels"):
        load_dataset("modelnet40", tmp_path, "test", verify=False)


# ---- finding files ---------------------------------------------------------------------------------------------

def test_missing_files_error_lists_every_place_in_order(tmp_path, monkeypatch):
    roots = [tmp_path / "env1", tmp_path / "env2"]
    (roots[1] / "fashion-mnist").mkdir(parents=True)
    (roots[1] / "fashion-mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    monkeypatch.setenv("ELASTICZO_DATA", os.pathsep.join(map(str, roots)))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("fashion-mnist", split="train")
    message = str(e.value)
    places = [roots[0] / "fashion-mnist", roots[1] / "fashion-mnist", tmp_path / "data" / "fashion-mnist"]
    if repository_root() is not None:
        places.append(repository_root() / "data" / "fashion-mnist")
    places.append(tmp_path / "home" / ".cache" / "elasticzo" / "fashion-mnist")
    positions = [message.index(f"- {p}:") for p in places]
    assert positions == sorted(positions), message
    assert f"{roots[1] / 'fashion-mnist'}: missing train-labels-idx1-ubyte.gz" in message
    assert "download_dataset('fashion-mnist')" in message and "ELASTICZO_DATA" in message
    assert places == search_dirs("fashion-mnist")


def test_unset_variable_is_reported_and_data_dir_is_searched_with_subfolder(tmp_path, monkeypatch):
    monkeypatch.delenv("ELASTICZO_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"\$ELASTICZO_DATA: not set"):
        load_dataset("fashion-mnist")
    with pytest.raises(FileNotFoundError) as e:
        load_dataset("mnist", tmp_path / "nowhere", "test")
    assert f"- {tmp_path / 'nowhere'}: no such folder" in str(e.value)
    assert f"- {tmp_path / 'nowhere' / 'mnist'}: no such folder" in str(e.value)


def test_environment_variable_comes_before_working_directory(tmp_path, monkeypatch, mnist_copy):
    other = tmp_path / "work" / "data" / "mnist"
    shutil.copytree(mnist_copy, other)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("ELASTICZO_DATA", str(tmp_path))
    assert find_files(dataset_info("mnist"), "test")[0].parent == mnist_copy
    monkeypatch.delenv("ELASTICZO_DATA")
    assert find_files(dataset_info("mnist"), "test")[0].parent == other
    assert len(load_dataset("mnist", split="test")) == 10000


# ---- batches ---------------------------------------------------------------------------------------------------

def _collect(*args, **kwargs):
    return [(x.copy(), y.copy()) for x, y in batches(*args, **kwargs)]


def test_batches_are_deterministic_per_seed_and_epoch(mnist_test):
    a = _collect(mnist_test, 1000, True, 7, 3)
    b = _collect(mnist_test, 1000, True, 7, 3)
    c = _collect(mnist_test, 1000, True, 7, 4)
    assert all(np.array_equal(xa, xb) and np.array_equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not np.array_equal(a[0][1], c[0][1])
    order = epoch_order(len(mnist_test), True, 7, 3)
    np.testing.assert_array_equal(order, np.random.default_rng([7, 3]).permutation(10000))  # the documented draw
    np.testing.assert_array_equal(np.concatenate([y for _, y in a]), mnist_test.y[order])
    np.testing.assert_array_equal(a[2][0], mnist_test.inputs(order[2000:3000]))
    for x, y in a:
        assert x.dtype == np.float32 and y.dtype == np.int32 and x.flags.c_contiguous and y.flags.c_contiguous


def test_batches_sizes_and_unshuffled_order(mnist_test):
    sizes = [len(y) for _, y in batches(mnist_test, 3000, shuffle=False)]
    assert sizes == [3000, 3000, 3000, 1000] and num_batches(10000, 3000) == 4
    assert [len(y) for _, y in batches(mnist_test, 3000, shuffle=False, drop_last=True)] == [3000] * 3
    x, y = next(batches(mnist_test, 5, shuffle=False, start_batch=2))
    np.testing.assert_array_equal(x, mnist_test.inputs(range(10, 15)))
    np.testing.assert_array_equal(y, mnist_test.y[10:15])


def test_training_drops_a_last_batch_of_less_than_half_a_batch_only():
    # (samples, batch size) -> batches per training epoch: ModelNet40 at 16 ends on 3 shapes (dropped), at 32 on 19;
    # MNIST at 64 on 32, exactly half (kept); a set no larger than one batch is that batch
    cases = {(9843, 16): 615, (9843, 32): 308, (60000, 64): 938, (4096, 64): 64, (35, 16): 2, (40, 16): 3,
             (16, 16): 1, (5, 16): 1, (17, 16): 1, (24, 16): 2, (1, 1): 1}
    assert {k: training_batches_per_epoch(*k) for k in cases} == cases
    assert [drops_small_last(*k) for k in ((9843, 16), (9843, 32), (60000, 64), (5, 16))] == [True, False, False, False]
    with pytest.raises(ValueError, match="batch_size"):
        drops_small_last(10, 0)


@pytest.mark.parametrize("drop_last", [False, True])
def test_batches_resume_from_any_index(mnist_test, drop_last):
    full = _collect(mnist_test, 999, True, 11, 2, drop_last)
    for start in (0, 1, 5, len(full) - 1, len(full)):
        rest = _collect(mnist_test, 999, True, 11, 2, drop_last, start_batch=start)
        assert len(rest) == len(full) - start
        for (xa, ya), (xb, yb) in zip(full[start:], rest):
            assert np.array_equal(xa, xb) and np.array_equal(ya, yb), f"start_batch={start}"


@pytest.mark.parametrize("kwargs,message", [
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size must be an integer"),
    ({"batch_size": 10, "seed": -1}, "seed must be an integer >= 0"),
    ({"batch_size": 10, "epoch": -1}, "epoch must be an integer >= 0"),
    ({"batch_size": 10, "start_batch": 1001}, "start_batch 1001 is past the 1000 batches"),
])
def test_batches_reject_bad_arguments_at_call(mnist_test, kwargs, message):
    with pytest.raises(ValueError, match=message):
        batches(mnist_test, **kwargs)


# ---- rotation --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("angle,k", [(90, 1), (180, 2), (270, 3), (-90, -1), (450, 1)])
def test_quarter_turns_equal_rot90(mnist_test, angle, k):
    images = mnist_test.inputs(range(50))
    np.testing.assert_array_equal(rotate_images(images, angle), np.rot90(images, k, axes=(-2, -1)))


@pytest.mark.parametrize("angle", [0, 360, -720])
def test_full_turns_are_identity(mnist_test, angle):
    images = mnist_test.inputs(range(50))
    np.testing.assert_array_equal(rotate_images(images, angle), images)


@pytest.mark.parametrize("angle", [30, 60, -17.5, 135])
@pytest.mark.parametrize("h,w", [(28, 28), (7, 12), (1, 5)])
def test_rotation_moves_a_linear_ramp_exactly(angle, h, w):
    # Bilinear interpolation reproduces a linear function exactly, so wherever the rotated position lies
    # inside the image the result is the ramp evaluated there: an oracle independent of the implementation.
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    ramp = 0.25 * rows - 0.5 * cols + 3.0
    fill = -1000.0
    got = rotate_images(ramp.astype(np.float32), angle, fill=fill)
    t = np.deg2rad(angle)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = rows - cy, cols - cx  # y down; a counter-clockwise turn as displayed is clockwise in (x, y-down)
    src_x, src_y = np.cos(t) * x - np.sin(t) * y + cx, np.sin(t) * x + np.cos(t) * y + cy
    inside = (src_y >= 0) & (src_y <= h - 1) & (src_x >= 0) & (src_x <= w - 1)
    far_outside = (src_y <= -1) | (src_y >= h) | (src_x <= -1) | (src_x >= w)  # no neighbour in the image
    expected = 0.25 * src_y - 0.5 * src_x + 3.0
    np.testing.assert_allclose(got[inside], expected[inside], rtol=0, atol=1e-5)
    assert np.all(got[far_outside] == fill)
    assert inside.any()


def test_rotation_keeps_shape_dtype_and_rejects_bad_input():
    out = rotate_images(np.ones((2, 3, 5, 6), dtype=np.uint8), 30)
    assert out.shape == (2, 3, 5, 6) and out.dtype == np.float32
    with pytest.raises(ValueError, match="angle and fill must be finite"):
        rotate_images(np.ones((5, 5)), np.inf)
    with pytest.raises(ValueError, match=r"shape \(..., H, W\)"):
        rotate_images(np.ones(5), 30)


def test_rotated_subset_of_normalized_data(mnist_test, mnist_dir):
    sub = rotated_subset(mnist_test, 90, count=100, seed=5)
    chosen = np.sort(np.random.default_rng(5).choice(10000, 100, replace=False))
    assert len(sub) == 100 and sub.name == "mnist-rot90" and (sub.mean, sub.std) == (mnist_test.mean, mnist_test.std)
    np.testing.assert_array_equal(sub.y, mnist_test.y[chosen])
    np.testing.assert_array_equal(sub.x, np.rot90(mnist_test.inputs(chosen), 1, axes=(-2, -1)))
    # The fill is the normalized background, so rotating normalized data equals normalizing rotated pixels.
    raw = load_dataset("mnist", mnist_dir, "test", normalize=False)
    turned = rotated_subset(mnist_test, 30, count=100, seed=5)
    expected = (rotate_images(raw.inputs(chosen), 30) - mnist_test.mean) / mnist_test.std
    np.testing.assert_allclose(turned.x, expected, rtol=0, atol=1e-5)
    corner = np.float32(-mnist_test.mean / mnist_test.std)
    assert np.all(turned.x[:, 0, 0, 0] == corner)
    for count in (10001, 0, 2.0, True):
        with pytest.raises(ValueError, match="a subset holds 1 to 10000 samples"):
            rotated_subset(mnist_test, 30, count=count)
    for seed in (-1, 1.5, None):
        with pytest.raises(ValueError, match="subset seed must be an integer >= 0"):
            rotated_subset(mnist_test, 30, count=10, seed=seed)


def test_rotated_subset_is_deterministic_and_covers_all_when_count_is_none(fashion_test):
    a, b = rotated_subset(fashion_test, 60, 1024, seed=3), rotated_subset(fashion_test, 60, 1024, seed=3)
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.y, rotated_subset(fashion_test, 60, 1024, seed=4).y)
    everything = rotated_subset(fashion_test, 60)
    np.testing.assert_array_equal(everything.y, fashion_test.y)
    chosen = np.sort(np.random.default_rng(3).choice(10000, 1024, replace=False))
    np.testing.assert_array_equal(everything.x[chosen], a.x)


# ---- download (local mirrors only: never the internet) -------------------------------------------------------

def _closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _no_partial_files(folder):
    return not [p.name for p in folder.iterdir() if p.name.endswith(".part")]


def test_download_from_file_mirror_verifies_and_keeps_good_files(tmp_path, mnist_dir):
    dest = tmp_path / "dest"
    missing_mirror = (tmp_path / "nothing-here").as_uri()
    download_dataset("mnist", dest, mirrors=[missing_mirror, mnist_dir.as_uri()])
    for known in dataset_info("mnist").all_files():
        assert sha256_of(dest / known.name) == known.sha256
    assert _no_partial_files(dest)
    assert len(load_dataset("mnist", dest, "test")) == 10000
    # Everything present and intact: nothing is fetched, so an unreachable mirror does not matter.
    download_dataset("mnist", dest, mirrors=[_closed_port_url()])


@pytest.fixture
def local_http_mirror(mnist_dir):
    """http://127.0.0.1:<port>/ serving the repository's MNIST folder from a thread, quietly."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mnist_dir), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_download_over_http_skips_a_mirror_answering_404(tmp_path, local_http_mirror):
    dest = tmp_path / "dest"
    download_dataset("mnist", dest, mirrors=[local_http_mirror + "no-such-folder/", local_http_mirror])
    assert all(sha256_of(dest / k.name) == k.sha256 for k in dataset_info("mnist").all_files())
    with pytest.raises(DownloadError, match="no-such-folder/train-images-idx3-ubyte.gz: HTTP 404") as e:
        download_dataset("fashion-mnist", tmp_path / "f", mirrors=[local_http_mirror + "no-such-folder/"])
    assert "offline" not in str(e.value)  # the server answered


def test_download_replaces_a_damaged_file(tmp_path, mnist_dir):
    dest = tmp_path / "dest"
    shutil.copytree(mnist_dir, dest)
    _flip_byte(dest / "t10k-labels-idx1-ubyte.gz")
    download_dataset("mnist", dest, mirrors=[mnist_dir.as_uri()])
    verify_file(dest / "t10k-labels-idx1-ubyte.gz", dataset_info("mnist").files["test"][1], "mnist")


def test_download_rejects_wrong_content_atomically(tmp_path, mnist_dir):
    mirror = tmp_path / "mirror"
    shutil.copytree(mnist_dir, mirror)
    _flip_byte(mirror / "train-images-idx3-ubyte.gz")
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="wrong content, got 9912422 bytes with SHA-256") as e:
        download_dataset("mnist", dest, mirrors=[mirror.as_uri()])
    assert "offline" not in str(e.value)
    assert not (dest / "train-images-idx3-ubyte.gz").exists() and _no_partial_files(dest)


def test_download_offline_message(tmp_path):
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="are you offline") as e:
        download_dataset("fashion-mnist", dest, mirrors=[_closed_port_url()], timeout=5)
    assert "fashion-mnist/train-images-idx3-ubyte.gz" in str(e.value) and str(dest) in str(e.value)
    assert list(dest.iterdir()) == []
    with pytest.raises(ValueError, match="modelnet40 has no public mirror"):
        download_dataset("modelnet40", dest)
