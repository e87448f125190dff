"""Draws the bundled example condition image: a broken vase on a room's floor (the paper's Fig. 1 case).

Run once to (re)create `src/reasondiff/assets/examples/broken_vase.png`; the PNG is committed so the
package needs no drawing at run time.
"""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
OUT = Path(__file__).resolve().parents[1] / "src/reasondiff/assets/examples/broken_vase.png"


def draw() -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), (214, 196, 170))  # wall
    d = ImageDraw.Draw(img)
    d.rectangle([0, 170, SIZE, SIZE], fill=(139, 100, 66))  # floor
    d.rectangle([150, 40, 225, 110], fill=(170, 205, 235), outline=(90, 70, 50), width=5)  # window
    # shards of a blue vase scattered on the floor, a puddle of water under them
    d.ellipse([60, 196, 190, 228], fill=(120, 160, 190))
    shards = [
        [(80, 200), (104, 188), (112, 212)],
        [(118, 206), (140, 184), (150, 214)],
        [(152, 198), (176, 204), (160, 222)],
        [(96, 216), (126, 220), (108, 232)],
        [(128, 190), (134, 176), (146, 192)],
    ]
    for s in shards:
        d.polygon(s, fill=(40, 80, 170), outline=(20, 40, 110))
    return img


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    draw().save(OUT)
    print(OUT)
