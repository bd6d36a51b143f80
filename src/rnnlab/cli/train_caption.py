"""`rnnlab train caption`: train an image captioner (CNN encoder -> rnnlab decoder), then show captions of
held-out images."""

from __future__ import annotations

from ..train.caption import BUILTIN_CAPTIONS, CaptionRunConfig, caption_images

__all__ = ["EXAMPLES", "TASK", "report"]

TASK = "caption"
D = CaptionRunConfig()
EXAMPLES = f"""
examples:
  rnnlab train caption                                  # {D.train.max_time:.0f} s on {BUILTIN_CAPTIONS}
  rnnlab train caption --data photos/captions.tsv --max-time 1800 --out runs/photos
  rnnlab train caption --level char --hidden 384        # character-level captions
  rnnlab train caption --resume runs/photos --max-time 3600
  rnnlab caption runs/photos cat.jpg --method beam --beam 5

Data: {BUILTIN_CAPTIONS} (the Noto Color Emoji glyphs captioned with their Unicode names; 10 % of the emoji are held
out for testing, 5 % for validation), or a TSV/CSV of `filename<TAB>caption` (several rows per image for
several captions; image paths relative to the labels file), or the folder holding it.
"""


def report(task, cfg, run_dir, result, args) -> int:
    shown = task.val[:5]
    caps = caption_images(task.model, task.vocab, [it.image for it in shown], max_len=cfg.data.max_len,
                          device=task.device)
    print(f"--- held-out images (greedy); all of them, with a contact sheet: rnnlab eval {run_dir} ---")
    for it, cap in zip(shown, caps):
        print(f"{it.name}: {cap!r} (true {it.captions[0]!r})")
    return 0
