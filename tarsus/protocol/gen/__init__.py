"""The framework's own interfaces as Python, generated from ``tarsus/protocol/*.tars``.

One module per ``.tars`` file (``QueryF.tars`` → ``QueryF``); a file's module imports the
modules of the files it includes, so each type has one class however it is reached
(``QueryF`` uses ``EndpointF.EndpointF``). Checked in, not edited: after changing a ``.tars``
file run ``tarsus idl gen --per-file tarsus/protocol/*.tars -o tarsus/protocol/gen``
(``tests/unit/test_protocol_gen.py`` fails until the two agree). See tarsus/protocol/README.md.
"""
