"""Networks and layers: plain ``nn.Module``s, one per file; nothing here imports the rest of ``zoo``."""
