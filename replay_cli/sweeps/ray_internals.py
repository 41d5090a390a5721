"""The only place replay-cli reads Ray's private structure (checked with Ray 2.60; hydra-ray-launcher
does not pin Ray).

``ray.init`` clears the handlers of the ``ray`` logger, so the launcher's own console lines (the
token-authentication notice, the dashboard address) can be sent to a file only from the logger of
the driver-side modules that write them, ``ray._private``.
``tests/test_sweeps.py::test_ray_driver_lines_come_from_the_logger_quiet_ray_redirects`` fails
loudly when an upgrade moves them.
"""

PINNED_RAY = "2.60.0"  # the version these reads were checked against
DRIVER_LOGGER = "ray._private"  # parent of ray._private.worker and ray._private.authentication.*
