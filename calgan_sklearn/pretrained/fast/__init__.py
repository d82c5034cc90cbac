"""The distilled, faster variant of the pretrained model (``load_pretrained(fast=True)``)."""
