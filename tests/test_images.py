"""open_image on odd and broken inputs, each built on the fly with PIL."""

import io
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from llmga.errors import InvalidInputError
from llmga.images import fit_size, open_image, size_multiple_of, to_multiple_of


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header claiming ``width``x``height``, with no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def pixel(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    assert image.mode == "RGB"
    return image.getpixel(xy)


def close(a, b, tol=3):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_rgba_is_composited_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, 4:] = (255, 0, 0, 128)  # right half: half-transparent red; left half fully transparent black
    out = open_image(encode(Image.fromarray(rgba)))
    assert pixel(out, (0, 0)) == (255, 255, 255)
    assert close(pixel(out, (6, 0)), (255, 127, 127))


def test_grey_with_alpha_is_composited_on_white():
    out = open_image(Image.new("LA", (4, 4), (0, 0)))
    assert pixel(out, (1, 1)) == (255, 255, 255)


def test_palette_with_transparency_index_is_white_not_its_palette_colour():
    image = Image.new("P", (8, 8), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # 0: black (transparent), 1: red
    image.paste(1, (4, 0, 8, 8))
    out = open_image(encode(image, transparency=0))
    assert pixel(out, (0, 0)) == (255, 255, 255)
    assert pixel(out, (6, 0)) == (255, 0, 0)


def test_16_bit_png_is_scaled_not_clipped():
    ramp = np.array([[0, 257 * 64, 257 * 128, 65535]], np.uint16)
    source = Image.fromarray(ramp)
    assert Image.open(io.BytesIO(encode(source))).mode == "I;16"  # the point of the test
    out = open_image(encode(source))
    assert [pixel(out, (x, 0))[0] for x in range(4)] == [0, 64, 128, 255]
    assert out.getpixel((1, 0)) == (64, 64, 64)


def test_32_bit_float_in_unit_range_and_depth_map():
    unit = open_image(Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)))
    assert [pixel(unit, (x, 0))[0] for x in range(3)] == [0, 128, 255]
    depth = open_image(Image.fromarray(np.array([[2.0, 6.0, 10.0, np.nan]], np.float32)))
    assert [pixel(depth, (x, 0))[0] for x in range(4)] == [0, 128, 255, 0]


def test_32_bit_integer_holding_16_bit_values():
    out = open_image(Image.fromarray(np.array([[0, 65535]], np.int32)))
    assert [pixel(out, (x, 0))[0] for x in range(2)] == [0, 255]


def test_cmyk_jpeg_becomes_rgb():
    image = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # white
    image.paste((255, 0, 0, 0), (8, 0, 16, 16))  # cyan
    out = open_image(encode(image, "JPEG", quality=95))
    assert close(pixel(out, (2, 8)), (255, 255, 255), tol=6)
    assert close(pixel(out, (13, 8)), (0, 255, 255), tol=6)


def test_exif_rotated_jpeg_is_upright():
    stored = Image.new("RGB", (40, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 20))  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    out = open_image(encode(stored, "JPEG", exif=exif, quality=95))
    assert out.size == (20, 40)
    assert close(pixel(out, (10, 5)), (255, 0, 0), tol=8)  # the stored left is now on top
    assert close(pixel(out, (10, 35)), (0, 0, 255), tol=8)


def test_animated_gif_gives_its_first_frame(caplog):
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.INFO, logger="llmga.images"):
        out = open_image(data)
    assert pixel(out, (4, 4)) == (255, 0, 0)
    assert "first frame" in caplog.text


def test_truncated_png_is_a_clear_error_naming_the_file(tmp_path):
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    path = tmp_path / "cut.png"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError, match=r"cut\.png is damaged or truncated"):
        open_image(path)


def test_text_file_named_png_is_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("just some words\n")
    with pytest.raises(InvalidInputError, match=r"notes\.png is not an image"):
        open_image(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(InvalidInputError, match="is not a file"):
        open_image(tmp_path)


def test_decompression_bomb_header_is_refused_unread(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(InvalidInputError, match=r"bomb\.png is too large"):
        open_image(path)
    # within Pillow's limit but over ours: refused from the header (decoding would say "truncated")
    with pytest.raises(InvalidInputError, match=r"5000x5000 \(25 megapixels\).*refused"):
        open_image(png_header_only(5000, 5000), refuse_pixels=10_000_000)


def test_thin_and_long_images_are_refused_from_the_header():
    # under the pixel limit, but resizing a 1-pixel-high strip 16 million wide takes gigabytes
    with pytest.raises(InvalidInputError, match="over 32768 pixels a side"):
        open_image(png_header_only(16_000_000, 1))
    with pytest.raises(InvalidInputError, match="longer than 64 times"):
        open_image(png_header_only(20_000, 100))
    with pytest.raises(InvalidInputError, match="longer than 4 times"):
        open_image(Image.new("RGB", (50, 10)), refuse_aspect=4)


def test_only_the_formats_named_are_opened():
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    with pytest.raises(InvalidInputError, match="not one of the formats"):
        open_image(eps)  # never handed to Ghostscript
    bmp = encode(Image.new("RGB", (8, 8)), "BMP")
    assert open_image(bmp).size == (8, 8)
    with pytest.raises(InvalidInputError, match=r"\(PNG, JPEG\)"):
        open_image(bmp, formats=("PNG", "JPEG"))


def test_huge_image_is_downscaled_keeping_aspect_with_a_warning(caplog):
    big = Image.new("RGB", (3000, 1000), (10, 200, 30))
    for data in (encode(big), encode(big, "JPEG")):  # PNG resized; JPEG decoded at reduced scale
        with caplog.at_level(logging.WARNING, logger="llmga.images"):
            out = open_image(data, max_pixels=300_000)
        assert out.width * out.height <= 300_000 and out.width * out.height > 290_000
        assert abs(out.width / out.height - 3) < 0.01
        assert close(pixel(out, (100, 100)), (10, 200, 30), tol=4)
    assert "downscaled" in caplog.text
    assert max(open_image(big, max_side=500).size) == 500


def test_small_rgb_image_is_returned_as_an_independent_copy():
    source = Image.new("RGB", (8, 8), (1, 2, 3))
    out = open_image(source)
    assert out is not source and out.tobytes() == source.tobytes()


def test_sizes_in_multiples():
    assert size_multiple_of((513, 339)) == (512, 336)
    assert size_multiple_of((3, 3)) == (8, 8)
    assert to_multiple_of(Image.new("RGB", (61, 67))).size == (64, 64)
    assert fit_size((100, 50), max_pixels=10_000) == (100, 50)
    assert fit_size((400, 100), max_pixels=10_000) == (200, 50)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
def test_corrupt_exif_is_ignored_not_fatal():
    broken = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x01"
    out = open_image(encode(Image.new("RGB", (12, 8), (0, 0, 255)), "JPEG", exif=broken))
    assert out.size == (12, 8)
