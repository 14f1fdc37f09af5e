"""Protocol plugins: `base` (the interface), `registry` (by name), one module per protocol."""
