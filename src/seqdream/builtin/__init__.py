"""The built-in model's world: procedural scenes, edits and sequences, and a scene parser.

Groundwork for the offline built-in model: the same code renders training data, states
what each prompt asks for, and reads generated images back for the quality benchmark.
"""
