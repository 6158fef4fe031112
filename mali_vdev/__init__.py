"""The `mali-vdev` command: serve the virtual GPU, boot a guest against it, read traces.

The top of the house: it may import every package, and nothing imports it.
"""
