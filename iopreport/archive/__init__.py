"""Telescope archives: night folder layouts, listing and download."""
