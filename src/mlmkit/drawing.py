"""Words on the pictures mlmkit writes: panel titles and class legends (colour swatch -> class name)."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

TEXT_SIZE = 14
PAD = 6
SWATCH = 14
Colour = tuple[int, int, int]


def font(size: int = TEXT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's built-in scalable font (no font files needed on the machine)."""
    return ImageFont.load_default(size=size)


def text_width(text: str, size: int = TEXT_SIZE) -> int:
    left, _, right, _ = font(size).getbbox(text)
    return int(right - left)


def _line_height(size: int) -> int:
    return size + PAD


def legend(entries: Sequence[tuple[Colour, str]], width: int, size: int = TEXT_SIZE) -> Image.Image:
    """A white strip `width` wide listing each colour swatch with its name, wrapped into as many rows as needed."""
    cells = [(colour, name, SWATCH + PAD // 2 + text_width(name, size) + 2 * PAD) for colour, name in entries]
    rows: list[list[tuple[Colour, str, int]]] = [[]]
    for cell in cells:
        if rows[-1] and sum(c[2] for c in rows[-1]) + cell[2] > width - PAD:
            rows.append([])
        rows[-1].append(cell)
    image = Image.new("RGBA", (width, PAD + len(rows) * _line_height(size)), "white")
    draw = ImageDraw.Draw(image)
    for row_index, row in enumerate(rows):
        x, y = PAD, PAD + row_index * _line_height(size)
        for colour, name, cell_width in row:
            draw.rectangle((x, y, x + SWATCH, y + SWATCH), fill=tuple(colour), outline="black")
            draw.text((x + SWATCH + PAD // 2, y - 1), name, fill="black", font=font(size))
            x += cell_width
    return image


def stack(*images: Image.Image) -> Image.Image:
    """Images one below the other on white, left-aligned."""
    width = max(image.width for image in images)
    out = Image.new("RGBA", (width, sum(image.height for image in images)), "white")
    y = 0
    for image in images:
        out.paste(image, (0, y))
        y += image.height
    return out


def titled(image: Image.Image, title: str, size: int = TEXT_SIZE + 2) -> Image.Image:
    """`image` with `title` centred in a white strip above it (wider than the image when the title is)."""
    width = max(image.width, text_width(title, size) + 2 * PAD)
    strip = Image.new("RGBA", (width, _line_height(size) + PAD), "white")
    ImageDraw.Draw(strip).text(((width - text_width(title, size)) // 2, PAD), title, fill="black", font=font(size))
    return stack(strip, image.convert("RGBA"))


def vertical_text(text: str, size: int = TEXT_SIZE) -> Image.Image:
    """`text` on a transparent tile, turned to read bottom to top (column labels, y-axis titles)."""
    tile = Image.new("RGBA", (text_width(text, size) + 2, size + 4), (255, 255, 255, 0))
    ImageDraw.Draw(tile).text((0, 0), text, fill="black", font=font(size))
    return tile.rotate(90, expand=True)
