"""Training: stage 1 (the assistant) and stage 2 (the diffusion UNet)."""
