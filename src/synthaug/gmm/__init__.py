"""A no-training baseline painter: real masks painted from the training images' class
intensity statistics, with partial-volume blur, a bias field and noise (SynthSeg-style)."""
