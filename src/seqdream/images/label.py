"""The "AI generated" mark Ark puts in the corner when a request asks for `watermark`."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

TEXT = "AI generated"


def add_watermark(image: Image.Image) -> Image.Image:
    """A copy with semi-transparent white text in the bottom-right corner, sized to the image."""
    marked = image.convert("RGBA")
    overlay = Image.new("RGBA", marked.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default(size=max(10, min(marked.size) // 40))
    left, top, right, bottom = draw.textbbox((0, 0), TEXT, font=font)
    margin = max(4, min(marked.size) // 80)
    position = (marked.width - (right - left) - margin, marked.height - (bottom - top) - margin - top)
    draw.text(position, TEXT, font=font, fill=(255, 255, 255, 190), stroke_width=1, stroke_fill=(0, 0, 0, 120))
    return Image.alpha_composite(marked, overlay).convert("RGB")
