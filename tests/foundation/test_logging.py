"""Secrets never appear in logs."""

from __future__ import annotations

import io
import logging

from bot.log import REDACTED, RedactingFilter, TextFormatter


def test_registered_secrets_and_token_shapes_are_redacted() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(["my-very-secret-key"]))
    handler.setFormatter(TextFormatter("%(message)s"))
    logger = logging.getLogger("veille.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key=%s slack=%s", "my-very-secret-key", "xoxb-1234567890-abcdefghij")
        try:
            raise RuntimeError("auth failed with Bearer abcdefghijklmnopqrstuvwxyz012345")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "my-very-secret-key" not in text
    assert "xoxb-1234567890" not in text
    assert "abcdefghijklmnopqrstuvwxyz012345" not in text
    assert text.count(REDACTED) >= 3
    assert "call failed" in text


def test_library_chatter_on_the_root_logger_is_dropped_but_not_ours() -> None:
    from bot.log import QuietLibraries

    def record(level: int, path: str, name: str = "root") -> logging.LogRecord:
        return logging.LogRecord(name, level, path, 1, "message", None, None)

    quiet = QuietLibraries()
    lib = "/venv/lib/python3.11/site-packages/onnxruntime/quantization/onnx_quantizer.py"
    assert not quiet.filter(record(logging.INFO, lib))
    assert not quiet.filter(record(logging.WARNING, lib))  # "consider pre-processing"
    assert quiet.filter(record(logging.ERROR, lib))
    assert not quiet.filter(
        record(logging.INFO, "/venv/lib/python3.11/site-packages/open_clip/factory.py")
    )
    assert quiet.filter(
        record(logging.WARNING, "/venv/lib/python3.11/site-packages/open_clip/factory.py")
    )
    assert quiet.filter(record(logging.INFO, "/srv/veille/detectors/clip.py", "detectors.clip"))
    assert quiet.filter(record(logging.INFO, "/srv/veille/bot/app.py"))  # our own, even on root
    assert QuietLibraries(debug=True).filter(record(logging.INFO, lib))
