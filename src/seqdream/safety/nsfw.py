"""NSFW flags from NudeNet, whose wheel ships its ONNX detector: runs offline on CPU."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

EXPLICIT_LABELS = frozenset(
    {
        "FEMALE_BREAST_EXPOSED",
        "FEMALE_GENITALIA_EXPOSED",
        "MALE_GENITALIA_EXPOSED",
        "ANUS_EXPOSED",
        "BUTTOCKS_EXPOSED",
    }
)


class NudeNetDetector:
    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = threshold
        self._detector = None
        self._lock = threading.Lock()

    def _model(self):  # type: ignore[no-untyped-def]
        with self._lock:
            if self._detector is None:
                import onnxruntime
                from nudenet import NudeDetector

                from seqdream.cpu.threads import onnx_session_options

                detector = NudeDetector()
                # Its own session uses every core and spins; ours runs one image per pool thread.
                detector.onnx_session = onnxruntime.InferenceSession(
                    detector.onnx_session._model_path, sess_options=onnx_session_options()
                )
                self._detector = detector
            return self._detector

    def findings(self, image: Image.Image) -> list[dict[str, object]]:
        # The detector sees 320x320 anyway: a 640px copy costs little and loses nothing.
        if max(image.size) > 640:
            image = image.copy()
            image.thumbnail((640, 640), Image.Resampling.BILINEAR)
        # NudeNet reads RGBA arrays as OpenCV would (it swaps channels itself).
        rgba = np.ascontiguousarray(np.asarray(image.convert("RGBA")))
        return list(self._model().detect(rgba))

    def is_nsfw(self, image: Image.Image) -> bool:
        return any(
            found["class"] in EXPLICIT_LABELS and float(found["score"]) >= self.threshold  # type: ignore[arg-type]
            for found in self.findings(image)
        )


class DisabledDetector:
    """Used when SEQDREAM_NSFW_CHECK=false: every image is reported clean."""

    def is_nsfw(self, image: Image.Image) -> bool:
        return False
