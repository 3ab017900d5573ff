"""Development tools for seqdream; the service never imports this package.

- `world`: the built-in model's procedural world of shapes (vocabulary, captions, renderer);
- `tasks`: its training and evaluation examples (text-to-image, edits, compositions, groups);
- `parser`: reads generated images back into scenes, for the quality benchmark and tests;
- `tiny_pipeline`: builds tiny random FLUX.2 [klein] pipelines in diffusers format, for tests.
"""
