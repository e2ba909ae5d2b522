"""Files in colour spaces other than RGB: CMYK with an embedded ICC profile, and CIELAB.

The CMYK profile is written here byte by byte (an ICC v2 output profile whose A2B0 is an 8-bit
lookup table), so its colours are known exactly; the expected sRGB values are worked out from
them with the CIE formulas, not with LittleCMS.
"""

import struct
import threading

import numpy as np
import pytest

from skrnn._folders import read_images
from skrnn.datasets import load_image_folder

Image = pytest.importorskip("PIL.Image")
ImageCms = pytest.importorskip("PIL.ImageCms")

D50 = np.array([0.9642, 1.0, 0.8249])
# Bradford adaptation from D50 to D65, then XYZ (D65) to linear sRGB.
D50_TO_D65 = np.array(
    [
        [0.9555766, -0.0230393, 0.0631636],
        [-0.0282895, 1.0099416, 0.0210077],
        [0.0122982, -0.0204830, 1.3299098],
    ]
)
XYZ_TO_SRGB = np.array(
    [
        [3.2404542, -1.5371385, -0.4985314],
        [-0.9692660, 1.8760108, 0.0415560],
        [0.0556434, -0.2040259, 1.0572252],
    ]
)


def lab_to_srgb(lab) -> np.ndarray:
    """CIELAB (D50) colours ``(..., 3)`` as 8-bit sRGB, by the CIE and sRGB formulas."""
    lab = np.asarray(lab, dtype=float)
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * D50
    linear = xyz @ D50_TO_D65.T @ XYZ_TO_SRGB.T
    assert ((linear > 0) & (linear < 1)).all(), "a test colour is outside sRGB"
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.rint(encoded * 255).astype(int)


def inks_to_lab(c, m, y, k):
    """The made-up press of the test profile: ink amounts from 0 to 1 to CIELAB."""
    lightness = 95 * (1 - k) * (1 - 0.45 * c) * (1 - 0.5 * m) * (1 - 0.1 * y) + 3
    return lightness, 50 * m - 12 * c - 5 * y, -35 * c + 60 * y - 10 * m


def stored_lab(c, m, y, k):
    """``inks_to_lab`` as the profile's 8-bit table stores it (L in 255ths of 100, a and b
    offset by 128)."""
    lightness, a, b = inks_to_lab(c, m, y, k)
    return round(lightness * 255 / 100) * 100 / 255, round(a), round(b)


def fixed(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))  # ICC's s15Fixed16Number


def cmyk_profile() -> bytes:
    """An ICC v2 CMYK output profile: a description, the D50 white point, and an A2B0 lut8
    with two grid points per ink."""
    text = b"skrnn test press\0"
    description = (
        b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + bytes(8 + 3 + 67)
    )  # ASCII, then empty Unicode and ScriptCode descriptions
    white = b"XYZ \0\0\0\0" + b"".join(fixed(v) for v in D50)
    table = bytearray()
    for c in (0, 1):  # the first ink varies slowest
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lightness, a, b = inks_to_lab(c, m, y, k)
                    table += bytes([round(lightness * 255 / 100), round(a) + 128, round(b) + 128])
    ramp = bytes(range(256))
    identity = b"".join(fixed(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
    lookup = b"mft1\0\0\0\0" + bytes([4, 3, 2, 0]) + identity + ramp * 4 + table + ramp * 3
    tags = [(b"desc", description), (b"wtpt", white), (b"A2B0", lookup)]
    offset = 128 + 4 + 12 * len(tags)
    directory, body = b"", b""
    for signature, data in tags:
        directory += signature + struct.pack(">II", offset + len(body), len(data))
        body += data + bytes(-len(data) % 4)
    header = (
        struct.pack(">I", offset + len(body))
        + bytes(4)
        + struct.pack(">I", 0x02100000)  # version 2.1
        + b"prtrCMYKLab "  # an output device, CMYK data, Lab connection space
        + bytes(12)
        + b"acsp"
        + bytes(24)
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(fixed(v) for v in D50)
        + bytes(48)
    )
    return header + struct.pack(">I", len(tags)) + directory + body


# Patches of paper, each ink alone, black and two inks over each other.
INKS = np.array(
    [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 0]]
)
# Relative colorimetric: the profile's colours, its bare paper made white.
EXPECTED = lab_to_srgb([stored_lab(*inks) for inks in INKS])
EXPECTED[0] = 255
SIDE = 16  # pixels of a patch


def cmyk_file(path, profile=None, **options):
    """The patches side by side as a CMYK file (TIFF or JPEG by the name)."""
    cmyk = np.repeat(np.repeat(INKS[None] * 255, SIDE, axis=0), SIDE, axis=1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(cmyk, "CMYK")
    image.save(path, **({"icc_profile": profile} if profile else {}), **options)
    with Image.open(path) as written:
        assert written.mode == "CMYK"
        assert written.info.get("icc_profile") == profile
    return path


def patch_colours(image) -> np.ndarray:
    """The mean colour of the middle of each patch."""
    middle = image[SIDE // 4 : 3 * SIDE // 4]
    return np.stack(
        [
            middle[:, i * SIDE + SIDE // 4 : i * SIDE + 3 * SIDE // 4].reshape(-1, 3).mean(0)
            for i in range(len(INKS))
        ]
    )


@pytest.mark.parametrize("name, slack", [("press.tif", 2), ("press.jpg", 6)])
def test_cmyk_files_read_through_their_embedded_profile(tmp_path, name, slack):
    path = cmyk_file(tmp_path / "c" / name, cmyk_profile(), quality=95, subsampling=0)
    colours = patch_colours(load_image_folder(tmp_path).data[0])
    assert np.abs(colours - EXPECTED).max() <= slack
    # Pillow's inversion, which ignores the profile, is far from the press's colours.
    with Image.open(path) as file:
        plain = patch_colours(np.asarray(file.convert("RGB")))
    assert np.abs(plain - EXPECTED).max() > 60


def test_cmyk_through_its_profile_in_grey_is_the_luminance_of_its_colours(tmp_path):
    path = cmyk_file(tmp_path / "press.tif", cmyk_profile())
    grey = read_images([path], color_mode="grayscale")[0]
    expected = np.asarray(Image.fromarray(EXPECTED[None].astype(np.uint8)).convert("L"))[0]
    middle = grey[SIDE // 2, SIDE // 2 :: SIDE].astype(int)
    assert np.abs(middle - expected).max() <= 2


def test_cmyk_without_a_profile_is_inverted_as_pillow_does(tmp_path):
    path = cmyk_file(tmp_path / "plain.tif")
    with Image.open(path) as file:
        np.testing.assert_array_equal(read_images([path])[0], np.asarray(file.convert("RGB")))


def test_cielab_tiff_reads_as_its_colours(tmp_path):
    # Pillow converts CIELAB itself (through LittleCMS): held here to the CIE formulas.
    lab = np.array([[60.0, -8, -25], [50.5, 50, -10], [88.5, -5, 60], [40, 10, -30], [98, 0, 0]])
    lightness = np.rint(lab[:, 0] * 255 / 100)
    # As a CIELab TIFF (and Pillow's "LAB" mode) stores them: a and b as signed bytes.
    stored = np.column_stack(
        [lightness.astype(np.uint8), lab[:, 1:].astype(np.int8).view(np.uint8)]
    )
    path = tmp_path / "lab.tif"
    Image.frombytes("LAB", (len(lab), 1), stored.tobytes()).save(path)
    with Image.open(path) as written:
        assert written.mode == "LAB"
    expected = lab_to_srgb(np.column_stack([lightness * 100 / 255, lab[:, 1:]]))
    assert np.abs(read_images([path])[0, 0].astype(int) - expected).max() <= 2


def test_rgb_files_keep_their_stored_values_whatever_profile_they_embed(tmp_path):
    rgb = np.array([[[200, 30, 60], [20, 180, 90]]], np.uint8)
    lab_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
    path = save_rgb(tmp_path / "tagged.png", rgb, icc_profile=lab_profile)
    np.testing.assert_array_equal(read_images([path])[0], rgb)


def save_rgb(path, rgb, **options):
    Image.fromarray(rgb).save(path, **options)
    with Image.open(path) as written:
        assert written.info.get("icc_profile") == options.get("icc_profile")
    return path


@pytest.mark.parametrize(
    "profile, reason",
    [
        (b"not a colour profile at all", "cannot turn its CMYK colours into RGB"),
        # A valid profile of another colour space: sRGB's, for CMYK pixels.
        (None, "cannot turn its CMYK colours into RGB"),
    ],
)
def test_an_unusable_profile_is_an_error_naming_the_file(tmp_path, profile, reason):
    if profile is None:
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk_file(tmp_path / "c" / "good.tif", cmyk_profile())
    bad = cmyk_file(tmp_path / "c" / "bad.tif", profile)
    with pytest.raises(ValueError, match=reason) as caught:
        load_image_folder(tmp_path)
    assert str(bad) in str(caught.value)
    assert "ICC colour profile" in str(caught.value)
    with pytest.warns(UserWarning, match="bad.tif"):
        data = load_image_folder(tmp_path, skip_errors=True)
    assert len(data.data) == 1
    assert reason in data.skipped[str(bad)]


def test_cmyk_files_read_in_threads_equal_serial_reads(tmp_path):
    paths = [cmyk_file(tmp_path / f"{i}.tif", cmyk_profile()) for i in range(4)]
    serial = read_images(paths)
    results, errors = [None] * 8, []

    def read(i):
        try:
            for _ in range(5):
                results[i] = read_images(paths)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert not any(thread.is_alive() for thread in threads)
    for result in results:
        np.testing.assert_array_equal(result, serial)
