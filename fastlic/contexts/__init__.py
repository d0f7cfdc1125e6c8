"""Context models: what an entropy model knows about a latent element before it is decoded."""
